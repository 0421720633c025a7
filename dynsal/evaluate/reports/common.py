"""Pieces shared by the report formats: number formatting, the summary rows, the headline, atomic writes."""
from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Optional, Set

from dynsal.errors import EvaluationError
from dynsal.evaluate.result import LABELS, LOWER_IS_BETTER, EvaluationResult
from dynsal.files import write_atomic


def fmt(value: Optional[float]) -> str:
    """A score with 4 decimals; "" for a metric without a value."""
    return "" if value is None else f"{value:.4f}"


def summary_lines(result: EvaluationResult, convention: str) -> List[List[str]]:
    """[header, one row per model] of the dataset averages under `convention`, as text cells."""
    summary = result.summary()
    header = ["model"] + [LABELS[m] for m in result.metrics]
    body = [[model] + [fmt(summary[model][convention][m]) for m in result.metrics]
            for model in result.models]
    return [header] + body


def headline(result: EvaluationResult) -> str:
    """Videos, frames, seed, the sAUC pool and the frames left out, in one line."""
    s = result.settings
    line = f"{s['videos']} video(s), {s['frames']} frame(s); seed {s['seed']}"
    if "sauc" in result.metrics:
        line += f"; sAUC negatives: fixations of {s['sauc_negatives']} frame(s) from {s['sauc_pool']}"
    if s["frames_without_fixations"]:
        line += f"; {s['frames_without_fixations']} frame(s) without fixations left out of fixation metrics"
    return line


def write_text(path, text: str) -> None:
    """Write `text` to `path` atomically (`dynsal.files.write_atomic`): a partial file never looks finished."""
    try:
        write_atomic(path, text.encode("utf-8"))
    except OSError as exc:
        raise EvaluationError(f"{path}: cannot write ({exc.strerror or exc})") from exc


def arrow(metric: str) -> str:
    """"↓" for a metric where lower is better, else "↑"."""
    return "↓" if metric in LOWER_IS_BETTER else "↑"


def best_models(result: EvaluationResult, summary: dict, convention: str, digits: int) -> Dict[str, Set[str]]:
    """{metric: the models and baselines with the best value under `convention` at `digits` decimals (ties
    share it)}; a metric without values has none. `summary` is `result.summary()`."""
    best: Dict[str, Set[str]] = {}
    for metric in result.metrics:
        shown = {model: round(summary[model][convention][metric], digits) for model in result.models
                 if summary[model][convention][metric] is not None}
        if not shown:
            best[metric] = set()
            continue
        top = (min if metric in LOWER_IS_BETTER else max)(shown.values())
        best[metric] = {model for model, value in shown.items() if value == top}
    return best


def dataset_name(result: EvaluationResult) -> str:
    """The ground truth's name for captions: its folder and the folder above (e.g. `DHF1K/annotation`)."""
    folder = Path(str(result.settings["ground_truth_dir"])).resolve()
    return "/".join(folder.parts[-2:])
