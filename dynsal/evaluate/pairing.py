"""Pairing predicted maps with their ground truth, frame by frame (files matched by stem)."""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

from dynsal import metrics as M
from dynsal.data import ground_truth as GT
from dynsal.errors import EvaluationError

_SHOWN_UNMATCHED = 5


@dataclass(frozen=True)
class Frame:
    """One frame to evaluate: each model's prediction (in the models' order) and the ground-truth files."""

    video: str
    frame: str
    predictions: Tuple[Path, ...]
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
                partial: bool, unmatched: List[str], orphans: List[str]) -> List[Frame]:
    """The frames of one video; predictions without ground truth go to `unmatched`, ground-truth frames
    without a prediction (unless `partial`) to `orphans`."""
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
        frames.append(Frame(video, stem, (path,), densities.get(stem), fixations.get(stem)))
    if not partial:
        for stem in sorted({stem for _, files in truths for stem in files} - set(predictions)):
            truth = next(files[stem] for _, files in truths if stem in files)
            orphans.append(f"{truth} has no prediction {pred_dir / video / stem}.png")
    return frames


def _pair_model(pred_dir: Path, gt_dir: Path, need_density: bool, need_fixations: bool, partial: bool,
                unmatched: List[str], orphans: List[str]) -> List[Frame]:
    """One prediction folder's frames paired with the ground truth; what does not pair goes to `unmatched`."""
    _check_dir(pred_dir, "prediction folder")
    _check_truth_kinds(gt_dir, [v for v in _videos(pred_dir) if (gt_dir / v).is_dir()], need_density, need_fixations)
    frames: List[Frame] = []
    for video in _videos(pred_dir):
        if not (gt_dir / video).is_dir():
            unmatched.append(f"{pred_dir / video}/ has no ground-truth folder {gt_dir / video}/")
            continue
        frames += _pair_video(video, pred_dir, gt_dir, need_density, need_fixations, partial, unmatched, orphans)
    return frames


def _shown(names: Sequence[str]) -> str:
    more = f" (+{len(names) - _SHOWN_UNMATCHED} more)" if len(names) > _SHOWN_UNMATCHED else ""
    return ", ".join(names[:_SHOWN_UNMATCHED]) + more


def _common_frames(paired: Dict[str, List[Frame]], models: Mapping[str, Path], partial: bool) -> List[Frame]:
    """The frames every model has, each with every model's prediction; without `partial`, EvaluationError
    naming each model that lacks frames another model has."""
    keyed = {name: {(f.video, f.frame): f for f in frames} for name, frames in paired.items()}
    every = list(dict.fromkeys(key for frames in keyed.values() for key in frames))  # the first model's order
    lacking = []
    for name, frames in keyed.items():
        missing = [f"{video}/{frame}" for video, frame in every if (video, frame) not in frames]
        if missing:
            lacking.append(f"model {name} ({models[name]}) lacks {len(missing)} frame(s) that other models have: "
                           f"{_shown(missing)}")
    if lacking and not partial:
        raise EvaluationError("; ".join(lacking) + "; give every model the same frames, or --partial to score "
                              "only the frames that all models have")
    names = list(keyed)
    common = [key for key in every if all(key in keyed[name] for name in names)]
    return [replace(keyed[names[0]][key], predictions=tuple(keyed[name][key].predictions[0] for name in names))
            for key in common]


def find_frames(predictions, ground_truth_dir, *, need_density: bool = True,
                need_fixations: bool = True, partial: bool = False) -> Tuple[List[Frame], int]:
    """Pair every predicted map with its ground truth, for one model or several on the same frames.

    Args:
        predictions: PRED folder with one sub-folder of maps per video, or {model name: PRED folder}.
        ground_truth_dir: GT folder with `<video>/maps` and/or `<video>/fixation`.
        need_density: require `maps/<frame>` for every prediction.
        need_fixations: require `fixation/<frame>` for every prediction.
        partial: accept ground-truth frames without a prediction, and frames that not every model has
            (neither is scored).

    Returns:
        (frames grouped by video in the first model's order (video, then frame name), with the models'
        predictions in the mapping's order,
        number of GT videos that no model has a folder for).

    Raises:
        EvaluationError: if a folder is missing, there are no predictions, files are unmatched (the
            message lists the first few and the count), or a model lacks frames that another has.
    """
    models = ({name: Path(path) for name, path in predictions.items()} if isinstance(predictions, Mapping)
              else {"prediction": Path(predictions)})
    gt_dir = Path(ground_truth_dir)
    _check_dir(gt_dir, "ground-truth folder")
    unmatched: List[str] = []
    orphans: List[str] = []
    paired = {name: _pair_model(pred_dir, gt_dir, need_density, need_fixations, partial, unmatched, orphans)
              for name, pred_dir in models.items()}
    if unmatched and len(models) > 1:
        raise EvaluationError(_unmatched_message(unmatched, partial))
    frames = _common_frames(paired, models, partial)  # a frame one model lacks: named before the orphans
    if unmatched or orphans:
        raise EvaluationError(_unmatched_message(unmatched + orphans, partial))
    for name, found in paired.items():
        if not found:
            raise EvaluationError(f"no predicted maps found in {models[name]}; expected "
                                  f"{models[name]}/<video>/<frame>.png")
    if not frames:
        raise EvaluationError(f"the models {', '.join(models)} have no frame in common; give them the same "
                              "<video>/<frame> names")
    evaluated = set().union(*(_videos(path) for path in models.values()))
    return frames, len(set(_videos(gt_dir)) - evaluated)


def by_video(frames: Sequence[Frame]) -> List[Tuple[int, int]]:
    """(start, stop) index ranges of each video's frames (frames are grouped by video)."""
    bounds, start = [], 0
    for i in range(1, len(frames) + 1):
        if i == len(frames) or frames[i].video != frames[start].video:
            bounds.append((start, i))
            start = i
    return bounds
