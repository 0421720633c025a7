"""Fixation points and the sAUC negative pool: for each frame, the fixations of M other frames."""
from __future__ import annotations

from typing import Iterable, List, Sequence, Tuple

import numpy as np

from dynsal.errors import EvaluationError
from dynsal.evaluate.pairing import Frame, by_video

SAUC_POOLS = ("other-videos", "other-frames")

Points = Tuple[np.ndarray, np.ndarray, Tuple[int, int]]  # rows, columns, (H, W) of the map


def fixation_points(fixations: np.ndarray) -> Points:
    """(rows, columns, shape) of the fixated pixels of a boolean H×W map."""
    rows, cols = np.nonzero(fixations)
    return rows.astype(np.int32), cols.astype(np.int32), tuple(fixations.shape)


def points_to_map(points: Iterable[Points], shape: Tuple[int, int]) -> np.ndarray:
    """Union of fixation points as a boolean map of `shape`, rescaling each set from its own size.

    A pixel (r, c) of an h×w map lands on (floor((r + 0.5)·H/h), floor((c + 0.5)·W/w)).
    """
    out = np.zeros(shape, dtype=bool)
    for rows, cols, (h, w) in points:
        r = np.minimum(((rows + 0.5) * (shape[0] / h)).astype(np.int64), shape[0] - 1)
        c = np.minimum(((cols + 0.5) * (shape[1] / w)).astype(np.int64), shape[1] - 1)
        out[r, c] = True
    return out


def sample_negative_frames(frames: Sequence[Frame], has_fixations: Sequence[bool], count: int,
                           pool: str, seed: int) -> List[List[int]]:
    """For each frame, the indices of `count` other frames whose fixations are its sAUC negatives.

    Args:
        frames: all frames, grouped by video (as `find_frames` returns them).
        has_fixations: whether each frame has at least one fixation (only those are drawn).
        count: M, frames per negative pool (fewer if fewer candidates exist).
        pool: "other-videos" (frames of other videos) or "other-frames" (any other frame).
        seed: seed of the draws.

    Returns:
        One list of frame indices per frame.

    Raises:
        EvaluationError: on an unknown pool, count < 1, or a frame without any candidate.
    """
    if pool not in SAUC_POOLS:
        raise EvaluationError(f"unknown sAUC pool {pool!r}; use one of {', '.join(SAUC_POOLS)}")
    if count < 1:
        raise EvaluationError(f"sAUC needs at least 1 negative frame, got {count}")
    candidates = np.flatnonzero(np.asarray(has_fixations, dtype=bool))
    rng = np.random.default_rng(seed)
    chosen = []
    for start, stop in by_video(frames):
        for index in range(start, stop):
            own = (start, stop) if pool == "other-videos" else (index, index + 1)
            block = tuple(int(i) for i in np.searchsorted(candidates, own))
            chosen.append(_draw_outside(candidates, block, count, rng, frames[index]))
    return chosen


def _draw_outside(candidates: np.ndarray, block: Tuple[int, int], count: int,
                  rng: np.random.Generator, frame: Frame) -> List[int]:
    """Draw without replacement from `candidates` except positions block[0] … block[1] - 1."""
    excluded = block[1] - block[0]
    available = candidates.size - excluded
    if available == 0:
        raise EvaluationError(f"{frame.video}/{frame.frame}: no other frame with fixations to draw sAUC "
                              "negatives from; use --sauc-pool other-frames or more videos")
    picks = rng.choice(available, size=min(count, available), replace=False)
    picks = np.where(picks >= block[0], picks + excluded, picks)
    return [int(i) for i in candidates[picks]]


def negative_points(frames: Sequence[Frame], points: Sequence, count: int, pool: str,
                    seed: int) -> List[Tuple[Points, ...]]:
    """Each frame's sAUC negatives as the fixation points of the frames drawn for it."""
    has = [p is not None and p[0].size > 0 for p in points]
    chosen = sample_negative_frames(frames, has, count, pool, seed)
    return [tuple(points[j] for j in picks) for picks in chosen]
