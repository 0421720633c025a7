"""Per-frame scores of every model and their averages over videos and over frames."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Optional, Tuple

import numpy as np

from dynsal.evaluate.pairing import Frame

CONVENTIONS = {
    "mean_over_videos": "mean over videos of each video's mean over its frames",
    "mean_over_frames": "mean over all frames of the dataset; longer videos weigh more",
}
LABELS = {"auc_judd": "AUC-J", "auc_borji": "AUC-B", "sauc": "sAUC", "nss": "NSS", "cc": "CC",
          "sim": "SIM", "kld": "KLD", "ig": "IG"}
#: metrics whose lower values are better (the others: higher is better)
LOWER_IS_BETTER = ("kld",)
#: DHF1K's benchmark order (Wang et al., TPAMI 2019: AUC-J, SIM, s-AUC, CC, NSS), then the metrics it does not report
DHF1K_ORDER = ("auc_judd", "sim", "sauc", "cc", "nss", "auc_borji", "kld", "ig")


@dataclass(frozen=True)
class FrameScore:
    """The scores of one model on one frame; a metric without ground truth is None."""

    model: str
    video: str
    frame: str
    scores: Dict[str, Optional[float]]


def _mean(values: Iterable[Optional[float]]) -> Optional[float]:
    kept = [v for v in values if v is not None]
    return float(np.mean(kept)) if kept else None


@dataclass
class EvaluationResult:
    """Per-frame scores of every model plus the settings that produced them and the frames scored
    (`models`: the models in the order given, then the baselines)."""

    metrics: Tuple[str, ...]
    models: Tuple[str, ...]
    rows: List[FrameScore]
    settings: Dict[str, object] = field(default_factory=dict)
    frames: List[Frame] = field(default_factory=list)

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
