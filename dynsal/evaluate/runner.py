"""The evaluation run: pair, load fixations, draw the sAUC negatives, score every model on every frame."""
from __future__ import annotations

import os
import re
from concurrent.futures import as_completed
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from dynsal import __version__
from dynsal import metrics as M
from dynsal.data.ground_truth import read_fixations, read_map
from dynsal.errors import EvaluationError
from dynsal.evaluate.baselines import BASELINES, CENTRE_SIGMA, centre_bias_map, chance_map
from dynsal.evaluate.negatives import (
    AUTO_POOL,
    SAUC_POOLS,
    Points,
    fixation_points,
    negative_points,
    points_to_map,
    resolve_pool,
)
from dynsal.evaluate.pairing import Frame, by_video, find_frames
from dynsal.evaluate.result import EvaluationResult, FrameScore
from dynsal.progress import progress_bar
from dynsal.seeds import frame_seed
from dynsal.workers import WorkerProcesses, interrupts_ignored


@dataclass(frozen=True)
class _Job:
    frames: Tuple[Frame, ...]
    fixations: Tuple[Optional[Points], ...]
    negatives: Tuple[Tuple[Points, ...], ...]
    metrics: Tuple[str, ...]
    models: Tuple[str, ...]
    baselines: Tuple[str, ...]
    seed: int


def _load_fixations(frames: Tuple[Frame, ...]) -> List[Points]:
    return [fixation_points(read_fixations(f.fixations)) for f in frames]


def _truth_shape(frame: Frame, density: Optional[np.ndarray], points: Optional[Points]):
    shapes = {s for s in (None if density is None else density.shape,
                          None if points is None else points[2]) if s is not None}
    if len(shapes) > 1:
        raise EvaluationError(f"{frame.video}/{frame.frame}: maps/ and fixation/ differ in size "
                              f"{sorted(shapes)}")
    return shapes.pop()


def _models(frame: Frame, names: Sequence[str], shape, baselines, seed) -> Dict[str, Tuple[np.ndarray, str]]:
    """{model or baseline: (its map of this frame, where it comes from)}."""
    models = {name: (read_map(path), str(path)) for name, path in zip(names, frame.predictions)}
    if "centre" in baselines:
        models["centre"] = (centre_bias_map(shape), f"{frame.video}/{frame.frame}: centre baseline")
    if "chance" in baselines:
        models["chance"] = (chance_map(shape, frame_seed(seed, frame.video, frame.frame, 1)),
                            f"{frame.video}/{frame.frame}: chance baseline")
    return models


def _score_one(job: _Job, i: int) -> List[FrameScore]:
    frame, points = job.frames[i], job.fixations[i]
    needs_density = any(m in M.DENSITY_METRICS for m in job.metrics)
    density = read_map(frame.density) if needs_density else None
    shape = _truth_shape(frame, density, points)
    fixations = None if points is None else points_to_map([points], shape)
    usable = [m for m in job.metrics
              if m not in M.FIXATION_METRICS or (fixations is not None and fixations.any())]
    inputs = {"fixation_map": fixations, "density_map": density}
    if "sauc" in usable:
        inputs["other_map"] = points_to_map(job.negatives[i], shape)
    if "ig" in usable:
        inputs["baseline_map"] = centre_bias_map(shape)
    seed = frame_seed(job.seed, frame.video, frame.frame)
    rows = []
    for model, (saliency, source) in _models(frame, job.models, shape, job.baselines, job.seed).items():
        try:
            values = M.score_frame(saliency, metrics=usable, seed=seed, **inputs)
        except EvaluationError as exc:
            raise EvaluationError(f"{source}: {exc}") from exc
        rows.append(FrameScore(model, frame.video, frame.frame,
                               {m: values.get(m) for m in job.metrics}))
    return rows


def _score_job(job: _Job) -> List[FrameScore]:
    rows: List[FrameScore] = []
    for i in range(len(job.frames)):
        rows += _score_one(job, i)
    return rows


def _run(fn: Callable, jobs_in: Sequence, jobs: int, bar, sizes: Sequence[int]) -> List:
    """fn over jobs_in, in `jobs` processes (1: in this process); results in input order."""
    results: List = [None] * len(jobs_in)
    if jobs <= 1 or len(jobs_in) <= 1:
        for i, item in enumerate(jobs_in):
            results[i] = fn(item)
            bar.update(sizes[i])
        return results
    with WorkerProcesses(jobs, start_method=None, error=EvaluationError).executor() as pool:
        with interrupts_ignored():  # the workers start on submit
            futures = {pool.submit(fn, item): i for i, item in enumerate(jobs_in)}
        try:
            for future in as_completed(futures):
                results[futures[future]] = future.result()
                bar.update(sizes[futures[future]])
        except BaseException:
            for future in futures:
                future.cancel()
            raise
    return results


def _stage(fn: Callable, items: Sequence, jobs: int, sizes: Sequence[int], progress: bool,
           what: str) -> List:
    """One parallel pass with its own progress bar."""
    with progress_bar(sum(sizes), f"dynsal eval: {what}", "frames", enabled=progress) as bar:
        return _run(fn, items, jobs, bar, sizes)


#: what a model's name may hold (it names columns, HTML anchors and LaTeX rows)
MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]*\Z")


def _check_models(models: Mapping[str, object], baselines: Sequence[str]) -> None:
    if not models:
        raise EvaluationError("no model to evaluate: give PRED_DIR, or --model NAME=DIR")
    for name in models:
        if not MODEL_NAME.match(name):
            raise EvaluationError(f"model name {name!r}: use letters, digits and . _ + - (starting with a letter "
                                  "or digit)")
        if name in BASELINES:
            raise EvaluationError(f"model name {name!r} is a baseline's; give the model another name")


def _check_options(metrics, baselines, sauc_negatives, sauc_pool, seed, jobs) -> None:
    unknown = [m for m in metrics if m not in M.METRICS]
    if unknown or not metrics:
        raise EvaluationError(f"unknown metric(s) {', '.join(unknown) or '(none given)'}; "
                              f"choose from {', '.join(M.METRICS)}")
    bad = [b for b in baselines if b not in BASELINES]
    if bad:
        raise EvaluationError(f"unknown baseline(s) {', '.join(bad)}; choose from {', '.join(BASELINES)}")
    if "sauc" in metrics and sauc_negatives < 1:
        raise EvaluationError(f"sAUC needs --sauc-negatives ≥ 1, got {sauc_negatives}")
    if sauc_pool not in SAUC_POOLS + (AUTO_POOL,):
        raise EvaluationError(f"unknown sAUC pool {sauc_pool!r}; use one of {', '.join(SAUC_POOLS + (AUTO_POOL,))}")
    if seed < 0:
        raise EvaluationError(f"seed must be ≥ 0, got {seed}")
    if jobs < 0:
        raise EvaluationError(f"jobs must be ≥ 0 (0 = one per CPU core), got {jobs}")


def evaluate(predictions, ground_truth_dir, *, metrics: Sequence[str] = tuple(M.METRICS),
             baselines: Sequence[str] = (), sauc_negatives: int = 10, sauc_pool: str = AUTO_POOL,
             seed: int = 0, jobs: int = 1, partial: bool = False,
             progress: bool = False, command: Optional[str] = None) -> EvaluationResult:
    """Score one or several models' predicted maps (and optional baselines) against ground truth.

    Every model is scored on the same frames with the same random draws (sAUC negatives, AUC splits).

    Args:
        predictions: PRED/<video>/<frame>.png (the model is called "prediction"), or {model name: PRED}.
        ground_truth_dir: GT/<video>/{maps,fixation}/<frame>.png (or .mat fixations).
        metrics: names from `dynsal.metrics.METRICS`.
        baselines: any of "centre", "chance", scored alongside the prediction.
        sauc_negatives: M, frames whose fixations form each frame's sAUC negatives.
        sauc_pool: "other-videos", "other-frames", or "auto" (default): other-videos where two or more
            videos have fixations, else other-frames (settings["sauc_pool"] is the pool used).
        seed: seed of every random draw (AUC jitter and splits, sAUC pools, chance maps).
        jobs: worker processes (0 = one per CPU core); the scores do not depend on it.
        partial: score only frames that have a prediction (from every model), ignoring the others.
        progress: show a tqdm progress bar on stderr (when tqdm is installed).
        command: the command line that asked for this evaluation, recorded in the settings.

    Returns:
        The per-frame scores with `per_video()` and `summary()` aggregations and the settings.

    Raises:
        EvaluationError: on bad options, unmatched or unreadable files, or bad maps (naming the file).
    """
    metrics, baselines = tuple(metrics), tuple(baselines)
    models = ({str(name): str(path) for name, path in predictions.items()} if isinstance(predictions, Mapping)
              else {"prediction": str(predictions)})
    _check_options(metrics, baselines, sauc_negatives, sauc_pool, seed, jobs)
    _check_models(models, baselines)
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    jobs = jobs or (os.cpu_count() or 1)
    need_fix = any(m in M.FIXATION_METRICS for m in metrics)
    frames, skipped = find_frames(models, ground_truth_dir, partial=partial, need_fixations=need_fix,
                                  need_density=any(m in M.DENSITY_METRICS for m in metrics))
    videos = by_video(frames)
    sizes = [stop - start for start, stop in videos]
    points: List[Optional[Points]] = [None] * len(frames)
    if need_fix:
        chunks = [tuple(frames[a:b]) for a, b in videos]
        points = [p for chunk in _stage(_load_fixations, chunks, jobs, sizes, progress, "fixations")
                  for p in chunk]
    sauc_pool = resolve_pool(sauc_pool, frames, points)
    negatives = _negatives(frames, points, metrics, sauc_negatives, sauc_pool, seed)
    work = [_Job(tuple(frames[a:b]), tuple(points[a:b]), tuple(negatives[a:b]), metrics, tuple(models), baselines,
                 seed)
            for a, b in videos]
    rows = [r for chunk in _stage(_score_job, work, jobs, sizes, progress, "scoring") for r in chunk]
    empty = sum(1 for p in points if p is not None and p[0].size == 0)
    settings = {
        **({} if isinstance(predictions, Mapping) else {"prediction_dir": str(predictions)}),
        "models": models, "ground_truth_dir": str(ground_truth_dir),
        "metrics": list(metrics), "baselines": list(baselines), "seed": seed,
        "sauc_negatives": sauc_negatives, "sauc_pool": sauc_pool, "n_splits": M.N_SPLITS,
        "threshold_step": M.STEP, "eps": M.EPS, "centre_sigma": CENTRE_SIGMA, "ig_baseline": "centre",
        "resize": "MATLAB imresize bicubic (antialiased) of the prediction to the ground-truth size",
        "videos": len(videos), "frames": len(frames), "frames_without_fixations": empty,
        "ground_truth_videos_not_evaluated": skipped, "partial": partial, "dynsal_version": __version__,
        "date": started, "command": command,
    }
    return EvaluationResult(metrics, tuple(models) + baselines, rows, settings, frames)


def _negatives(frames, points, metrics, count, pool, seed) -> List[Tuple[Points, ...]]:
    if "sauc" not in metrics:
        return [()] * len(frames)
    return negative_points(frames, points, count, pool, seed)
