"""Precision modes of the torch engine: fp32 is the default and what parity is
measured in; tf32, bf16 and fp16 are opt-in speed modes.

- fp32: full float32 (TF32 tensor-core matmuls/convolutions switched off for the call);
- tf32: float32 storage, TF32 matmuls and cuDNN convolutions (CUDA only; no effect on CPU);
- bf16 / fp16: `torch.autocast` to that type; blobs are returned as float32.
"""
from __future__ import annotations

import contextlib

import torch

from dynsal.errors import DynsalError

PRECISIONS = ("fp32", "tf32", "bf16", "fp16")
_AUTOCAST = {"bf16": torch.bfloat16, "fp16": torch.float16}


def check_precision(precision: str) -> str:
    """The precision name, checked.

    Raises:
        DynsalError: an unknown precision.
    """
    if precision not in PRECISIONS:
        raise DynsalError(f"unknown precision {precision!r}; choose one of: {', '.join(PRECISIONS)}")
    return precision


@contextlib.contextmanager
def _tf32(enabled: bool):
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = enabled
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def precision_context(precision: str, device: torch.device, autocast_cache: bool = True):
    """A context manager running the net's forward pass in `precision` on `device`; `autocast_cache`
    False stops autocast from keeping cast weights between operations (needed while capturing CUDA graphs)."""
    if precision in _AUTOCAST:
        return torch.autocast(device_type=device.type, dtype=_AUTOCAST[precision], cache_enabled=autocast_cache)
    return _tf32(precision == "tf32")
