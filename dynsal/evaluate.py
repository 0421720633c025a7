"""Dataset-level saliency evaluation: predicted maps against ground truth, per frame, video, dataset.

Layouts (frame names are matched by file stem, e.g. `0001`; `dynsal.data.ground_truth` has the
real names of DHF1K's `annotation/`, Hollywood-2's and UCF-Sports' `training/` and `testing/`):

    PRED/<video>/<frame>.png                     predicted maps (.png, .jpg, .jpeg; grey levels)
    PRED/<video>/maps/<frame>.png                ... or as `dynsal predict --layout dhf1k` writes them
    GT/<video>/maps/<frame>.png                  continuous ground truth (CC, SIM, KLD)
    GT/<video>/fixation/<frame>.png              binary fixations (AUC-Judd, AUC-Borji, sAUC, NSS, IG)
    GT/<video>/fixation/<frame>.mat              ... or as MATLAB files (variable `I`, or the one
    GT/<video>/fixation/maps/<frame>.mat             2-D variable), as DHF1K ships them

Scores are averaged two ways, and both are reported: **mean over videos** (each video's mean over
its frames, then the unweighted mean of those) and **mean over frames** (every frame of the dataset
weighs the same). Frames whose fixation map is empty get no fixation-metric score and are left out
of those averages (they are counted in the result).

sAUC negatives: for every frame, `sauc_negatives` (M = 10) frames are drawn, seeded, from the frames
of *other videos* (or, with `sauc_pool="other-frames"`, from any other frame); the union of their
fixations, rescaled to the frame's size, is the negative map (`dynsal.metrics.auc_shuffled`). The
default pool, "auto", is other-videos where two or more videos have fixations and other-frames where
one has (one video has no other videos to draw from); the settings record the pool used.

Baselines scored like a model on the same frames and with the same random draws: `centre` (a
Gaussian centred on the frame, σ = 0.25 × height and width) and `chance` (i.i.d. uniform noise,
seeded per frame). IG is measured against the centre-bias map.
"""
from __future__ import annotations

import csv
import functools
import io
import json
import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from dynsal import __version__
from dynsal import metrics as M
from dynsal.data import ground_truth as GT
from dynsal.data.ground_truth import read_fixations, read_map
from dynsal.errors import EvaluationError
from dynsal.files import write_atomic
from dynsal.paths import PathIndex
from dynsal.progress import progress_bar
from dynsal.seeds import frame_seed
from dynsal.workers import exit_with, interrupts_ignored

__all__ = [
    "BASELINES", "CONVENTIONS", "SAUC_POOLS", "Frame", "FrameScore", "EvaluationResult",
    "read_map", "read_fixations", "find_frames", "centre_bias_map", "chance_map", "evaluate",
    "format_table", "write_csv", "write_json", "write_markdown", "check_report_paths",
]

BASELINES = ("centre", "chance")
SAUC_POOLS = ("other-videos", "other-frames")
#: the default sAUC pool: other-videos where two or more videos have fixations, else other-frames
AUTO_POOL = "auto"
#: σ of the centre-bias Gaussian as a fraction of the frame's height and width
CENTRE_SIGMA = 0.25
CONVENTIONS = {
    "mean_over_videos": "mean over videos of each video's mean over its frames",
    "mean_over_frames": "mean over all frames of the dataset; longer videos weigh more",
}
LABELS = {"auc_judd": "AUC-J", "auc_borji": "AUC-B", "sauc": "sAUC", "nss": "NSS", "cc": "CC",
          "sim": "SIM", "kld": "KLD", "ig": "IG"}
_SHOWN_UNMATCHED = 5

Points = Tuple[np.ndarray, np.ndarray, Tuple[int, int]]  # rows, columns, (H, W) of the map


# --------------------------------------------------------------------------------------------------
# fixation points


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


# --------------------------------------------------------------------------------------------------
# pairing predictions with ground truth


@dataclass(frozen=True)
class Frame:
    """One frame to evaluate: its prediction and ground-truth files."""

    video: str
    frame: str
    prediction: Path
    density: Optional[Path] = None
    fixations: Optional[Path] = None


def _videos(folder: Path) -> List[str]:
    """The video folders in `folder`; hidden ones (`.clip.partial/` of an unfinished `dynsal predict`) are not."""
    return sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _check_dir(folder: Path, what: str) -> None:
    if not folder.is_dir():
        raise EvaluationError(f"{what} {folder} is not a directory")


def _check_truth_kinds(gt_dir: Path, videos: Sequence[str], need_density: bool, need_fixations: bool) -> None:
    """EvaluationError naming the metrics that can run when the ground truth has no fixation maps (or no
    continuous maps) at all, rather than one "unmatched" line per frame."""
    if not videos:
        return
    for needed, files, kind, metrics, other in (
            (need_fixations, GT.fixation_files, f"{GT.FIXATION_FOLDER}/", M.FIXATION_METRICS, M.DENSITY_METRICS),
            (need_density, GT.map_files, f"{GT.MAPS_FOLDER}/", M.DENSITY_METRICS, M.FIXATION_METRICS)):
        if needed and not any(files(gt_dir / video) for video in videos):
            raise EvaluationError(f"{gt_dir}: no <video>/{kind} files, which {', '.join(metrics)} need; to score "
                                  f"with what is there: --metrics {','.join(other)}")


def _unmatched_message(unmatched: List[str], partial: bool) -> str:
    shown = "; ".join(unmatched[:_SHOWN_UNMATCHED])
    more = f" (+{len(unmatched) - _SHOWN_UNMATCHED} more)" if len(unmatched) > _SHOWN_UNMATCHED else ""
    fix = "use the same <video>/<frame> names on both sides"
    if not partial:
        fix += ", or --partial to score only the frames that have a prediction"
    return f"{len(unmatched)} unmatched file(s): {shown}{more}; {fix}"


def _pair_video(video: str, pred_dir: Path, gt_dir: Path, need_density: bool, need_fixations: bool,
                partial: bool, unmatched: List[str]) -> List[Frame]:
    predictions = GT.prediction_files(pred_dir, video)
    densities = GT.map_files(gt_dir / video) if need_density else {}
    fixations = GT.fixation_files(gt_dir / video) if need_fixations else {}
    truths = [(kind, files) for kind, files, needed in
              (("maps", densities, need_density), ("fixation", fixations, need_fixations)) if needed]
    frames = []
    for stem, path in predictions.items():
        missing = [kind for kind, files in truths if stem not in files]
        if missing:
            unmatched.append(f"{path} has no {' or '.join(f'{video}/{k}/{stem}.*' for k in missing)} "
                             f"in {gt_dir}")
            continue
        frames.append(Frame(video, stem, path, densities.get(stem), fixations.get(stem)))
    if not partial:
        orphans = sorted({stem for _, files in truths for stem in files} - set(predictions))
        for stem in orphans:
            truth = next(files[stem] for _, files in truths if stem in files)
            unmatched.append(f"{truth} has no prediction {pred_dir / video / stem}.png")
    return frames


def find_frames(prediction_dir, ground_truth_dir, *, need_density: bool = True,
                need_fixations: bool = True, partial: bool = False) -> Tuple[List[Frame], int]:
    """Pair every predicted map with its ground truth.

    Args:
        prediction_dir: PRED folder with one sub-folder of maps per video.
        ground_truth_dir: GT folder with `<video>/maps` and/or `<video>/fixation`.
        need_density: require `maps/<frame>` for every prediction.
        need_fixations: require `fixation/<frame>` for every prediction.
        partial: accept ground-truth frames without a prediction (they are not scored).

    Returns:
        (frames sorted by video and frame name, number of GT videos that have no prediction folder).

    Raises:
        EvaluationError: if a folder is missing, there are no predictions, or files are unmatched
            (the message lists the first few and the count).
    """
    pred_dir, gt_dir = Path(prediction_dir), Path(ground_truth_dir)
    _check_dir(pred_dir, "prediction folder")
    _check_dir(gt_dir, "ground-truth folder")
    _check_truth_kinds(gt_dir, [v for v in _videos(pred_dir) if (gt_dir / v).is_dir()], need_density, need_fixations)
    unmatched: List[str] = []
    frames: List[Frame] = []
    for video in _videos(pred_dir):
        if not (gt_dir / video).is_dir():
            unmatched.append(f"{pred_dir / video}/ has no ground-truth folder {gt_dir / video}/")
            continue
        frames += _pair_video(video, pred_dir, gt_dir, need_density, need_fixations, partial, unmatched)
    if unmatched:
        raise EvaluationError(_unmatched_message(unmatched, partial))
    if not frames:
        raise EvaluationError(f"no predicted maps found in {pred_dir}; expected "
                              f"{pred_dir}/<video>/<frame>.png")
    skipped = len(set(_videos(gt_dir)) - set(_videos(pred_dir)))
    return frames, skipped


# --------------------------------------------------------------------------------------------------
# baselines and seeds


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


# --------------------------------------------------------------------------------------------------
# sAUC negative pool


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
    for start, stop in _by_video(frames):
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


# --------------------------------------------------------------------------------------------------
# scoring


@dataclass(frozen=True)
class FrameScore:
    """The scores of one model on one frame; a metric without ground truth is None."""

    model: str
    video: str
    frame: str
    scores: Dict[str, Optional[float]]


@dataclass(frozen=True)
class _Job:
    frames: Tuple[Frame, ...]
    fixations: Tuple[Optional[Points], ...]
    negatives: Tuple[Tuple[Points, ...], ...]
    metrics: Tuple[str, ...]
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


def _models(frame: Frame, shape, baselines, seed) -> Dict[str, np.ndarray]:
    models = {"prediction": read_map(frame.prediction)}
    if "centre" in baselines:
        models["centre"] = centre_bias_map(shape)
    if "chance" in baselines:
        models["chance"] = chance_map(shape, frame_seed(seed, frame.video, frame.frame, 1))
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
    for model, saliency in _models(frame, shape, job.baselines, job.seed).items():
        try:
            values = M.score_frame(saliency, metrics=usable, seed=seed, **inputs)
        except EvaluationError as exc:
            raise EvaluationError(f"{frame.prediction}: {exc}") from exc
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
    try:
        pool = ProcessPoolExecutor(max_workers=jobs, initializer=exit_with, initargs=(os.getpid(),))
    except OSError as exc:  # e.g. no /dev/shm for the pool's semaphores
        raise EvaluationError(f"cannot start {jobs} worker processes ({exc}); run with --jobs 1") from exc
    with pool:
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


def _by_video(frames: Sequence[Frame]) -> List[Tuple[int, int]]:
    """(start, stop) index ranges of each video's frames (frames are grouped by video)."""
    bounds, start = [], 0
    for i in range(1, len(frames) + 1):
        if i == len(frames) or frames[i].video != frames[start].video:
            bounds.append((start, i))
            start = i
    return bounds


# --------------------------------------------------------------------------------------------------
# result and aggregation


def _mean(values: Iterable[Optional[float]]) -> Optional[float]:
    kept = [v for v in values if v is not None]
    return float(np.mean(kept)) if kept else None


@dataclass
class EvaluationResult:
    """Per-frame scores of every model plus the settings that produced them."""

    metrics: Tuple[str, ...]
    models: Tuple[str, ...]
    rows: List[FrameScore]
    settings: Dict[str, object] = field(default_factory=dict)

    def per_video(self) -> Dict[str, Dict[str, Dict[str, Optional[float]]]]:
        """{model: {video: {metric: mean over the video's frames, "frames": count}}}."""
        grouped: Dict[Tuple[str, str], List[FrameScore]] = {}
        for row in self.rows:
            grouped.setdefault((row.model, row.video), []).append(row)
        out: Dict[str, Dict[str, Dict[str, Optional[float]]]] = {m: {} for m in self.models}
        for (model, video), rows in sorted(grouped.items()):
            entry = {m: _mean(r.scores[m] for r in rows) for m in self.metrics}
            entry["frames"] = len(rows)
            out[model][video] = entry
        return out

    def summary(self) -> Dict[str, Dict[str, Dict[str, Optional[float]]]]:
        """{model: {"mean_over_videos": {metric: value}, "mean_over_frames": {metric: value}}}."""
        videos = self.per_video()
        out = {}
        for model in self.models:
            rows = [r for r in self.rows if r.model == model]
            out[model] = {
                "mean_over_videos": {m: _mean(v[m] for v in videos[model].values()) for m in self.metrics},
                "mean_over_frames": {m: _mean(r.scores[m] for r in rows) for m in self.metrics},
            }
        return out


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


def evaluate(prediction_dir, ground_truth_dir, *, metrics: Sequence[str] = tuple(M.METRICS),
             baselines: Sequence[str] = (), sauc_negatives: int = 10, sauc_pool: str = AUTO_POOL,
             seed: int = 0, jobs: int = 1, partial: bool = False,
             progress: bool = False) -> EvaluationResult:
    """Score a folder of predicted maps (and optional baselines) against ground truth.

    Args:
        prediction_dir: PRED/<video>/<frame>.png.
        ground_truth_dir: GT/<video>/{maps,fixation}/<frame>.png (or .mat fixations).
        metrics: names from `dynsal.metrics.METRICS`.
        baselines: any of "centre", "chance", scored alongside the prediction.
        sauc_negatives: M, frames whose fixations form each frame's sAUC negatives.
        sauc_pool: "other-videos", "other-frames", or "auto" (default): other-videos where two or more
            videos have fixations, else other-frames (settings["sauc_pool"] is the pool used).
        seed: seed of every random draw (AUC jitter and splits, sAUC pools, chance maps).
        jobs: worker processes (0 = one per CPU core); the scores do not depend on it.
        partial: score only frames that have a prediction, ignoring other ground-truth frames.
        progress: show a tqdm progress bar on stderr (when tqdm is installed).

    Returns:
        The per-frame scores with `per_video()` and `summary()` aggregations and the settings.

    Raises:
        EvaluationError: on bad options, unmatched or unreadable files, or bad maps (naming the file).
    """
    metrics, baselines = tuple(metrics), tuple(baselines)
    _check_options(metrics, baselines, sauc_negatives, sauc_pool, seed, jobs)
    jobs = jobs or (os.cpu_count() or 1)
    need_fix = any(m in M.FIXATION_METRICS for m in metrics)
    frames, skipped = find_frames(prediction_dir, ground_truth_dir, partial=partial, need_fixations=need_fix,
                                  need_density=any(m in M.DENSITY_METRICS for m in metrics))
    videos = _by_video(frames)
    sizes = [stop - start for start, stop in videos]
    points: List[Optional[Points]] = [None] * len(frames)
    if need_fix:
        chunks = [tuple(frames[a:b]) for a, b in videos]
        points = [p for chunk in _stage(_load_fixations, chunks, jobs, sizes, progress, "fixations")
                  for p in chunk]
    has_fixations = [p is not None and p[0].size > 0 for p in points]
    sauc_pool = resolve_sauc_pool(sauc_pool, frames, has_fixations)
    negatives = _negatives(frames, points, has_fixations, metrics, sauc_negatives, sauc_pool, seed)
    work = [_Job(tuple(frames[a:b]), tuple(points[a:b]), tuple(negatives[a:b]), metrics, baselines, seed)
            for a, b in videos]
    rows = [r for chunk in _stage(_score_job, work, jobs, sizes, progress, "scoring") for r in chunk]
    empty = sum(1 for p in points if p is not None and p[0].size == 0)
    settings = {
        "prediction_dir": str(prediction_dir), "ground_truth_dir": str(ground_truth_dir),
        "metrics": list(metrics), "baselines": list(baselines), "seed": seed,
        "sauc_negatives": sauc_negatives, "sauc_pool": sauc_pool, "n_splits": M.N_SPLITS,
        "threshold_step": M.STEP, "eps": M.EPS, "centre_sigma": CENTRE_SIGMA, "ig_baseline": "centre",
        "resize": "MATLAB imresize bicubic (antialiased) of the prediction to the ground-truth size",
        "videos": len(videos), "frames": len(frames), "frames_without_fixations": empty,
        "ground_truth_videos_not_evaluated": skipped, "partial": partial, "dynsal_version": __version__,
    }
    return EvaluationResult(metrics, ("prediction",) + baselines, rows, settings)


def resolve_sauc_pool(pool: str, frames: Sequence[Frame], has_fixations: Sequence[bool]) -> str:
    """The sAUC pool to draw from: `pool`, or for "auto" other-videos where two or more videos have frames
    with fixations, else other-frames (a single video has no other videos to draw negatives from)."""
    if pool != AUTO_POOL:
        return pool
    videos = {frame.video for frame, has in zip(frames, has_fixations) if has}
    return "other-videos" if len(videos) > 1 else "other-frames"


def _negatives(frames, points, has_fixations, metrics, count, pool, seed) -> List[Tuple[Points, ...]]:
    if "sauc" not in metrics:
        return [()] * len(frames)
    chosen = sample_negative_frames(frames, has_fixations, count, pool, seed)
    return [tuple(points[j] for j in picks) for picks in chosen]


# --------------------------------------------------------------------------------------------------
# reports


def _fmt(value: Optional[float]) -> str:
    return "" if value is None else f"{value:.4f}"


def _summary_lines(result: EvaluationResult, convention: str) -> List[List[str]]:
    summary = result.summary()
    header = ["model"] + [LABELS[m] for m in result.metrics]
    body = [[model] + [_fmt(summary[model][convention][m]) for m in result.metrics]
            for model in result.models]
    return [header] + body


def _headline(result: EvaluationResult) -> str:
    s = result.settings
    line = f"{s['videos']} video(s), {s['frames']} frame(s); seed {s['seed']}"
    if "sauc" in result.metrics:
        line += f"; sAUC negatives: fixations of {s['sauc_negatives']} frame(s) from {s['sauc_pool']}"
    if s["frames_without_fixations"]:
        line += f"; {s['frames_without_fixations']} frame(s) without fixations left out of fixation metrics"
    return line


def format_table(result: EvaluationResult) -> str:
    """The summary as aligned text: one block per averaging convention (KLD: lower is better)."""
    out = [_headline(result)]
    for convention, meaning in CONVENTIONS.items():
        lines = _summary_lines(result, convention)
        widths = [max(len(row[c]) for row in lines) for c in range(len(lines[0]))]
        out.append(f"\n{convention.replace('_', ' ')} ({meaning}):")
        out += ["  ".join(cell.ljust(w) if c == 0 else cell.rjust(w) for c, (cell, w) in
                          enumerate(zip(row, widths))).rstrip() for row in lines]
    return "\n".join(out) + "\n"


def _write_atomic(path, text: str) -> None:
    """Write `text` to `path` atomically (`dynsal.files.write_atomic`): a partial file never looks finished."""
    try:
        write_atomic(path, text.encode("utf-8"))
    except OSError as exc:
        raise EvaluationError(f"{path}: cannot write ({exc.strerror or exc})") from exc


def check_report_paths(reports: Dict[str, Optional[str]], prediction_dir, ground_truth_dir) -> None:
    """Refuse report files that would land on or inside the predictions or the ground truth, or twice on one file.

    Args:
        reports: {option (e.g. "--csv"): path or None}.
        prediction_dir, ground_truth_dir: the folders evaluated.

    Raises:
        EvaluationError: naming the option, the path and the folder it meets.
    """
    protected = PathIndex([prediction_dir, ground_truth_dir])
    named: Dict[Path, str] = {}
    for option, path in reports.items():
        if not path:
            continue
        meeting = protected.find(path)
        if meeting:
            raise EvaluationError(f"{option} {path} would be written on or inside {meeting[1]}, which is evaluated; "
                                  "write the report elsewhere")
        other = named.setdefault(Path(path).resolve(), option)
        if other != option:
            raise EvaluationError(f"{other} and {option} both name {path}; give each report its own file")


def _csv_rows(result: EvaluationResult) -> Iterator[List[object]]:
    yield ["model", "level", "video", "frame", "frames"] + list(result.metrics)
    for r in result.rows:
        yield [r.model, "frame", r.video, r.frame, 1] + [_fmt(r.scores[m]) for m in result.metrics]
    for model, videos in result.per_video().items():
        for video, entry in videos.items():
            yield [model, "video", video, "", entry["frames"]] + [_fmt(entry[m]) for m in result.metrics]
    frames = result.settings.get("frames", "")
    for model, conventions in result.summary().items():
        for convention, values in conventions.items():
            yield [model, convention, "", "", frames] + [_fmt(values[m]) for m in result.metrics]


def write_csv(result: EvaluationResult, path) -> None:
    """CSV: one row per frame, per video and per averaging convention (column `level` says which)."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(_csv_rows(result))
    _write_atomic(path, buffer.getvalue())


def write_json(result: EvaluationResult, path) -> None:
    """JSON: settings, the two conventions explained, summary, per-video and per-frame scores."""
    document = {
        "settings": result.settings,
        "conventions": CONVENTIONS,
        "summary": result.summary(),
        "videos": result.per_video(),
        "frames": [dict(model=r.model, video=r.video, frame=r.frame, **r.scores) for r in result.rows],
    }
    _write_atomic(path, json.dumps(document, indent=2) + "\n")


def write_markdown(result: EvaluationResult, path) -> None:
    """Markdown: the headline and one table per averaging convention."""
    out = [f"{_headline(result)}. KLD: lower is better; the others: higher is better."]
    for convention, meaning in CONVENTIONS.items():
        lines = _summary_lines(result, convention)
        out += ["", f"**{convention.replace('_', ' ')}** ({meaning})", ""]
        out.append("| " + " | ".join(lines[0]) + " |")
        out.append("|" + "|".join(["---"] + ["---:"] * (len(lines[0]) - 1)) + "|")
        out += ["| " + " | ".join(row) + " |" for row in lines[1:]]
    _write_atomic(path, "\n".join(out) + "\n")
