"""Synthetic videos with gaze for training tests: bright textured objects moving over a static textured
background, and observers who look at the moving objects.

Written in the per-frame layout `dynsal make-hdf5 --layout` and `dynsal eval` read
(`<root>/<video>/images/<frame>.png`, `maps/<frame>.png`, `fixation/<frame>.png`). The objects
travel along the frame's borders from random places, in random directions, at random speeds, so
where people look is not centre-biased; the maps are dynsal's own density maps
(`dynsal.data.gaze.density_map`, σ in pixels) of the simulated fixations (`dynsal.data.gaze.fixation_map`).
"""
from __future__ import annotations

from pathlib import Path
from typing import List, Tuple

import cv2
import numpy as np

from dynsal.data import gaze as G
from dynsal.data import ground_truth as GT
from dynsal.data.images import write_png


def texture(height: int, width: int, rng: np.random.Generator, cell: int = 4) -> np.ndarray:
    """Smooth random BGR uint8 texture (blurred noise of `cell`-pixel grain), values 0-255."""
    coarse = rng.integers(0, 256, (height // cell + 2, width // cell + 2, 3), dtype=np.uint8)
    image = cv2.resize(coarse, (width + 2 * cell, height + 2 * cell), interpolation=cv2.INTER_CUBIC)
    return cv2.GaussianBlur(image, (0, 0), 1.0)[cell:cell + height, cell:cell + width]


def border_point(s: float, height: int, width: int, inset: float) -> Tuple[float, float]:
    """The point at arc length `s` (wrapping) along the rectangle `inset` pixels inside the frame's
    border, clockwise from its top-left corner."""
    left, top, right, bottom = inset, inset, width - 1 - inset, height - 1 - inset
    w, h = right - left, bottom - top
    s = s % (2 * (w + h))
    if s < w:
        return left + s, top
    if s < w + h:
        return right, top + (s - w)
    if s < 2 * w + h:
        return right - (s - w - h), bottom
    return left, bottom - (s - 2 * w - h)


def paste_disc(frame: np.ndarray, patch: np.ndarray, x: float, y: float) -> None:
    """Paste the disc inscribed in the square `patch` centred at (x, y), with sub-pixel position."""
    size = patch.shape[0]
    r = size // 2
    cx, cy = int(np.floor(x)), int(np.floor(y))
    fx, fy = x - cx, y - cy
    shift = np.array([[1, 0, fx], [0, 1, fy]], np.float32)
    moved = cv2.warpAffine(patch, shift, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    yy, xx = np.mgrid[0:size, 0:size]
    disc = ((xx - r - fx) ** 2 + (yy - r - fy) ** 2) <= r * r
    top, left = cy - r, cx - r
    rows = slice(max(top, 0), min(top + size, frame.shape[0]))
    cols = slice(max(left, 0), min(left + size, frame.shape[1]))
    sub = (slice(rows.start - top, rows.stop - top), slice(cols.start - left, cols.stop - left))
    region = frame[rows, cols]
    region[disc[sub]] = moved[sub][disc[sub]]


def make_video(seed: int, frames: int = 30, size: Tuple[int, int] = (32, 48), objects: int = 2,
               radius: int = 4, speed: Tuple[float, float] = (1.5, 3.0)) -> Tuple[List[np.ndarray], List[np.ndarray]]:
    """Frames (BGR uint8) and per-frame object centres (K×2 float (x, y)) of one synthetic video.

    The background is a static darkish texture; each object is a bright textured disc that travels
    along the frame's border (a rectangle `radius` + 1 pixels inside it), from a random place, in a
    random direction, at a random speed (pixels per frame) — so the objects, and the gaze on them,
    are never near the centre.
    """
    rng = np.random.default_rng(seed)
    height, width = size
    background = (texture(height, width, rng).astype(np.float32) * 0.45 + 20).astype(np.uint8)
    movers = []
    for _ in range(objects):
        patch = (texture(2 * radius + 1, 2 * radius + 1, rng, cell=3).astype(np.float32) * 0.5 + 128).astype(np.uint8)
        start, pace = rng.uniform(0, 2 * (height + width)), rng.uniform(*speed) * rng.choice([-1.0, 1.0])
        movers.append((patch, start, pace))
    images, centres = [], []
    for t in range(frames):
        frame = background.copy()
        points = [border_point(start + pace * t, height, width, radius + 1) for _, start, pace in movers]
        for (patch, _, _), (x, y) in zip(movers, points):
            paste_disc(frame, patch, x, y)
        images.append(frame)
        centres.append(np.array(points, np.float64))
    return images, centres


def observer_fixations(centres: np.ndarray, observers: int, rng: np.random.Generator, spread: float = 1.5
                       ) -> np.ndarray:
    """Fixation points of `observers` viewers, each on one of the objects (round robin), jittered."""
    chosen = centres[np.arange(observers) % len(centres)]
    return chosen + rng.normal(0.0, spread, chosen.shape)


def write_layout_video(folder: Path, seed: int, frames: int = 30, size: Tuple[int, int] = (32, 48),
                       objects: int = 2, radius: int = 4, observers: int = 6, sigma_px: float = 2.0) -> Path:
    """One synthetic video in `folder/{images,maps,fixation}/<frame>.png` (frame = 6-digit index)."""
    images, centres = make_video(seed, frames, size, objects, radius)
    rng = np.random.default_rng(seed + 10_000)
    height, width = size
    for index, (image, points) in enumerate(zip(images, centres)):
        fixations = observer_fixations(points, observers, rng)
        fixations[:, 0] = np.clip(fixations[:, 0], 0, width - 1e-3)
        fixations[:, 1] = np.clip(fixations[:, 1], 0, height - 1e-3)
        name = f"{index:06d}.png"
        write_png(image, folder / "images" / name)
        density = G.density_map(fixations, (width, height), size, sigma_px)
        write_png(GT.to_uint8(density), folder / "maps" / name)
        write_png(G.fixation_map(fixations, (width, height), size).astype(np.uint8) * 255, folder / "fixation" / name)
    return folder


def write_layout(root: Path, seeds: List[int], **kwargs) -> Path:
    """Videos `video<seed>` for every seed under `root` (one split of a layout)."""
    for seed in seeds:
        write_layout_video(root / f"video{seed:03d}", seed, **kwargs)
    return root
