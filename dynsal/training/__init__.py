"""Caffe's solver semantics that do not depend on an engine: learning-rate policies, snapshot
naming and solver states, and Caffe's training log (reference: caffe-semantics.md §5)."""
from __future__ import annotations

from dynsal.lazy import submodule_loader

__getattr__ = submodule_loader(__name__)  # dynsal.training.<module> after a bare import, loaded on first use
