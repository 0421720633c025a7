"""Pairing predicted maps with their ground truth, frame by frame (files matched by stem)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

from dynsal import metrics as M
from dynsal.data import ground_truth as GT
from dynsal.errors import EvaluationError

_SHOWN_UNMATCHED = 5


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


def by_video(frames: Sequence[Frame]) -> List[Tuple[int, int]]:
    """(start, stop) index ranges of each video's frames (frames are grouped by video)."""
    bounds, start = [], 0
    for i in range(1, len(frames) + 1):
        if i == len(frames) or frames[i].video != frames[start].video:
            bounds.append((start, i))
            start = i
    return bounds
