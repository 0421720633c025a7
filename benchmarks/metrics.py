"""Throughput of dynsal.metrics: frames/s for the full metric set and per metric, printed as JSON.

Synthetic frames like a video saliency dataset's: a centre-biased prediction with noise, 30 fixated
pixels drawn from a centre-biased gaze distribution, the density map blurred from them, and sAUC
negatives from 10 other frames (≈ 300 pixels). Sizes 240×320 and 360×640 (H×W). Reported side by
side: one process, `--workers` processes (the goal is ≥ 200 frames/s at 240×320 on 2 cores), and a
baseline of the reference's loop structure (one pass over the map per threshold, one loop per split)
for the AUC metrics, which are the expensive ones.

    python benchmarks/metrics.py [--seconds 2] [--workers 2]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dynsal import metrics as M  # noqa: E402

SIZES = {"240x320": (240, 320), "360x640": (360, 640)}
FIXATIONS = 30
OTHER_FRAMES = 10
N_FRAMES = 16


def _gaze(rng, shape, n):
    rows = np.clip(rng.normal(shape[0] / 2, shape[0] / 6, n).astype(int), 0, shape[0] - 1)
    cols = np.clip(rng.normal(shape[1] / 2, shape[1] / 6, n).astype(int), 0, shape[1] - 1)
    out = np.zeros(shape, bool)
    out[rows, cols] = True
    return out


def _blur(image, sigma):
    radius = int(3 * sigma)
    kernel = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    rows = np.apply_along_axis(np.convolve, 0, image, kernel, mode="same")
    return np.apply_along_axis(np.convolve, 1, rows, kernel, mode="same")


def make_frames(shape, n, seed=0):
    """n synthetic frames: dicts with the inputs of `dynsal.metrics.score_frame`."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:shape[0], :shape[1]]
    centre = np.exp(-0.5 * (((yy - shape[0] / 2) / (shape[0] / 4)) ** 2 + ((xx - shape[1] / 2) / (shape[1] / 4)) ** 2))
    fixations = [_gaze(rng, shape, FIXATIONS) for _ in range(n + OTHER_FRAMES)]
    frames = []
    for i in range(n):
        other = np.zeros(shape, bool)
        for j in rng.choice(np.arange(n, n + OTHER_FRAMES), OTHER_FRAMES, replace=False):
            other |= fixations[j]
        frames.append({
            "saliency_map": np.round(255 * (0.7 * centre + 0.3 * rng.random(shape))).astype(np.uint8),
            "fixation_map": fixations[i], "density_map": _blur(fixations[i].astype(float), 12.7),
            "other_map": other, "baseline_map": centre,
        })
    return frames


def _fps(fn, frames, seconds):
    """Frames per second of fn(frame) over the frames, repeated for about `seconds`."""
    fn(frames[0])
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for frame in frames:
            fn(frame)
        done += len(frames)
    return done / (time.perf_counter() - start)


def _full_set(frame):
    return M.score_frame(**frame)


def _one(metric):
    return lambda frame: M.score_frame(metrics=[metric], **frame)


def _area(fp, tp):
    fp, tp = np.asarray(fp), np.asarray(tp)
    return float(np.sum(np.diff(fp) * (tp[1:] + tp[:-1])) / 2)


def _reference_judd(s, fix):
    """AUC_Judd.m's loop: one pass over the map per fixation threshold."""
    pos = np.sort(s[fix])[::-1]
    n, npix = pos.size, s.size
    tp = [0.0] + [i / n for i in range(1, n + 1)] + [1.0]
    fp = [0.0] + [(np.sum(s >= t) - i) / (npix - n) for i, t in enumerate(pos, 1)] + [1.0]
    return _area(fp, tp)


def _reference_thresholded(pos, negatives):
    """AUC_Borji.m / AUC_shuffled.m's loops: one loop per split, one pass per threshold."""
    areas = []
    for neg in negatives:
        thresholds = np.arange(0, max(pos.max(), neg.max()) + 1e-9, M.STEP)[::-1]
        tp = [0.0] + [np.mean(pos >= t) for t in thresholds] + [1.0]
        fp = [0.0] + [np.mean(neg >= t) for t in thresholds] + [1.0]
        areas.append(_area(fp, tp))
    return float(np.mean(areas))


def _reference_loops(frame):
    """AUC-Judd, AUC-Borji and sAUC written as the reference's loops (the baseline)."""
    rng = np.random.default_rng(0)
    sal = M.resize_map(frame["saliency_map"], frame["fixation_map"].shape).ravel()
    sal = sal + rng.random(sal.size) * M.JITTER
    s = (sal - sal.min()) / (sal.max() - sal.min())
    fix = frame["fixation_map"].ravel()
    pos, pool = s[fix], s[frame["other_map"].ravel()]
    uniform = [s[rng.integers(0, s.size, pos.size)] for _ in range(M.N_SPLITS)]
    shuffled = [rng.permutation(pool)[:pos.size] for _ in range(M.N_SPLITS)]
    return _reference_judd(s, fix), _reference_thresholded(pos, uniform), _reference_thresholded(pos, shuffled)


def _worker(shape, seconds):
    frames = make_frames(shape, N_FRAMES, seed=os.getpid())
    return _fps(_full_set, frames, seconds)


def _parallel_fps(shape, workers, seconds):
    """Total frames/s of `workers` processes each scoring frames for about `seconds`."""
    with ProcessPoolExecutor(max_workers=workers) as pool:
        list(pool.map(_worker, [shape] * workers, [0.05] * workers))  # start the workers
        return sum(pool.map(_worker, [shape] * workers, [seconds] * workers))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="time per measurement (default 2)")
    parser.add_argument("--workers", type=int, default=2, help="processes for the parallel figure (default 2)")
    args = parser.parse_args(argv)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    report = {
        "benchmark": "dynsal.metrics frames/s (higher is better)",
        "numpy": np.__version__, "python": platform.python_version(), "machine": platform.machine(),
        "cpu_cores_available": cores, "fixations_per_frame": FIXATIONS, "sauc_other_frames": OTHER_FRAMES,
        "metrics": list(M.METRICS), "goal": ">= 200 frames/s, full set, 240x320, 2 cores", "sizes": {},
    }
    for name, shape in SIZES.items():
        frames = make_frames(shape, N_FRAMES)
        report["sizes"][name] = {
            "full_set_1_process": round(_fps(_full_set, frames, args.seconds), 1),
            f"full_set_{args.workers}_processes": round(_parallel_fps(shape, args.workers, args.seconds), 1),
            "per_metric_1_process": {m: round(_fps(_one(m), frames, args.seconds / 4), 1) for m in M.METRICS},
            "baseline_reference_loops_auc_only_1_process": round(
                _fps(_reference_loops, frames[:4], args.seconds / 2), 1),
        }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
