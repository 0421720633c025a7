"""Score predicted saliency maps against ground truth with the MIT saliency benchmark's metrics.

PRED_DIR holds <video>/<frame>.png (or <video>/maps/<frame>.png, as `dynsal predict --layout dhf1k`
writes them); GT_DIR holds <video>/maps/<frame>.png (continuous maps, for CC, SIM, KLD) and
<video>/fixation/<frame>.png or .mat (binary fixations, for AUC-Judd, AUC-Borji, sAUC, NSS, IG): DHF1K's
annotation/, Hollywood-2's and UCF-Sports' training/ or testing/ folders as distributed. Frames are
paired by name. Prints the dataset averages two ways: the mean over videos of per-video means, and the
mean over all frames. Every random draw is seeded (--seed), and --jobs never changes a score.

examples:
  dynsal predict --net stsconv DHF1K/video/6*.AVI -o pred --layout dhf1k
  dynsal eval pred DHF1K/annotation --baselines centre,chance --jobs 4 \\
      --csv scores.csv --json scores.json --markdown scores.md
  dynsal predict --net stsconv UCF-Sports/testing/*/images -o ucf && dynsal eval ucf UCF-Sports/testing
"""
from __future__ import annotations

import argparse
import difflib
from typing import List

from dynsal import evaluate as E
from dynsal.errors import EvaluationError
from dynsal.metrics import METRICS
from dynsal.progress import write_line

METRIC_NAMES = tuple(METRICS)


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
    parser.add_argument("pred_dir", metavar="PRED_DIR", help="predicted maps: PRED_DIR/<video>/<frame>.png")
    parser.add_argument("gt_dir", metavar="GT_DIR", help="ground truth: GT_DIR/<video>/{maps,fixation}/<frame>")
    parser.add_argument("--metrics", nargs="+", default=[",".join(METRIC_NAMES)], metavar="NAME",
                        help=f"metrics, comma or space separated (default: all: {','.join(METRIC_NAMES)})")
    parser.add_argument("--baselines", nargs="+", default=[], metavar="NAME",
                        help="also score baselines: centre (Gaussian centre bias), chance (uniform noise)")
    parser.add_argument("--sauc-negatives", type=int, default=10, metavar="M",
                        help="frames whose fixations are each frame's sAUC negatives (default 10)")
    parser.add_argument("--sauc-pool", choices=(E.AUTO_POOL,) + E.SAUC_POOLS, default=E.AUTO_POOL,
                        help="draw the sAUC negative frames from other videos or any other frame (default auto: "
                        "other videos, or where only one video has fixations its other frames, said on stderr)")
    parser.add_argument("--seed", type=int, default=0, help="seed of every random draw (default 0)")
    parser.add_argument("--jobs", type=int, default=1, metavar="N",
                        help="worker processes, 0 = one per CPU core (default 1)")
    parser.add_argument("--partial", action="store_true",
                        help="score only frames with a prediction; ignore ground-truth frames without one")
    parser.add_argument("--csv", metavar="FILE", help="write per-frame, per-video and dataset scores as CSV")
    parser.add_argument("--json", metavar="FILE", help="write settings and all scores as JSON")
    parser.add_argument("--markdown", metavar="FILE", help="write the summary tables as markdown")


def run(args: argparse.Namespace) -> int:
    """Evaluate, print the summary table, write the requested files; returns the exit status."""
    E.check_report_paths({"--csv": args.csv, "--json": args.json, "--markdown": args.markdown}, args.pred_dir,
                         args.gt_dir)
    result = E.evaluate(
        args.pred_dir, args.gt_dir,
        metrics=_choose(args.metrics, METRIC_NAMES, "metric"),
        baselines=_choose(args.baselines, E.BASELINES, "baseline"),
        sauc_negatives=args.sauc_negatives, sauc_pool=args.sauc_pool, seed=args.seed,
        jobs=args.jobs, partial=args.partial, progress=not args.quiet,
    )
    if args.sauc_pool == E.AUTO_POOL and result.settings["sauc_pool"] == "other-frames" and "sauc" in result.metrics:
        write_line("dynsal eval: one video has fixations: sAUC negatives come from its other frames "
                   "(--sauc-pool other-frames); with two or more videos, from other videos")
    print(E.format_table(result), end="")
    writers = ((args.csv, E.write_csv), (args.json, E.write_json), (args.markdown, E.write_markdown))
    for path, write in writers:
        if path:
            write(result, path)
            print(f"wrote {path}")
    return 0
