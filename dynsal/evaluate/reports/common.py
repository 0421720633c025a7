"""Pieces shared by the report formats: number formatting, the summary rows, the headline, atomic writes."""
from __future__ import annotations

from typing import List, Optional

from dynsal.errors import EvaluationError
from dynsal.evaluate.result import LABELS, EvaluationResult
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
