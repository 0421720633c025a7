"""Caffe's solver semantics that do not depend on an engine: learning-rate policies, snapshot
naming and solver states, and Caffe's training log (reference: caffe-semantics.md §5)."""
