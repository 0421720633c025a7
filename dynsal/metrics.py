"""Saliency metrics exactly as the MIT saliency benchmark defines them, in plain numpy.

The reference is the MATLAB code of the MIT/Tuebingen saliency benchmark (`cvzoya/saliency`,
`code_forMetrics/*.m`) as described by Bylinskii et al., "What do different evaluation metrics tell
us about saliency models?", TPAMI 2018. Every function here states the MATLAB file it follows, the
constants it uses and what it returns where the reference would return NaN.

Conventions shared by all metrics:

* Maps are 2-D arrays, layout H×W (rows, columns), any real dtype (uint8 PNG values, float
  network outputs); they are converted to float64 first, as `im2double`/`double` do in MATLAB.
* The prediction is resized to the ground-truth size with :func:`resize_map`, a numpy port of
  MATLAB's default `imresize` (bicubic, a = -0.5, antialiased when shrinking, symmetric border),
  because that is what the reference does; other interpolations shift AUC/NSS in the third decimal.
* Fixation maps are binary H×W arrays (bool, or numbers that are all 0 or 1); a pixel counts once
  however many viewers fixated it, as in the reference.
* `EPS` = 2.2204e-16 is MATLAB's `eps` (the float64 machine epsilon), used by KLD and IG.
* Every random draw comes from an explicit `seed` (an int or a `numpy.random.Generator`), so a
  score is reproducible; the default seed is 0.
* Where the reference divides by zero (constant maps, empty fixation maps) these functions return a
  documented value instead of NaN: the chance value of the metric (AUC 0.5, NSS 0, CC 0, IG 0),
  or, for maps that are min-max scaled, the uniform map in place of the undefined 0/0.

Bad input (not 2-D, empty, non-finite values, a non-binary fixation map, negative values where a
map is read as a distribution, mismatched fixation and negative maps) raises
:class:`dynsal.errors.EvaluationError`.
"""
from __future__ import annotations

import functools
from typing import Dict, Iterable, Mapping, Optional, Tuple, Union

import numpy as np

from dynsal.errors import EvaluationError

__all__ = [
    "EPS", "METRICS", "FIXATION_METRICS", "DENSITY_METRICS", "resize_map",
    "auc_judd", "auc_borji", "auc_shuffled", "nss", "cc", "sim", "kld", "information_gain",
    "score_frame",
]

#: MATLAB's `eps` (2.2204e-16), the constant of the reference KLD and IG.
EPS = float(np.finfo(np.float64).eps)
#: number of random splits of AUC-Borji and sAUC (reference `Nsplits`)
N_SPLITS = 100
#: threshold step of AUC-Borji and sAUC (reference `stepSize`)
STEP = 0.1
#: amplitude of the tie-breaking jitter of AUC-Judd (reference: `rand(size(map))/10000000`)
JITTER = 1e-7

#: metric name -> ground truth it needs ("fixations" binary, "density" continuous)
METRICS: Dict[str, str] = {
    "auc_judd": "fixations",
    "auc_borji": "fixations",
    "sauc": "fixations",
    "nss": "fixations",
    "cc": "density",
    "sim": "density",
    "kld": "density",
    "ig": "fixations",
}
FIXATION_METRICS = tuple(name for name, truth in METRICS.items() if truth == "fixations")
DENSITY_METRICS = tuple(name for name, truth in METRICS.items() if truth == "density")

Seed = Union[int, np.random.Generator]


# --------------------------------------------------------------------------------------------------
# input checks and resizing


def _as_map(array, what: str) -> np.ndarray:
    """`array` as a finite float64 H×W map, or EvaluationError naming `what`."""
    arr = np.asarray(array)
    if arr.ndim != 2 or arr.size == 0:
        raise EvaluationError(f"{what} must be a non-empty 2-D H×W array, got shape {arr.shape}; "
                              "convert colour maps to one channel first")
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise EvaluationError(f"{what} must be numeric, got dtype {arr.dtype}")
    arr = arr.astype(np.float64, copy=False)  # callers never modify it in place
    if not np.isfinite(arr).all():
        raise EvaluationError(f"{what} contains NaN or infinite values")
    return arr


def _as_fixations(array, what: str = "fixation map") -> np.ndarray:
    """`array` as a boolean H×W map; values other than 0 and 1 raise EvaluationError."""
    arr = np.asarray(array)
    if arr.ndim != 2 or arr.size == 0:
        raise EvaluationError(f"{what} must be a non-empty 2-D H×W array, got shape {arr.shape}")
    if arr.dtype == bool:
        return arr
    if not np.issubdtype(arr.dtype, np.number):
        raise EvaluationError(f"{what} must be boolean or numeric, got dtype {arr.dtype}")
    binary = arr != 0
    if not np.all(arr[binary] == 1):
        raise EvaluationError(f"{what} is not binary (values other than 0 and 1); pass a boolean "
                              "array, e.g. `map > 0` if every non-zero pixel is a fixation")
    return binary


def _cubic(x: np.ndarray) -> np.ndarray:
    """MATLAB imresize's cubic kernel (Keys, a = -0.5)."""
    ax = np.abs(x)
    ax2, ax3 = ax * ax, ax * ax * ax
    near = (1.5 * ax3 - 2.5 * ax2 + 1.0) * (ax <= 1)
    far = (-0.5 * ax3 + 2.5 * ax2 - 4.0 * ax + 2.0) * ((ax > 1) & (ax <= 2))
    return near + far


@functools.lru_cache(maxsize=64)
def _resize_weights(in_len: int, out_len: int) -> np.ndarray:
    """The out_len×in_len matrix of MATLAB imresize (bicubic, antialiased) along one axis."""
    scale = out_len / in_len
    width = 4.0 / scale if scale < 1 else 4.0
    kernel = (lambda d: scale * _cubic(scale * d)) if scale < 1 else _cubic
    centre = np.arange(1, out_len + 1) / scale + 0.5 * (1 - 1 / scale)  # 1-based input coordinates
    left = np.floor(centre - width / 2)
    taps = int(np.ceil(width)) + 2
    index = left[:, None] + np.arange(taps)[None, :]
    weights = kernel(centre[:, None] - index)
    weights /= weights.sum(axis=1, keepdims=True)
    mirror = np.concatenate([np.arange(in_len), np.arange(in_len)[::-1]])  # symmetric padding
    source = mirror[np.mod(index.astype(np.int64) - 1, 2 * in_len)]
    matrix = np.zeros((out_len, in_len))
    rows = np.repeat(np.arange(out_len), taps)
    np.add.at(matrix, (rows, source.ravel()), weights.ravel())
    return matrix


def resize_map(saliency_map, shape: Tuple[int, int]) -> np.ndarray:
    """Resize a map like MATLAB's default `imresize(map, shape)` (the reference's resizing).

    Bicubic interpolation with the Keys kernel (a = -0.5), antialiasing (the kernel is widened by
    1/scale) when shrinking, and symmetric (mirror) padding at the borders, applied separably as two
    matrix products in float64, the axis shrunk most first. As in MATLAB, an integer map (e.g.
    uint8 from a PNG) is rounded (half away from zero) and clipped to its dtype's range after each
    pass, so the bicubic overshoot never makes a PNG map negative; a float map is not clipped.

    Args:
        saliency_map: H×W array, any real dtype.
        shape: (rows, columns) of the result, both ≥ 1.

    Returns:
        float64 array of `shape`; the input converted to float64 if it already has that shape.

    Raises:
        EvaluationError: if the map is not a finite 2-D array or `shape` is not two positive ints.
    """
    raw = np.asarray(saliency_map)
    arr = _as_map(raw, "saliency map")
    if len(shape) != 2 or min(int(shape[0]), int(shape[1])) < 1:
        raise EvaluationError(f"cannot resize to shape {tuple(shape)}: need (rows, columns) ≥ 1")
    target = (int(shape[0]), int(shape[1]))
    scales = [target[0] / arr.shape[0], target[1] / arr.shape[1]]
    for axis in sorted((0, 1), key=lambda a: scales[a]):  # MATLAB: the most-shrunk axis first
        if arr.shape[axis] == target[axis]:
            continue
        weights = _resize_weights(arr.shape[axis], target[axis])
        arr = weights @ arr if axis == 0 else arr @ weights.T
        if np.issubdtype(raw.dtype, np.integer):  # MATLAB keeps the class after every pass
            arr = _round_clip(arr, np.iinfo(raw.dtype))
    return arr


def _round_clip(arr: np.ndarray, info: np.iinfo) -> np.ndarray:
    """Round half away from zero and clip to an integer type's range (MATLAB's cast to uint8 etc.)."""
    return np.clip(np.sign(arr) * np.floor(np.abs(arr) + 0.5), info.min, info.max)


def _rng(seed: Seed) -> np.random.Generator:
    if isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise EvaluationError(f"seed must be a non-negative int or a numpy Generator, got {seed!r}")
    return np.random.default_rng(int(seed))


# --------------------------------------------------------------------------------------------------
# normalisations


def _is_constant(arr: np.ndarray) -> bool:
    """Exact test (max == min): a float mean/std of a constant map can be off by rounding."""
    return bool(arr.max() == arr.min())


def _min_max(arr: np.ndarray) -> Optional[np.ndarray]:
    """(arr - min) / (max - min), or None for a constant map (the reference's 0/0)."""
    low, high = arr.min(), arr.max()
    if high == low:
        return None
    return (arr - low) / (high - low)


def _distribution_after_min_max(arr: np.ndarray) -> np.ndarray:
    """Min-max scale then divide by the sum; a constant map becomes the uniform distribution."""
    scaled = _min_max(arr)
    if scaled is None:
        return np.full(arr.shape, 1.0 / arr.size)
    return scaled / scaled.sum()


def _check_non_negative(arr: np.ndarray, what: str) -> None:
    if arr.min() < 0:
        raise EvaluationError(f"{what} has negative values (min {arr.min():.4g}); KLD reads maps as "
                              "distributions: shift or rectify the map first")


def _trapezoid(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Trapezoidal area under y(x) along the last axis (MATLAB `trapz(x, y)`)."""
    return np.sum(np.diff(x, axis=-1) * (y[..., 1:] + y[..., :-1]), axis=-1) / 2.0


def _z_score(arr: np.ndarray) -> Optional[np.ndarray]:
    """(arr - mean) / std with N-1 (MATLAB `std`), or None for a constant map."""
    if _is_constant(arr):
        return None
    std = arr.std(ddof=1)
    if std == 0:
        return None
    return (arr - arr.mean()) / std


# --------------------------------------------------------------------------------------------------
# AUC family


def _auc_judd(sal: np.ndarray, fix: np.ndarray, jitter: bool, rng: np.random.Generator) -> float:
    n_fix, n_pix = int(fix.sum()), fix.size
    if n_fix == 0 or n_fix == n_pix or _is_constant(sal):
        return 0.5
    if jitter:
        sal = sal + rng.random(sal.shape) * JITTER
    values = _min_max(sal).ravel()
    thresholds = np.sort(values[fix.ravel()])  # ascending
    # above[j] = number of pixels >= thresholds[j]: bin the pixels among the sorted thresholds once;
    # pixels below the lowest threshold reach none, so only the others need the binary search
    reaching = values[values >= thresholds[0]]
    level = np.searchsorted(thresholds, reaching, side="right")
    above = reaching.size - np.cumsum(np.bincount(level, minlength=n_fix + 1))[:-1]
    above = above[::-1]  # thresholds in descending order, as the reference sweeps them
    rank = np.arange(1, n_fix + 1)
    tp = np.concatenate([[0.0], rank / n_fix, [1.0]])
    fp = np.concatenate([[0.0], (above - rank) / (n_pix - n_fix), [1.0]])
    return float(_trapezoid(fp, tp))


def auc_judd(saliency_map, fixation_map, *, jitter: bool = True, seed: Seed = 0) -> float:
    """AUC-Judd: area under the ROC curve with every fixated pixel's value as a threshold.

    Reference: `AUC_Judd.m`. The prediction is resized to the fixation map, jittered with
    `rand/1e7` (`JITTER`) to break ties, min-max scaled to [0, 1]; the thresholds are the values at
    the fixated pixels, swept from high to low. For the i-th threshold t, TP rate = i / N_fix and
    FP rate = (#pixels ≥ t − i) / (N_pixels − N_fix); the curve runs from (0, 0) to (1, 1) and its
    area is taken with the trapezoid rule. Computed by one `searchsorted` of all pixels into the
    sorted thresholds, which gives the reference's counts exactly, ties included.

    Args:
        saliency_map: H'×W' prediction, any real dtype and range.
        fixation_map: H×W binary fixation map (bool or 0/1).
        jitter: add the reference's tie-breaking noise (drawn from `seed`).
        seed: int or numpy Generator for the jitter.

    Returns:
        AUC in [0, 1]. 0.5 (chance) for a constant prediction, an empty fixation map, or a map in
        which every pixel is fixated (the reference returns NaN or divides by zero there).

    Raises:
        EvaluationError: on maps that are not finite 2-D arrays or a non-binary fixation map.
    """
    fix = _as_fixations(fixation_map)
    return _auc_judd(resize_map(saliency_map, fix.shape), fix, jitter, _rng(seed))


def _threshold_grid(step: float) -> np.ndarray:
    """Thresholds 0, step, 2·step, … ≤ 1 (the reference's `0:stepSize:max`, max ≤ 1)."""
    if not 0 < step <= 1:
        raise EvaluationError(f"threshold step must be in (0, 1], got {step}")
    return np.arange(int(np.floor(1.0 / step + 1e-9)) + 1) * step


def _levels(values: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """For values in [0, 1]: how many grid thresholds are ≤ each value (exact, no float drift)."""
    guess = np.clip(np.floor(values / (grid[1] if grid.size > 1 else 1.0)).astype(np.int64),
                    0, grid.size - 1)
    guess -= grid[guess] > values
    upper = np.minimum(guess + 1, grid.size - 1)
    guess += (grid[upper] <= values) & (upper > guess)
    return guess + 1


def _counts_at_or_above(levels: np.ndarray, n_levels: int) -> np.ndarray:
    """Per row of `levels`: how many entries reach each threshold, thresholds in descending order."""
    flat = levels.reshape(-1, levels.shape[-1])
    offsets = (np.arange(flat.shape[0]) * (n_levels + 1))[:, None]
    hist = np.bincount((flat + offsets).ravel(), minlength=flat.shape[0] * (n_levels + 1))
    hist = hist.reshape(flat.shape[0], n_levels + 1)
    return _reverse_cumulative(hist)


def _reverse_cumulative(hist: np.ndarray) -> np.ndarray:
    """From hist[..., k] = items at level k (k = 0 … K), the items reaching thresholds K-1, …, 0.

    An item reaches threshold j (value j·step) when its level exceeds j, so the count at j is the
    sum of hist[..., j+1:], returned for j from the highest threshold down.
    """
    tail = np.cumsum(hist[..., ::-1], axis=-1)  # tail[..., m] = items with level >= K - m
    return tail[..., :-1]


def _auc_from_counts(pos_above: np.ndarray, n_pos: int, neg_above: np.ndarray, n_neg: int) -> float:
    """Mean over splits of the thresholded ROC area (reference AUC_Borji/AUC_shuffled inner loop)."""
    splits = neg_above.shape[0]
    zeros, ones = np.zeros((splits, 1)), np.ones((splits, 1))
    tp = np.concatenate([zeros, np.broadcast_to(pos_above / n_pos, neg_above.shape), ones], axis=1)
    fp = np.concatenate([zeros, neg_above / n_neg, ones], axis=1)
    return float(_trapezoid(fp, tp).mean())


def _check_splits(n_splits: int) -> None:
    if int(n_splits) < 1:
        raise EvaluationError(f"n_splits must be ≥ 1, got {n_splits}")


def _auc_borji(sal, fix, n_splits, step, rng) -> float:
    n_fix = int(fix.sum())
    scaled = _min_max(sal)
    if n_fix == 0 or scaled is None:
        return 0.5
    values = scaled.ravel()
    grid = _threshold_grid(step)
    pos_above = _counts_at_or_above(_levels(values[fix.ravel()], grid)[None, :], grid.size)[0]
    draws = rng.integers(0, values.size, size=(n_splits, n_fix))  # uniform, with replacement
    neg_above = _counts_at_or_above(_levels(values[draws], grid), grid.size)
    return _auc_from_counts(pos_above, n_fix, neg_above, n_fix)


def auc_borji(saliency_map, fixation_map, *, n_splits: int = N_SPLITS, step: float = STEP,
              seed: Seed = 0) -> float:
    """AUC-Borji: thresholded ROC area against uniformly drawn negative pixels.

    Reference: `AUC_Borji.m`. The prediction is resized and min-max scaled to [0, 1]. For each of
    `n_splits` (100) splits, N_fix pixels are drawn uniformly with replacement from the whole map as
    negatives; thresholds run over 0, 0.1, …, ≤ max (`step` 0.1); TP rate = share of fixated values ≥ t,
    FP rate = share of drawn values ≥ t; trapezoid area from (0, 0) to (1, 1); mean over splits.
    Thresholds above a split's maximum add only (0, 0) points, so the fixed grid up to 1 gives the
    reference's areas.

    Args:
        saliency_map: H'×W' prediction, any real dtype and range.
        fixation_map: H×W binary fixation map.
        n_splits: number of random negative sets (reference 100).
        step: threshold step (reference 0.1).
        seed: int or numpy Generator for the negative draws.

    Returns:
        AUC in [0, 1]; 0.5 for a constant prediction or an empty fixation map (reference: NaN).

    Raises:
        EvaluationError: on bad maps, `n_splits` < 1 or a step outside (0, 1].
    """
    fix = _as_fixations(fixation_map)
    _check_splits(n_splits)
    return _auc_borji(resize_map(saliency_map, fix.shape), fix, int(n_splits), step, _rng(seed))


def _auc_shuffled(sal, fix, other, n_splits, step, rng) -> float:
    n_fix, pool = int(fix.sum()), other.ravel()
    n_neg = min(n_fix, int(pool.sum()))
    scaled = _min_max(sal)
    if n_fix == 0 or n_neg == 0 or scaled is None:
        return 0.5
    values = scaled.ravel()
    grid = _threshold_grid(step)
    pos_above = _counts_at_or_above(_levels(values[fix.ravel()], grid)[None, :], grid.size)[0]
    pool_hist = np.bincount(_levels(values[pool], grid), minlength=grid.size + 1)
    # n_neg of the pool drawn without replacement: only the per-level counts matter, so draw those
    hist = rng.multivariate_hypergeometric(pool_hist, n_neg, size=n_splits)
    neg_above = _reverse_cumulative(hist)
    return _auc_from_counts(pos_above, n_fix, neg_above, n_neg)


def auc_shuffled(saliency_map, fixation_map, other_map, *, n_splits: int = N_SPLITS,
                 step: float = STEP, seed: Seed = 0) -> float:
    """Shuffled AUC (sAUC): AUC-Borji with negatives taken from other images' fixations.

    Reference: `AUC_shuffled.m`. `other_map` is the union of the fixations of M other frames
    (Borji uses M = 10), at the size of `fixation_map`. For each split, min(N_fix, N_other) of the
    other fixated pixels are drawn without replacement as negatives; thresholds, TP/FP rates and
    trapezoid area as in :func:`auc_borji`; mean over `n_splits` (100) splits. The draw is made on
    the counts of negatives per threshold level (a multivariate hypergeometric draw), which has
    exactly the distribution of the reference's `randperm` draw of pixels.

    Args:
        saliency_map: H'×W' prediction, any real dtype and range.
        fixation_map: H×W binary fixation map of this frame.
        other_map: H×W binary map of the other frames' fixations (see `dynsal.evaluate`).
        n_splits: number of random negative sets (reference 100).
        step: threshold step (reference 0.1).
        seed: int or numpy Generator for the negative draws.

    Returns:
        AUC in [0, 1]; 0.5 for a constant prediction, an empty fixation map or an empty `other_map`
        (the reference returns NaN or divides by zero).

    Raises:
        EvaluationError: on bad maps, `other_map` of another shape than `fixation_map`, `n_splits`
            < 1 or a step outside (0, 1].
    """
    fix = _as_fixations(fixation_map)
    other = _as_fixations(other_map, "negative (other-fixation) map")
    if other.shape != fix.shape:
        raise EvaluationError(f"negative map shape {other.shape} differs from the fixation map "
                              f"{fix.shape}; rescale other frames' fixations to the frame size")
    _check_splits(n_splits)
    return _auc_shuffled(resize_map(saliency_map, fix.shape), fix, other, int(n_splits), step, _rng(seed))


# --------------------------------------------------------------------------------------------------
# NSS, CC, SIM, KLD, IG


def _nss(sal: np.ndarray, fix: np.ndarray) -> float:
    z = _z_score(sal)
    if z is None or not fix.any():
        return 0.0
    return float(z[fix].mean())


def nss(saliency_map, fixation_map) -> float:
    """Normalized Scanpath Saliency: mean of the z-scored prediction at fixated pixels.

    Reference: `NSS.m`. The prediction is resized to the fixation map, z-scored with MATLAB's `std`
    (N − 1 in the denominator) and averaged over the fixated pixels.

    Args:
        saliency_map: H'×W' prediction, any real dtype and range.
        fixation_map: H×W binary fixation map.

    Returns:
        NSS (unbounded, 0 = chance); 0.0 for a constant prediction or an empty fixation map
        (reference: NaN).

    Raises:
        EvaluationError: on maps that are not finite 2-D arrays or a non-binary fixation map.
    """
    fix = _as_fixations(fixation_map)
    return _nss(resize_map(saliency_map, fix.shape), fix)


def _cc(sal: np.ndarray, density: np.ndarray) -> float:
    if _is_constant(sal) or _is_constant(density):
        return 0.0
    a, b = sal - sal.mean(), density - density.mean()
    denom = np.sqrt(np.sum(a * a) * np.sum(b * b))
    if denom == 0:
        return 0.0
    return float(np.clip(np.sum(a * b) / denom, -1.0, 1.0))


def cc(saliency_map, density_map) -> float:
    """Pearson's linear correlation coefficient between prediction and ground-truth density.

    Reference: `CC.m` (both maps z-scored, then `corr2`). The prediction is resized to the
    density map's size.

    Args:
        saliency_map: H'×W' prediction, any real dtype and range.
        density_map: H×W continuous ground-truth map, any real dtype and range.

    Returns:
        CC in [-1, 1]; 0.0 if either map is constant (reference: NaN).

    Raises:
        EvaluationError: on maps that are not finite 2-D arrays.
    """
    density = _as_map(density_map, "density map")
    return _cc(resize_map(saliency_map, density.shape), density)


def _sim_distribution(arr: np.ndarray) -> np.ndarray:
    """similarity.m's normalisation: all-zero stays zero, else min-max then sum to 1."""
    if not arr.any():
        return arr
    return _distribution_after_min_max(arr)


def _sim(sal: np.ndarray, density: np.ndarray) -> float:
    return float(np.minimum(_sim_distribution(sal), _sim_distribution(density)).sum())


def sim(saliency_map, density_map) -> float:
    """Similarity (histogram intersection) of prediction and ground-truth density.

    Reference: `similarity.m`. The prediction is resized; each map that is not all zero is min-max
    scaled to [0, 1] and divided by its sum; SIM = Σ min(P, G).

    Args:
        saliency_map: H'×W' prediction, any real dtype and range.
        density_map: H×W continuous ground-truth map.

    Returns:
        SIM in [0, 1]. An all-zero map stays all zero, so SIM is 0.0 (as in the reference); a constant
        non-zero map (reference: NaN) is taken as the uniform distribution 1/(H·W).

    Raises:
        EvaluationError: on maps that are not finite 2-D arrays.
    """
    density = _as_map(density_map, "density map")
    return _sim(resize_map(saliency_map, density.shape), density)


def _sum_normalised(arr: np.ndarray) -> np.ndarray:
    """KLdiv.m's normalisation: divide by the sum unless the map is all zero."""
    total = arr.sum()
    return arr / total if total > 0 else arr


def _kld(sal: np.ndarray, density: np.ndarray) -> float:
    """KLD of a resized prediction whose input was checked non-negative (see `kld`)."""
    _check_non_negative(density, "density map")
    p, g = _sum_normalised(np.maximum(sal, 0.0)), _sum_normalised(density)
    support = g > 0  # terms with G = 0 are exactly 0 · log(EPS) = 0; skip their logarithms
    g, p = g[support], p[support]
    return float(np.sum(g * np.log(EPS + g / (p + EPS))))


def kld(saliency_map, density_map) -> float:
    """Kullback-Leibler divergence KL(G ‖ P) of the ground-truth density from the prediction.

    Reference: `KLdiv.m`. The prediction is resized; both maps are divided by their sums (an
    all-zero map is left as is); KLD = Σ G · log(EPS + G / (P + EPS)), natural log,
    EPS = 2.2204e-16 (MATLAB `eps`; other epsilons change values a lot). Negative values that
    bicubic resizing of a float map can create are set to 0 (the reference would feed them to the
    log); integer maps never get them (see :func:`resize_map`).

    Args:
        saliency_map: H'×W' non-negative prediction.
        density_map: H×W non-negative ground-truth map.

    Returns:
        KLD ≥ 0 (0 = identical distributions; lower is better). 0.0 for an all-zero ground truth; an
        all-zero prediction gives the large finite value of the formula, as in the reference.

    Raises:
        EvaluationError: on maps that are not finite 2-D arrays or have negative values.
    """
    density = _as_map(density_map, "density map")
    _check_non_negative(_as_map(saliency_map, "saliency map"), "saliency map")
    return _kld(resize_map(saliency_map, density.shape), density)


def _information_gain(sal: np.ndarray, fix: np.ndarray, baseline: np.ndarray) -> float:
    if not fix.any():
        return 0.0
    p = _distribution_after_min_max(sal)[fix]
    b = _distribution_after_min_max(baseline)[fix]
    return float(np.mean(np.log2(EPS + p) - np.log2(EPS + b)))


def information_gain(saliency_map, fixation_map, baseline_map) -> float:
    """Information gain (bits per fixation) of the prediction over a baseline map.

    Reference: `InfoGain.m` (Kümmerer et al. 2015). Prediction and baseline are resized to the
    fixation map, each min-max scaled to [0, 1] and divided by its sum;
    IG = mean over fixated pixels of log2(EPS + P) − log2(EPS + B), EPS = 2.2204e-16.

    Args:
        saliency_map: H'×W' prediction, any real dtype and range.
        fixation_map: H×W binary fixation map.
        baseline_map: H''×W'' baseline (e.g. :func:`dynsal.evaluate.centre_bias_map`).

    Returns:
        IG in bits (0 = as good as the baseline). A constant map (reference: NaN) is taken as the
        uniform distribution; 0.0 for an empty fixation map (reference: NaN).

    Raises:
        EvaluationError: on maps that are not finite 2-D arrays or a non-binary fixation map.
    """
    fix = _as_fixations(fixation_map)
    baseline = resize_map(baseline_map, fix.shape)
    return _information_gain(resize_map(saliency_map, fix.shape), fix, baseline)


# --------------------------------------------------------------------------------------------------
# all metrics of one frame, sharing the checks and the resize


def _check_names(metrics: Iterable[str]) -> Tuple[str, ...]:
    names = tuple(metrics)
    unknown = [m for m in names if m not in METRICS]
    if unknown:
        raise EvaluationError(f"unknown metric(s) {', '.join(unknown)}; known: {', '.join(METRICS)}")
    return names


def _ground_truth_shape(fixations, density) -> Tuple[int, int]:
    shapes = {a.shape for a in (fixations, density) if a is not None}
    if not shapes:
        raise EvaluationError("score_frame needs a fixation_map or a density_map")
    if len(shapes) > 1:
        raise EvaluationError(f"fixation map {fixations.shape} and density map {density.shape} "
                              "differ in size; they must describe the same frame")
    return shapes.pop()


def score_frame(saliency_map, *, fixation_map=None, density_map=None, other_map=None,
                baseline_map=None, metrics: Iterable[str] = tuple(METRICS), seed: Seed = 0,
                jitter: bool = True) -> Mapping[str, float]:
    """Several metrics of one frame: inputs are checked and the prediction resized once.

    Each metric gives the same value as its own function called with the same `seed` (every random
    metric starts a fresh generator from `seed` when it is an int).

    Args:
        saliency_map: H'×W' prediction, any real dtype and range.
        fixation_map: H×W binary fixations; needed by auc_judd, auc_borji, sauc, nss, ig.
        density_map: H×W continuous ground truth; needed by cc, sim, kld.
        other_map: H×W binary negative fixations; needed by sauc.
        baseline_map: baseline for ig, any size (resized).
        metrics: names from `METRICS`.
        seed: int (or Generator, then shared in metric order) for the random metrics.
        jitter: AUC-Judd's tie-breaking jitter.

    Returns:
        {metric name: value} in the order of `metrics`.

    Raises:
        EvaluationError: on an unknown metric, missing ground truth for a requested metric, or
            bad maps.
    """
    names = _check_names(metrics)
    fix = None if fixation_map is None else _as_fixations(fixation_map)
    density = None if density_map is None else _as_map(density_map, "density map")
    _require_inputs(names, fix, density, other_map, baseline_map)
    sal = resize_map(saliency_map, _ground_truth_shape(fix, density))
    other = None if other_map is None else _as_fixations(other_map, "negative (other-fixation) map")
    if other is not None and fix is not None and other.shape != fix.shape:
        raise EvaluationError(f"negative map shape {other.shape} differs from the fixation map {fix.shape}")
    baseline = None if baseline_map is None else resize_map(baseline_map, sal.shape)
    if "kld" in names:
        _check_non_negative(_as_map(saliency_map, "saliency map"), "saliency map")
    compute = {
        "auc_judd": lambda: _auc_judd(sal, fix, jitter, _rng(seed)),
        "auc_borji": lambda: _auc_borji(sal, fix, N_SPLITS, STEP, _rng(seed)),
        "sauc": lambda: _auc_shuffled(sal, fix, other, N_SPLITS, STEP, _rng(seed)),
        "nss": lambda: _nss(sal, fix),
        "cc": lambda: _cc(sal, density),
        "sim": lambda: _sim(sal, density),
        "kld": lambda: _kld(sal, density),
        "ig": lambda: _information_gain(sal, fix, baseline),
    }
    return {name: compute[name]() for name in names}


def _require_inputs(names, fix, density, other, baseline) -> None:
    needs = {"fixation_map": (fix, FIXATION_METRICS), "density_map": (density, DENSITY_METRICS),
             "other_map": (other, ("sauc",)), "baseline_map": (baseline, ("ig",))}
    for arg, (value, users) in needs.items():
        missing = [n for n in names if n in users]
        if value is None and missing:
            raise EvaluationError(f"{', '.join(missing)} need(s) {arg}")
