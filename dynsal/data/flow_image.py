"""Flow fields → 3-channel uint8 images the temporal stream reads (BGR, OpenCV's order).

Encodings (`ENCODINGS`; the paper's own encoding is unknown, its figures look like the first):
- `middlebury`: the colour-wheel coding of Baker et al.'s Middlebury flow-code (`colorcode.cpp`,
  `flowToColor`): hue = direction from a 55-colour wheel (RY 15, YG 6, GC 4, CB 11, BM 13, MR 6),
  saturation = magnitude, white = no motion. With r = |f| / M and a = atan2(−v, −u)/π, the wheel is
  read at (a + 1)/2 · 54 with linear interpolation between neighbours; each colour channel c ∈ [0, 1]
  becomes 1 − r·(1 − c) for r ≤ 1 and 0.75·c beyond (out-of-range motion drawn darker); value =
  floor(255·c); in float32 where the C code uses float, so the bytes are the C code's. Rightward
  motion is red, downward yellow, leftward cyan, upward blue.
- `xy`: red = 128 + 127·u/M, green = 128 + 127·v/M, blue = 255·|f|/M, each rounded and clipped to
  0–255 (u, v centred on 128; the magnitude from 0).

M, the normalising magnitude: the frame's own largest |f| (per-frame; 1 when the frame has no motion,
as in flowToColor), or a fixed `max_magnitude` in pixels, identical for every frame.
"""
from __future__ import annotations

from typing import Callable, Dict, Optional

import numpy as np

#: segment lengths of the Middlebury colour wheel (red-yellow, yellow-green, ..., magenta-red)
WHEEL_SEGMENTS = (("RY", 15), ("YG", 6), ("GC", 4), ("CB", 11), ("BM", 13), ("MR", 6))


def colour_wheel() -> np.ndarray:
    """The Middlebury colour wheel: 55×3 float64 RGB values in 0–255 (colorcode.cpp `makecolorwheel`)."""
    rows = []
    for name, n in WHEEL_SEGMENTS:
        ramp = np.floor(255 * np.arange(n) / n)
        full, zero = np.full(n, 255.0), np.zeros(n)
        rows.append({
            "RY": (full, ramp, zero), "YG": (255 - ramp, full, zero), "GC": (zero, full, ramp),
            "CB": (zero, 255 - ramp, full), "BM": (ramp, zero, full), "MR": (full, zero, 255 - ramp),
        }[name])
    return np.concatenate([np.stack(r, axis=1) for r in rows])


_WHEEL = colour_wheel()


def _magnitude_scale(flow: np.ndarray, max_magnitude: Optional[float]) -> float:
    """M: `max_magnitude`, else the largest |f| of the frame (float32, as flowToColor), 1 for no motion."""
    if max_magnitude is not None:
        return float(max_magnitude)
    f = flow.astype(np.float32)
    largest = float(np.sqrt(f[..., 0] * f[..., 0] + f[..., 1] * f[..., 1]).max()) if f.size else 0.0
    return largest if largest > 0 else 1.0


def middlebury_image(flow: np.ndarray, max_magnitude: Optional[float] = None) -> np.ndarray:
    """H×W×2 (u, v) flow → BGR uint8 H×W×3 Middlebury colour coding (see module docstring).

    Computed in float32 where `computeColor` of colorcode.cpp uses `float` (u/M, v/M, the radius,
    the wheel position, the interpolated colour), so the values are the C code's.

    Args:
        flow: float (u, v) in pixels.
        max_magnitude: M in pixels; None = the frame's largest magnitude.
    """
    f32 = np.float32
    scale = f32(_magnitude_scale(flow, max_magnitude))
    u = flow[..., 0].astype(f32) / scale
    v = flow[..., 1].astype(f32) / scale
    radius = np.sqrt(u * u + v * v)
    angle = (np.arctan2(-v.astype(np.float64), -u.astype(np.float64)) / np.pi).astype(f32)
    position = ((angle.astype(np.float64) + 1.0) / 2.0 * (len(_WHEEL) - 1)).astype(f32)
    k0 = position.astype(np.int64)  # position ≥ 0: truncation is the floor, as (int) in C
    fraction = position - k0.astype(f32)
    k1 = k0 + 1
    k1[k1 == len(_WHEEL)] = 0
    outside = radius > 1
    any_outside = bool(outside.any())
    bgr = np.empty(flow.shape[:2] + (3,), np.uint8)
    for channel in range(3):
        wheel = (_WHEEL[:, channel] / 255.0).astype(f32)
        colour = (f32(1) - fraction) * wheel[k0] + fraction * wheel[k1]
        inside_colour = f32(1) - radius * (f32(1) - colour)
        colour = np.where(outside, colour * f32(0.75), inside_colour) if any_outside else inside_colour
        bgr[..., 2 - channel] = (255.0 * colour.astype(np.float64)).astype(np.int64)
    return bgr


def xy_image(flow: np.ndarray, max_magnitude: Optional[float] = None) -> np.ndarray:
    """H×W×2 (u, v) flow → BGR uint8 H×W×3 with red = u, green = v, blue = |f| (see module docstring)."""
    scale = _magnitude_scale(flow, max_magnitude)
    u = flow[..., 0].astype(np.float64)
    v = flow[..., 1].astype(np.float64)
    red = 128 + 127 * u / scale
    green = 128 + 127 * v / scale
    blue = 255 * np.sqrt(u * u + v * v) / scale
    bgr = np.stack([blue, green, red], axis=2)
    return np.clip(np.rint(bgr), 0, 255).astype(np.uint8)


ENCODINGS: Dict[str, Callable[[np.ndarray, Optional[float]], np.ndarray]] = {
    "middlebury": middlebury_image,
    "xy": xy_image,
}


def encode_flow(flow: np.ndarray, encoding: str = "middlebury", max_magnitude: Optional[float] = None) -> np.ndarray:
    """The flow image of `flow` in `encoding` (BGR uint8 H×W×3); M = `max_magnitude` or per-frame."""
    return ENCODINGS[encoding](flow, max_magnitude)
