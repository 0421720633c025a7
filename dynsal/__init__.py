"""dynsal: the spatio-temporal saliency networks of Bak et al. (2018) on Caffe's files.

Importing dynsal never imports torch (DESIGN.md D2): the torch engine is imported lazily.
"""
from __future__ import annotations

from dynsal.errors import DynsalError

__version__ = "0.1.0"
__all__ = ["DynsalError", "__version__"]
