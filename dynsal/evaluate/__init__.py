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
fixations, rescaled to the frame's size, is the negative map (`dynsal.metrics.auc_shuffled`).

Baselines scored like a model on the same frames and with the same random draws: `centre` (a
Gaussian centred on the frame, σ = 0.25 × height and width) and `chance` (i.i.d. uniform noise,
seeded per frame). IG is measured against the centre-bias map.

Modules: `pairing` (predictions ⇄ ground truth), `negatives` (fixation points and the sAUC pool),
`baselines`, `runner` (`evaluate`), `result` (scores and their averages), and `reports/`, one module
per report format.
"""
from __future__ import annotations

from dynsal.data.ground_truth import read_fixations, read_map
from dynsal.evaluate.baselines import BASELINES, CENTRE_SIGMA, centre_bias_map, chance_map
from dynsal.evaluate.negatives import SAUC_POOLS, fixation_points, points_to_map, sample_negative_frames
from dynsal.evaluate.pairing import Frame, find_frames
from dynsal.evaluate.reports import check_report_paths
from dynsal.evaluate.reports.as_csv import write_csv
from dynsal.evaluate.reports.as_html import format_html, write_html
from dynsal.evaluate.reports.as_json import write_json
from dynsal.evaluate.reports.as_latex import format_latex, write_latex
from dynsal.evaluate.reports.as_markdown import write_markdown
from dynsal.evaluate.reports.as_text import format_table
from dynsal.evaluate.result import CONVENTIONS, LABELS, EvaluationResult, FrameScore
from dynsal.evaluate.runner import evaluate

__all__ = [
    "BASELINES", "CENTRE_SIGMA", "CONVENTIONS", "LABELS", "SAUC_POOLS", "Frame", "FrameScore", "EvaluationResult",
    "read_map", "read_fixations", "find_frames", "fixation_points", "points_to_map", "sample_negative_frames",
    "centre_bias_map", "chance_map", "evaluate", "format_table", "write_csv", "write_json", "write_markdown",
    "format_latex", "write_latex", "format_html", "write_html", "check_report_paths",
]
