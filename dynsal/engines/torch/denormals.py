"""Flush-to-zero for the torch engine's CPU passes (DESIGN D9).

Arithmetic on denormal floats (|x| < 1.2e-38 in float32) can cost 6–25× on x86 CPUs. With the
SSE control register's flush-to-zero and denormals-are-zero bits set (FTZ/DAZ), such results and
inputs count as 0, which moves no result beyond float32 rounding (the engines' parity bound is
1e-4·max|ref|). `flush_denormals(device)` sets them for one CPU pass and restores the state it
found, so nothing outside dynsal's passes changes. The bits belong to a thread: this sets them
for the calling thread, which runs the passes' element-wise work and FFTs; the math library's
own worker threads keep the state they were started with.
"""
from __future__ import annotations

import contextlib
from typing import Iterator

import torch

#: a float32 denormal: multiplied by 1, it stays itself unless this thread flushes denormals
_DENORMAL = 1e-40


def flushing_denormals() -> bool:
    """Whether the calling thread flushes float32 denormals to zero now (FTZ/DAZ set)."""
    return float(torch.tensor(_DENORMAL, dtype=torch.float32) * 1.0) == 0.0


@contextlib.contextmanager
def flush_denormals(device: torch.device) -> Iterator[None]:
    """FTZ/DAZ on for the enclosed work when `device` is a CPU and the CPU supports it, then as before."""
    if device.type != "cpu" or flushing_denormals():
        yield
        return
    supported = torch.set_flush_denormal(True)
    try:
        yield
    finally:
        if supported:
            torch.set_flush_denormal(False)
