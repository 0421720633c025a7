"""`--json`: the settings, the conventions spelled out, and every score at every level."""
from __future__ import annotations

import json

from dynsal.evaluate.reports.common import write_text
from dynsal.evaluate.result import CONVENTIONS, EvaluationResult


def write_json(result: EvaluationResult, path) -> None:
    """JSON: settings, the two conventions explained, summary, per-video and per-frame scores."""
    document = {
        "settings": result.settings,
        "conventions": CONVENTIONS,
        "summary": result.summary(),
        "videos": result.per_video(),
        "frames": [dict(model=r.model, video=r.video, frame=r.frame, **r.scores) for r in result.rows],
    }
    write_text(path, json.dumps(document, indent=2) + "\n")
