"""The baselines scored beside a model: the centre bias and chance."""
from __future__ import annotations

import functools
from typing import Tuple

import numpy as np

BASELINES = ("centre", "chance")
#: σ of the centre-bias Gaussian as a fraction of the frame's height and width
CENTRE_SIGMA = 0.25


@functools.lru_cache(maxsize=16)
def _centre_bias(shape: Tuple[int, int], sigma: float) -> np.ndarray:
    rows = (np.arange(shape[0]) - (shape[0] - 1) / 2.0) / (sigma * shape[0])
    cols = (np.arange(shape[1]) - (shape[1] - 1) / 2.0) / (sigma * shape[1])
    out = np.exp(-0.5 * (rows[:, None] ** 2 + cols[None, :] ** 2))
    out.setflags(write=False)
    return out


def centre_bias_map(shape: Tuple[int, int], sigma: float = CENTRE_SIGMA) -> np.ndarray:
    """The centre-bias baseline: a Gaussian centred on the frame.

    Args:
        shape: (H, W) of the frame.
        sigma: standard deviation as a fraction of H (vertically) and W (horizontally).

    Returns:
        H×W float64 map in (0, 1], 1 at the centre; read-only (cached per shape).
    """
    return _centre_bias((int(shape[0]), int(shape[1])), float(sigma))


def chance_map(shape: Tuple[int, int], seed: int) -> np.ndarray:
    """The chance baseline: i.i.d. uniform [0, 1) noise, H×W float64, drawn from `seed`."""
    return np.random.default_rng(seed).random(shape)
