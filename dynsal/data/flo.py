"""Middlebury `.flo` optical-flow files (Baker et al., "A Database and Evaluation Methodology for
Optical Flow", IJCV 2011; the format of the Middlebury flow-code `flowIO.cpp`).

Layout, all little-endian: float32 magic 202021.25 (the bytes "PIEH"), int32 width, int32 height,
then height×width×2 float32 values, row-major, (u, v) interleaved per pixel. u is the horizontal
(x, to the right) and v the vertical (y, downwards) displacement in pixels.
"""
from __future__ import annotations

from pathlib import Path
from typing import Union

import numpy as np

from dynsal.errors import DataError
from dynsal.files import write_atomic

MAGIC = 202021.25
_HEADER = 12


def read_flo(path: Union[str, Path]) -> np.ndarray:
    """A `.flo` file → H×W×2 float32 (u, v).

    Raises:
        DataError: bad magic, impossible size or truncated file (naming the file).
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: cannot read the flow file ({exc.strerror})") from exc
    if len(raw) < _HEADER or np.frombuffer(raw[:4], "<f4")[0] != np.float32(MAGIC):
        raise DataError(f"{path}: not a Middlebury .flo file (magic 202021.25 missing)")
    width, height = (int(x) for x in np.frombuffer(raw[4:12], "<i4"))
    expected = _HEADER + width * height * 8
    if width <= 0 or height <= 0 or len(raw) != expected:
        raise DataError(f"{path}: .flo header says {width}x{height} but the file holds {len(raw)} bytes "
                        f"(expected {expected}); the file is truncated or corrupt")
    return np.frombuffer(raw, "<f4", offset=_HEADER).reshape(height, width, 2).astype(np.float32)


def write_flo(flow: np.ndarray, path: Union[str, Path]) -> None:
    """Write H×W×2 (u, v) flow as a `.flo` file (atomically: a temporary file renamed)."""
    flow = np.asarray(flow)
    if flow.ndim != 3 or flow.shape[2] != 2:
        raise ValueError(f"flow must be H×W×2, got shape {flow.shape}")
    height, width = flow.shape[:2]
    data = (np.array([MAGIC], "<f4").tobytes() + np.array([width, height], "<i4").tobytes()
            + np.ascontiguousarray(flow, "<f4").tobytes())
    write_atomic(path, data)
