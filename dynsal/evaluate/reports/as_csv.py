"""`--csv`: one row per frame, per video and per averaging convention."""
from __future__ import annotations

import csv
import io
from typing import Iterator, List

from dynsal.evaluate.reports.common import fmt, write_text
from dynsal.evaluate.result import EvaluationResult


def _csv_rows(result: EvaluationResult) -> Iterator[List[object]]:
    yield ["model", "level", "video", "frame", "frames"] + list(result.metrics)
    for r in result.rows:
        yield [r.model, "frame", r.video, r.frame, 1] + [fmt(r.scores[m]) for m in result.metrics]
    for model, videos in result.per_video().items():
        for video, entry in videos.items():
            yield [model, "video", video, "", entry["frames"]] + [fmt(entry[m]) for m in result.metrics]
    frames = result.settings.get("frames", "")
    for model, conventions in result.summary().items():
        for convention, values in conventions.items():
            yield [model, convention, "", "", frames] + [fmt(values[m]) for m in result.metrics]


def write_csv(result: EvaluationResult, path) -> None:
    """CSV: one row per frame, per video and per averaging convention (column `level` says which)."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(_csv_rows(result))
    write_text(path, buffer.getvalue())
