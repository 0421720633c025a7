"""The cost of `dynsal eval --html`: eval alone vs eval + --html on the same synthetic set, side by side, as JSON.

The set (tests/synthetic_eval.py): `--videos` videos of `--frames` frames at `--size` (DHF1K's 360x640 by
default) with frame images, density maps and fixations, and two models; both runs score the two models and
the centre baseline with every metric, one process (`--jobs`). The runs alternate, `--rounds` times; the
report's own writer (`format_html` on the same result) is timed alone too. Wall and CPU seconds are both
reported; the ratios use the CPU time of the process (eval runs in it with --jobs 1), which the load of other
work on a shared machine moves far less than the wall clock.

How it extrapolates: eval's time grows with the frames (per frame: read 2 maps + ground truth, score 3 maps),
the report's with the videos (per video: `--html-frames` slider frames and one per-video row) plus a fixed
part (the plot, 6 best/worst frames per model), which is counted here as if it grew with the videos too, so
the extrapolation overestimates the report's share. DHF1K's validation set: 100 videos, about 30,000 frames.

    python benchmarks/eval_report.py [--videos 20] [--frames 40] [--size 360x640] [--rounds 2] [--dir /dev/shm]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dynsal import __version__  # noqa: E402
from dynsal.cli import main as dynsal  # noqa: E402
from dynsal.evaluate import evaluate  # noqa: E402
from dynsal.evaluate.reports.as_html import SLIDER_FRAMES, format_html  # noqa: E402
from tests.synthetic_eval import write_eval_set  # noqa: E402

DHF1K_VAL = {"videos": 100, "frames": 30_000}


def _timed(fn, *args):
    """(wall seconds, CPU seconds of this process) of fn(*args)."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn(*args)
    return time.perf_counter() - wall, time.process_time() - cpu


def _dynsal(argv) -> None:
    if dynsal(argv) != 0:
        raise SystemExit(f"dynsal {' '.join(argv)} failed")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=int, default=20)
    parser.add_argument("--frames", type=int, default=40, help="frames per video")
    parser.add_argument("--size", default="360x640", help="H x W of frames and maps")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--jobs", type=int, default=1, help="dynsal eval --jobs")
    parser.add_argument("--html-frames", type=int, default=SLIDER_FRAMES)
    parser.add_argument("--dir", default="/dev/shm" if os.path.isdir("/dev/shm") else None,
                        help="where the set is written (default: /dev/shm, RAM: file reads cost least there, "
                             "which makes the report's share look larger, not smaller)")
    args = parser.parse_args(argv)
    size = tuple(int(v) for v in args.size.lower().split("x"))
    work = Path(tempfile.mkdtemp(prefix="dynsal-eval-report-", dir=args.dir))
    try:
        models, gt = write_eval_set(work / "set", videos=args.videos, frames=args.frames, size=size)
        base = ["eval", *[a for name, folder in models.items() for a in ("--model", f"{name}={folder}")], str(gt),
                "--baselines", "centre", "--jobs", str(args.jobs), "--quiet"]
        with_html = base + ["--html", str(work / "report.html"), "--html-frames", str(args.html_frames)]
        alone, report = [], []
        with open(os.devnull, "w") as quiet:
            stdout, sys.stdout = sys.stdout, quiet
            try:
                for round_ in range(args.rounds):  # alternate, so a busier moment does not favour one side
                    for argv_, times in ((base, alone), (with_html, report))[::1 if round_ % 2 == 0 else -1]:
                        times.append(_timed(_dynsal, argv_))
                result = evaluate(models, gt, baselines=["centre"], jobs=args.jobs)
                writer = _timed(format_html, result, args.html_frames)
            finally:
                sys.stdout = stdout
        frames = args.videos * args.frames
        # CPU time of this process (one process: --jobs 1) is what the verdict uses: on a shared machine the
        # wall clock of the same run varies several-fold with the neighbours' load
        eval_s, html_s = (statistics.median(t[1] for t in runs) for runs in (alone, report))
        per_frame, per_video = eval_s / frames, writer[1] / args.videos
        dhf1k_eval = per_frame * DHF1K_VAL["frames"]
        dhf1k_report = per_video * DHF1K_VAL["videos"]
        html_bytes = (work / "report.html").stat().st_size
        print(json.dumps({
            "benchmark": "eval_report", "date": time.strftime("%Y-%m-%d"), "load": round(os.getloadavg()[0], 2),
            "machine": platform.machine(), "cpus": os.cpu_count(), "dynsal": __version__,
            "set": {"videos": args.videos, "frames": frames, "size": list(size), "models": list(models),
                    "baselines": ["centre"], "html_frames": args.html_frames, "jobs": args.jobs},
            "wall_s": {"eval": [round(t[0], 2) for t in alone], "eval_html": [round(t[0], 2) for t in report],
                       "html_writer_alone": round(writer[0], 2)},
            "cpu_s": {"eval": [round(t[1], 2) for t in alone], "eval_html": [round(t[1], 2) for t in report],
                      "html_writer_alone": round(writer[1], 2)},
            "added_by_html_cpu": round(html_s / eval_s - 1, 4),
            "html_writer_share_of_eval_cpu": round(writer[1] / eval_s, 4),
            "html_mb": round(html_bytes / 1e6, 2),
            "dhf1k_val_extrapolated": {
                **DHF1K_VAL, "eval_s": round(dhf1k_eval, 1), "report_s": round(dhf1k_report, 1),
                "added_by_html": round(dhf1k_report / dhf1k_eval, 4),
                "html_mb": round(html_bytes / args.videos * DHF1K_VAL["videos"] / 1e6, 1)},
            "command": "python benchmarks/eval_report.py " + " ".join(sys.argv[1:] if argv is None else argv),
        }, indent=2))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
