"""dynsal.metrics: hand-computed values, textbook values, invariances, independent cross-checks."""
from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy import stats
from sklearn.metrics import roc_auc_score

from dynsal import metrics as M
from dynsal.errors import DynsalError, EvaluationError

# 3×3 map with the values 0 … 8 (row-major); fixations on the pixels holding 8 and 5.
RAMP = np.arange(9, dtype=float).reshape(3, 3)
RAMP_FIX = np.isin(RAMP, [8, 5])


def centre_data(shape=(48, 64), n_fix=40, seed=3):
    """A smooth centre-biased prediction, centre-biased fixations and a blurred density map."""
    rng = np.random.default_rng(seed)
    rows = np.clip(rng.normal(shape[0] / 2, shape[0] / 6, n_fix).astype(int), 0, shape[0] - 1)
    cols = np.clip(rng.normal(shape[1] / 2, shape[1] / 6, n_fix).astype(int), 0, shape[1] - 1)
    fix = np.zeros(shape, bool)
    fix[rows, cols] = True
    yy, xx = np.mgrid[:shape[0], :shape[1]]
    density = sum(np.exp(-((yy - r) ** 2 + (xx - c) ** 2) / 18.0) for r, c in zip(rows, cols))
    pred = np.exp(-((yy - shape[0] / 2) ** 2 / (2 * (shape[0] / 4) ** 2)
                    + (xx - shape[1] / 2) ** 2 / (2 * (shape[1] / 4) ** 2))) + rng.random(shape) * 0.2
    return pred, fix, density


# ---------------------------------------------------------------------------------------------- known answers


def test_auc_judd_hand_computed():
    # normalised values v/8; thresholds (fixated values, descending) 1.0 and 0.625.
    # t = 1.0: 1 pixel ≥ t → TP 1/2, FP (1 − 1)/7 = 0.  t = 0.625: pixels 5,6,7,8 ≥ t → TP 1, FP (4 − 2)/7.
    # ROC (0,0) (0,.5) (2/7,1) (1,1): area 0 + 2/7·(.5 + 1)/2 + 5/7·1 = 3/14 + 10/14 = 13/14.
    assert M.auc_judd(RAMP, RAMP_FIX, jitter=False) == pytest.approx(13 / 14, abs=1e-15)


def test_auc_judd_counts_ties_like_the_reference():
    # no jitter, values [1, 1, 0, 0], fixation on the first pixel only: TP(i=1) = 1/1 while the
    # count of pixels ≥ 1 is 2, so FP = (2 − 1)/3: ROC (0,0) (1/3,1) (1,1) → area 1/6 + 2/3 = 5/6.
    sal = np.array([[1.0, 1.0, 0.0, 0.0]])
    fix = np.array([[1, 0, 0, 0]])
    assert M.auc_judd(sal, fix, jitter=False) == pytest.approx(5 / 6, abs=1e-15)


def test_auc_borji_hand_computed_from_the_documented_draws():
    # 1×2 map [0, 1], fixation on the 1.  Each split draws one pixel (rng.integers(0, 2, (100, 1))):
    # drawing the 1 gives TP = FP at every threshold → area 0.5; drawing the 0 gives FP = 0 until t = 0
    # → area 1.  So AUC = 1 − 0.5·k/100 with k the number of splits that drew the fixated pixel.
    draws = np.random.default_rng(7).integers(0, 2, size=(100, 1))
    k = int((draws == 1).sum())
    assert 0 < k < 100
    got = M.auc_borji(np.array([[0.0, 1.0]]), np.array([[0, 1]]), seed=7)
    assert got == pytest.approx(1 - 0.5 * k / 100, abs=1e-15)


def test_auc_shuffled_hand_computed():
    # positives 1.0 and .625 (pixels 8, 5); negatives: other fixations on pixels 2 and 6 → .25, .75.
    # N_other = N_fix = 2, so every split takes both.  Thresholds 1.0 … 0.0 step 0.1:
    # t ∈ {1,.9,.8}: TP .5 FP 0; t = .7: TP .5 FP .5; t ∈ {.6 … .3}: TP 1 FP .5; t ≤ .2: TP 1 FP 1.
    # ROC (0,0) (0,.5) (.5,.5) (.5,1) (1,1): area .25 + .5 = .75.
    other = np.isin(RAMP, [2, 6])
    assert M.auc_shuffled(RAMP, RAMP_FIX, other) == pytest.approx(0.75, abs=1e-15)


def test_nss_hand_computed():
    # values [0, 0, 0, 4]: mean 1, std (N−1) = sqrt((1 + 1 + 1 + 9)/3) = 2 → z at the 4 = 1.5
    assert M.nss(np.array([[0.0, 0.0], [0.0, 4.0]]), np.array([[0, 0], [0, 1]])) == pytest.approx(1.5)


def test_cc_hand_computed():
    # a − mean = [.75, −.25, −.25, −.25], b − mean = [.5, .5, −.5, −.5]: Σab = .5, Σa² = .75, Σb² = 1
    a = np.array([[1.0, 0.0], [0.0, 0.0]])
    b = np.array([[1.0, 1.0], [0.0, 0.0]])
    assert M.cc(a, b) == pytest.approx(0.5 / math.sqrt(0.75), abs=1e-15)


def test_sim_hand_computed_with_min_max_step():
    # [[3,2],[2,2]] min-max scales to [[1,0],[0,0]] → [1,0,0,0]; G → [.5,.5,0,0]; Σ min = .5
    assert M.sim(np.array([[3.0, 2.0], [2.0, 2.0]]), np.array([[1.0, 1.0], [0.0, 0.0]])) == pytest.approx(0.5)


def test_kld_hand_computed():
    # G = [.5, .5, 0, 0], P uniform .25: KLD = 2 · .5 · log(eps + .5/(.25 + eps)) = log 2 (to 1e-15)
    got = M.kld(np.ones((2, 2)), np.array([[1.0, 1.0], [0.0, 0.0]]))
    assert got == pytest.approx(math.log(2), abs=1e-14)


def test_ig_hand_computed_including_eps():
    # P min-max → [1,0,0,0]; a constant baseline is the uniform .25.
    # fixation on the peak: log2(1 + eps) − log2(.25 + eps) = 2; off the peak: log2(eps) − log2(.25) = −50
    sal = np.array([[3.0, 1.0], [1.0, 1.0]])
    base = np.ones((2, 2))
    assert M.information_gain(sal, np.array([[1, 0], [0, 0]]), base) == pytest.approx(2.0, abs=1e-12)
    assert M.information_gain(sal, np.array([[0, 1], [0, 0]]), base) == pytest.approx(-50.0, abs=1e-9)


# ---------------------------------------------------------------------------------------------- textbook values


def test_uniform_prediction_scores_chance():
    _, fix, density = centre_data()
    flat = np.full(fix.shape, 0.3)
    assert M.auc_judd(flat, fix) == 0.5
    assert M.auc_borji(flat, fix) == 0.5
    assert M.auc_shuffled(flat, fix, np.roll(fix, 5, axis=1)) == 0.5
    assert M.nss(flat, fix) == 0.0
    assert M.cc(flat, density) == 0.0
    assert M.information_gain(flat, fix, np.ones(fix.shape)) == pytest.approx(0.0, abs=1e-12)


def test_perfect_prediction_scores_the_maximum():
    _, fix, density = centre_data()
    assert M.auc_judd(fix.astype(float), fix) == pytest.approx(1.0, abs=1e-15)
    assert M.cc(density, density) == pytest.approx(1.0, abs=1e-12)
    assert M.sim(density, density) == pytest.approx(1.0, abs=1e-12)
    assert M.kld(density, density) == pytest.approx(0.0, abs=1e-12)


def test_sauc_with_own_fixations_as_negatives_is_chance():
    pred, fix, _ = centre_data()
    assert M.auc_shuffled(pred, fix, fix) == pytest.approx(0.5, abs=1e-15)


def test_centre_prediction_beats_noise():
    pred, fix, density = centre_data()
    noise = np.random.default_rng(0).random(fix.shape)
    assert M.auc_judd(pred, fix) > M.auc_judd(noise, fix) + 0.1
    assert M.nss(pred, fix) > M.nss(noise, fix) + 0.5
    assert M.cc(pred, density) > M.cc(noise, density) + 0.1
    assert M.kld(pred, density) < M.kld(noise, density)


# ---------------------------------------------------------------------------------------------- edge cases


def test_empty_fixations_give_chance_values():
    pred, fix, _ = centre_data()
    empty = np.zeros_like(fix)
    assert M.auc_judd(pred, empty) == 0.5
    assert M.auc_borji(pred, empty) == 0.5
    assert M.auc_shuffled(pred, empty, fix) == 0.5
    assert M.auc_shuffled(pred, fix, empty) == 0.5
    assert M.nss(pred, empty) == 0.0
    assert M.information_gain(pred, empty, pred) == 0.0


def test_constant_and_zero_maps_are_defined():
    pred, _, density = centre_data()
    zero = np.zeros(density.shape)
    assert M.cc(pred, zero) == 0.0
    assert M.sim(zero, density) == 0.0  # an all-zero map stays zero (similarity.m)
    # a constant non-zero map is the uniform distribution: Σ min(1/N, G)
    g = density / density.sum()
    assert M.sim(np.full(density.shape, 7.0), density) == pytest.approx(np.minimum(1 / g.size, g).sum())
    assert M.kld(pred, zero) == 0.0
    assert np.isfinite(M.kld(zero, density)) and M.kld(zero, density) > 10  # the reference's eps value
    for value in (M.auc_judd(zero, density > 0), M.nss(zero, density > 0)):
        assert not math.isnan(value)


def test_all_pixels_fixated_gives_chance():
    assert M.auc_judd(RAMP, np.ones((3, 3), bool)) == 0.5


# ---------------------------------------------------------------------------------------------- invariances


@pytest.mark.parametrize("scale, offset", [(3.0, 0.0), (0.01, 5.0), (250.0, -40.0)])
def test_affine_invariance(scale, offset):
    pred, fix, density = centre_data()
    other = np.roll(fix, 11, axis=1)
    moved = pred * scale + offset
    assert M.auc_judd(moved, fix, jitter=False) == pytest.approx(M.auc_judd(pred, fix, jitter=False), abs=1e-12)
    assert M.auc_borji(moved, fix) == pytest.approx(M.auc_borji(pred, fix), abs=1e-12)
    assert M.auc_shuffled(moved, fix, other) == pytest.approx(M.auc_shuffled(pred, fix, other), abs=1e-12)
    assert M.nss(moved, fix) == pytest.approx(M.nss(pred, fix), abs=1e-9)
    assert M.cc(moved, density * scale + offset) == pytest.approx(M.cc(pred, density), abs=1e-12)
    assert M.sim(moved, density) == pytest.approx(M.sim(pred, density), abs=1e-12)
    assert M.information_gain(moved, fix, density) == pytest.approx(
        M.information_gain(pred, fix, density), abs=1e-9)


def test_kld_is_scale_invariant_but_not_offset_invariant():
    pred, _, density = centre_data()
    assert M.kld(pred * 40, density * 0.5) == pytest.approx(M.kld(pred, density), rel=1e-12)
    assert M.kld(pred + 5, density) != pytest.approx(M.kld(pred, density), rel=1e-3)


def test_auc_judd_depends_on_the_ranking_only():
    pred, fix, _ = centre_data()
    assert M.auc_judd(pred ** 3, fix, jitter=False) == pytest.approx(M.auc_judd(pred, fix, jitter=False),
                                                                    abs=1e-12)


# ---------------------------------------------------------------------------------------------- cross-checks


def test_auc_judd_against_sklearn():
    # Without ties, the exact ROC area (sklearn) and AUC-Judd differ by one known term: Judd joins
    # consecutive fixation thresholds with straight lines, adding FP_N / (2 N_fix), FP_N being the
    # FP rate at the lowest fixated value.  Tolerance 1e-12 (float64 summation order).
    rng = np.random.default_rng(11)
    sal = rng.random((60, 80))
    fix = rng.random((60, 80)) < 0.01
    negatives = sal[~fix]
    fp_last = (negatives >= sal[fix].min()).mean()
    expected = roc_auc_score(fix.ravel(), sal.ravel()) + fp_last / (2 * fix.sum())
    assert M.auc_judd(sal, fix, jitter=False) == pytest.approx(expected, abs=1e-12)


def _thresholded_auc_reference(positives, negatives, step=0.1):
    """A literal transcription of the inner loop of AUC_Borji.m / AUC_shuffled.m."""
    top = max(positives.max(), negatives.max())
    thresholds = [k * step for k in range(int(math.floor(top / step + 1e-9)) + 1)][::-1]
    tp = [0.0] + [float((positives >= t).mean()) for t in thresholds] + [1.0]
    fp = [0.0] + [float((negatives >= t).mean()) for t in thresholds] + [1.0]
    return sum((fp[i + 1] - fp[i]) * (tp[i + 1] + tp[i]) / 2 for i in range(len(tp) - 1))


def test_auc_borji_against_a_literal_loop():
    pred, fix, _ = centre_data()
    norm = (pred - pred.min()) / (pred.max() - pred.min())
    draws = np.random.default_rng(5).integers(0, pred.size, size=(100, int(fix.sum())))
    expected = np.mean([_thresholded_auc_reference(norm[fix], norm.ravel()[d]) for d in draws])
    assert M.auc_borji(pred, fix, seed=5) == pytest.approx(expected, abs=1e-12)


def test_auc_shuffled_against_a_literal_loop_when_all_negatives_are_used():
    pred, fix, _ = centre_data(n_fix=60)
    other = np.zeros_like(fix)
    other[10:14, 20:30] = True  # 40 negatives ≤ N_fix: every split uses all of them
    assert other.sum() <= fix.sum()
    norm = (pred - pred.min()) / (pred.max() - pred.min())
    expected = _thresholded_auc_reference(norm[fix], norm[other])
    assert M.auc_shuffled(pred, fix, other) == pytest.approx(expected, abs=1e-12)


def test_thresholds_on_values_that_sit_on_the_grid():
    # values 0, 0.1, …, 1 written as decimal literals: 0.3 < 3·0.1 in float64, so which threshold a
    # value reaches must follow the reference's float comparisons exactly, not rounding
    rng = np.random.default_rng(8)
    pred = np.round(rng.random((20, 30)) * 10) / 10
    pred[0, 0], pred[0, 1] = 0.0, 1.0
    fix = rng.random(pred.shape) < 0.2
    other = ~fix & (rng.random(pred.shape) < 0.1)
    assert other.sum() <= fix.sum()
    expected = _thresholded_auc_reference(pred[fix], pred[other])
    assert M.auc_shuffled(pred, fix, other) == pytest.approx(expected, abs=1e-12)


def test_auc_shuffled_draw_matches_sampling_without_replacement_on_average():
    # the per-level hypergeometric draw has the distribution of drawing pixels without replacement:
    # the mean over 100 splits agrees with 2000 literal random subsets to within 0.01
    # (the splits' standard deviation is ≈ 0.02 here, so 0.01 is > 4 standard errors of the 100-split mean).
    pred, fix, _ = centre_data(n_fix=30)
    other = np.random.default_rng(2).random(fix.shape) < 0.05
    norm = (pred - pred.min()) / (pred.max() - pred.min())
    pool = norm[other]
    rng = np.random.default_rng(9)
    literal = np.mean([_thresholded_auc_reference(norm[fix], rng.permutation(pool)[:int(fix.sum())])
                       for _ in range(2000)])
    assert M.auc_shuffled(pred, fix, other, seed=4) == pytest.approx(literal, abs=0.01)


def test_nss_against_scipy_zscore():
    pred, fix, _ = centre_data()
    assert M.nss(pred, fix) == pytest.approx(stats.zscore(pred, axis=None, ddof=1)[fix].mean(), abs=1e-12)


def test_cc_against_scipy_pearsonr():
    pred, _, density = centre_data()
    assert M.cc(pred, density) == pytest.approx(stats.pearsonr(pred.ravel(), density.ravel())[0], abs=1e-12)


def test_kld_against_scipy_entropy():
    # scipy.stats.entropy(G, P) = Σ G log(G/P) after normalising; the eps terms move the value by
    # < 1e-12 when P > 0.2 everywhere.  Tolerance 1e-10 relative.
    pred, _, density = centre_data()
    assert M.kld(pred, density) == pytest.approx(stats.entropy(density.ravel(), pred.ravel()), rel=1e-10)


def test_sim_against_the_l1_identity():
    # for distributions P, G: Σ min(P, G) = 1 − ½ Σ |P − G| (independent formula); tolerance 1e-12
    pred, _, density = centre_data()
    p = (pred - pred.min()) / np.ptp(pred)
    g = (density - density.min()) / np.ptp(density)
    p, g = p / p.sum(), g / g.sum()
    assert M.sim(pred, density) == pytest.approx(1 - 0.5 * np.abs(p - g).sum(), abs=1e-12)


# ---------------------------------------------------------------------------------------------- resizing


def test_resize_matches_pillow_bicubic_away_from_the_borders():
    # Pillow's BICUBIC is the same Keys kernel (a = −0.5) with the same antialiasing; it handles
    # borders differently (renormalised weights instead of MATLAB's mirror), so compare the interior.
    # Tolerance 1e-4 (Pillow computes in float32).
    rng = np.random.default_rng(1)
    image = rng.random((30, 40))
    for shape in ((60, 80), (15, 20)):
        ours = M.resize_map(image, shape)
        pil = np.asarray(Image.fromarray(image.astype(np.float32)).resize(
            (shape[1], shape[0]), Image.BICUBIC))
        m = 6
        assert np.abs(ours[m:-m, m:-m] - pil[m:-m, m:-m]).max() < 1e-4


def test_resize_keeps_constants_and_is_used_by_the_metrics():
    assert np.allclose(M.resize_map(np.full((7, 9), 2.5), (20, 13)), 2.5)
    pred, fix, density = centre_data()
    small = M.resize_map(pred, (24, 32))
    assert M.cc(small, density) == pytest.approx(M.cc(M.resize_map(small, density.shape), density))
    assert M.nss(small, fix) == pytest.approx(M.nss(M.resize_map(small, fix.shape), fix))


# ---------------------------------------------------------------------------------------------- seeds, batching


def test_random_metrics_are_seeded():
    pred, fix, _ = centre_data()
    other = np.random.default_rng(2).random(fix.shape) < 0.05
    assert M.auc_borji(pred, fix, seed=3) == M.auc_borji(pred, fix, seed=3)
    assert M.auc_borji(pred, fix, seed=3) != M.auc_borji(pred, fix, seed=4)
    assert M.auc_shuffled(pred, fix, other, seed=3) == M.auc_shuffled(pred, fix, other, seed=3)
    assert M.auc_judd(pred, fix, seed=1) == M.auc_judd(pred, fix, seed=1)


def test_score_frame_equals_the_single_metrics():
    pred, fix, density = centre_data()
    small = M.resize_map(pred, (30, 40))
    other = np.roll(fix, 9, axis=0)
    base = np.ones((5, 5))
    got = M.score_frame(small, fixation_map=fix, density_map=density, other_map=other, baseline_map=base,
                        seed=6)
    assert list(got) == list(M.METRICS)
    assert got == {
        "auc_judd": M.auc_judd(small, fix, seed=6), "auc_borji": M.auc_borji(small, fix, seed=6),
        "sauc": M.auc_shuffled(small, fix, other, seed=6), "nss": M.nss(small, fix),
        "cc": M.cc(small, density), "sim": M.sim(small, density), "kld": M.kld(small, density),
        "ig": M.information_gain(small, fix, base),
    }


# ---------------------------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("call, words", [
    (lambda: M.nss(RAMP, RAMP * 2), "not binary"),
    (lambda: M.nss(np.ones((3, 3, 3)), RAMP_FIX), "2-D"),
    (lambda: M.cc(np.array([[np.nan, 1.0]]), np.ones((1, 2))), "NaN"),
    (lambda: M.kld(RAMP - 4, RAMP), "negative"),
    (lambda: M.auc_shuffled(RAMP, RAMP_FIX, np.ones((2, 2), bool)), "negative map shape"),
    (lambda: M.auc_borji(RAMP, RAMP_FIX, seed=-1), "seed"),
    (lambda: M.auc_borji(RAMP, RAMP_FIX, n_splits=0), "n_splits"),
    (lambda: M.resize_map(RAMP, (0, 4)), "resize"),
    (lambda: M.score_frame(RAMP, density_map=RAMP, metrics=["nss"]), "fixation_map"),
    (lambda: M.score_frame(RAMP, density_map=RAMP, metrics=["AUC"]), "unknown metric"),
    (lambda: M.score_frame(RAMP, fixation_map=RAMP_FIX, density_map=np.ones((2, 2)), metrics=["cc"]),
     "differ in size"),
])
def test_bad_input_raises_a_dynsal_error(call, words):
    with pytest.raises(EvaluationError, match=words) as info:
        call()
    assert isinstance(info.value, DynsalError)


def test_metrics_do_not_import_torch():
    root = str(Path(__file__).resolve().parents[1])
    code = ("import sys, dynsal, dynsal.metrics, dynsal.evaluate, dynsal.commands.eval; "
            "assert 'torch' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=root, env={**os.environ, "PYTHONPATH": root})


def test_integer_maps_are_rounded_and_clipped_after_resizing_like_matlab():
    # a uint8 step edge overshoots under bicubic upsampling; MATLAB returns uint8, i.e. rounded and
    # clipped to [0, 255], so a PNG map never turns negative
    step = np.zeros((4, 4), np.uint8)
    step[:, 2:] = 255
    up = M.resize_map(step, (8, 8))
    assert up.min() == 0 and up.max() == 255 and np.array_equal(up, np.round(up))
    floats = M.resize_map(step.astype(float), (8, 8))
    assert floats.min() < 0 and floats.max() > 255  # double input: no clipping, as in MATLAB
    assert np.array_equal(up, np.clip(np.floor(floats + 0.5), 0, 255))


def test_kld_sets_resize_overshoot_to_zero():
    step = np.zeros((4, 4))
    step[:, 2:] = 1.0
    density = np.ones((8, 8))
    clipped = np.maximum(M.resize_map(step, (8, 8)), 0)
    assert M.kld(step, density) == pytest.approx(M.kld(clipped, density), abs=1e-15)
