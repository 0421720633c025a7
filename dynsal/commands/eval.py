"""Score predicted saliency maps against ground truth with the MIT saliency benchmark's metrics.

PRED_DIR holds <video>/<frame>.png (or <video>/maps/<frame>.png, as `dynsal predict --layout dhf1k`
writes them); GT_DIR holds <video>/maps/<frame>.png (continuous maps, for CC, SIM, KLD) and
<video>/fixation/<frame>.png or .mat (binary fixations, for AUC-Judd, AUC-Borji, sAUC, NSS, IG): DHF1K's
annotation/, Hollywood-2's and UCF-Sports' training/ or testing/ folders as distributed. Frames are
paired by name. Prints the dataset averages two ways: the mean over videos of per-video means, and the
mean over all frames. Every random draw is seeded (--seed), and --jobs never changes a score.
Several models are compared in one run with --model NAME=PRED_DIR (repeated) and GT_DIR alone: they
are scored on the same frames with the same random draws (sAUC negatives included), one table.

examples:
  dynsal predict --net stsconv DHF1K/video/6*.AVI -o pred --layout dhf1k
  dynsal eval pred DHF1K/annotation --baselines centre,chance --jobs 4 \\
      --csv scores.csv --json scores.json --markdown scores.md
  dynsal predict --net stsconv UCF-Sports/testing/*/images -o ucf && dynsal eval ucf UCF-Sports/testing
  dynsal eval --model stsconv=out/stsconv --model stsmax=out/stsmax DHF1K/annotation --baselines centre
"""
from __future__ import annotations

import argparse
import difflib
import shlex
from typing import Dict, List, Optional

from dynsal import evaluate as E
from dynsal.errors import EvaluationError
from dynsal.evaluate.reports.as_html import SLIDER_FRAMES
from dynsal.evaluate.reports.figures import require_matplotlib
from dynsal.metrics import METRICS

METRIC_NAMES = tuple(METRICS)
#: report option -> (writer(result, path), help); each format is a module of dynsal.evaluate.reports
REPORTS = {
    "--csv": (E.write_csv, "write per-frame, per-video and dataset scores as CSV"),
    "--json": (E.write_json, "write settings and all scores as JSON"),
    "--markdown": (E.write_markdown, "write the summary tables as markdown"),
    "--html": (E.write_html, "write a self-contained HTML report to look at: scores, distributions, a sortable "
                             "per-video table, best and worst frames, a frame slider per video (needs matplotlib)"),
    "--latex": (E.write_latex, "write the dataset scores as a LaTeX booktabs table (DHF1K's metric order, best in "
                               "bold)"),
}


def _split(values: List[str]) -> List[str]:
    """Words given as `a,b c` → [a, b, c], empty pieces dropped."""
    return [piece.strip() for value in values for piece in value.split(",") if piece.strip()]


def _choose(values: List[str], known, what: str) -> List[str]:
    """The chosen names in the order given, or EvaluationError with a "did you mean"."""
    chosen = []
    for name in _split(values):
        if name not in known:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise EvaluationError(f"unknown {what} {name!r}{hint}; choose from {', '.join(known)}")
        if name not in chosen:
            chosen.append(name)
    return chosen


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `dynsal eval`."""
    parser.add_argument("pred_dir", metavar="PRED_DIR", nargs="?",
                        help="predicted maps: PRED_DIR/<video>/<frame>.png (leave out with --model)")
    parser.add_argument("gt_dir", metavar="GT_DIR", help="ground truth: GT_DIR/<video>/{maps,fixation}/<frame>")
    parser.add_argument("--model", action="append", default=[], metavar="NAME=PRED_DIR",
                        help="a model to compare, by name and prediction folder; repeat it for each model "
                             "(then give GT_DIR alone)")
    parser.add_argument("--metrics", nargs="+", default=[",".join(METRIC_NAMES)], metavar="NAME",
                        help=f"metrics, comma or space separated (default: all: {','.join(METRIC_NAMES)})")
    parser.add_argument("--baselines", nargs="+", default=[], metavar="NAME",
                        help="also score baselines: centre (Gaussian centre bias), chance (uniform noise)")
    parser.add_argument("--sauc-negatives", type=int, default=10, metavar="M",
                        help="frames whose fixations are each frame's sAUC negatives (default 10)")
    parser.add_argument("--sauc-pool", choices=E.SAUC_POOLS, default="other-videos",
                        help="draw the sAUC negative frames from other videos (default) or any other frame")
    parser.add_argument("--seed", type=int, default=0, help="seed of every random draw (default 0)")
    parser.add_argument("--jobs", type=int, default=1, metavar="N",
                        help="worker processes, 0 = one per CPU core (default 1)")
    parser.add_argument("--partial", action="store_true",
                        help="score only frames with a prediction (from every model); ignore the others")
    for option, (_, help_text) in REPORTS.items():
        parser.add_argument(option, metavar="FILE", help=help_text)
    parser.add_argument("--html-frames", type=int, default=SLIDER_FRAMES, metavar="N",
                        help="frames per video on the HTML report's slider, evenly spaced (its cost grows with them)")


def _models(pred_dir: Optional[str], models: List[str]) -> Dict[str, str]:
    """{model name: prediction folder} from PRED_DIR or the --model NAME=DIR options."""
    if not models:
        if pred_dir is None:
            raise EvaluationError("give PRED_DIR GT_DIR, or --model NAME=PRED_DIR (once per model) and GT_DIR")
        return {"prediction": pred_dir}
    if pred_dir is not None:
        raise EvaluationError(f"with --model, give GT_DIR alone (got {pred_dir} too): name that folder with "
                              "--model NAME=DIR")
    named: Dict[str, str] = {}
    for value in models:
        name, sep, folder = value.partition("=")
        if not sep or not name or not folder:
            raise EvaluationError(f"--model {value}: write it as NAME=PRED_DIR, e.g. --model stsconv=out/stsconv")
        if name in named:
            raise EvaluationError(f"--model {name} is given twice ({named[name]} and {folder}); give each model "
                                  "its own name")
        named[name] = folder
    return named


def run(args: argparse.Namespace) -> int:
    """Evaluate, print the summary table, write the requested files; returns the exit status."""
    models = _models(args.pred_dir, args.model)
    reports = {option: getattr(args, option[2:]) for option in REPORTS}
    E.check_report_paths(reports, *models.values(), args.gt_dir)
    if args.html:
        require_matplotlib()
        if args.html_frames < 1:
            raise EvaluationError(f"--html-frames must be ≥ 1, got {args.html_frames}")
    options = {"--html": {"slider_frames": args.html_frames}}
    result = E.evaluate(
        models if args.model else args.pred_dir, args.gt_dir,
        metrics=_choose(args.metrics, METRIC_NAMES, "metric"),
        baselines=_choose(args.baselines, E.BASELINES, "baseline"),
        sauc_negatives=args.sauc_negatives, sauc_pool=args.sauc_pool, seed=args.seed,
        jobs=args.jobs, partial=args.partial, progress=not args.quiet,
        command=shlex.join(getattr(args, "command_line", ["dynsal", "eval"])),
    )
    print(E.format_table(result), end="")
    for option, path in reports.items():
        if path:
            REPORTS[option][0](result, path, **options.get(option, {}))
            print(f"wrote {path}")
    return 0
