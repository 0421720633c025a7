"""Plot training curves (loss, learning rate, test outputs) from dynsal or Caffe logs to a PNG.

Logs may be dynsal's JSON-lines training logs or the stderr of real `caffe train` (glog lines),
so runs of both engines can be compared on one figure.

Examples:
  dynsal plot-log snapshots/stsconv_log.jsonl -o curves.png
  dynsal plot-log caffe_train.log snapshots/stsconv_log.jsonl --labels caffe,torch -o compare.png
"""
from __future__ import annotations

import argparse
import io
from pathlib import Path

from dynsal.errors import DynsalError
from dynsal.files import write_atomic
from dynsal.training.training_log import read_log


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("logs", nargs="+", help="dynsal .jsonl logs or Caffe training logs")
    parser.add_argument("-o", "--output", required=True, help="PNG file to write")
    parser.add_argument("--labels", help="comma-separated legend labels, one per log (default: file names)")


def series(records, phase: str, key: str, output: str | None = None):
    """(iterations, values) of one curve: a record field, or one named output."""
    points = [(r["iteration"], r["outputs"].get(output) if output else r.get(key))
              for r in records if r["phase"] == phase]
    points = [(i, v) for i, v in points if v is not None]
    return [p[0] for p in points], [p[1] for p in points]


def run(args: argparse.Namespace) -> int:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise DynsalError("plot-log needs matplotlib: pip install matplotlib") from None
    labels = args.labels.split(",") if args.labels else [Path(p).name for p in args.logs]
    if len(labels) != len(args.logs):
        raise DynsalError(f"--labels gives {len(labels)} labels for {len(args.logs)} logs")
    figure, (loss_ax, lr_ax) = plt.subplots(2, 1, figsize=(8, 7), sharex=True)
    for path, label in zip(args.logs, labels):
        records = read_log(path)
        loss_ax.plot(*series(records, "train", "loss"), label=f"{label}: train loss")
        test_outputs = sorted({name for r in records if r["phase"] == "test" for name in r["outputs"]})
        for name in test_outputs:
            loss_ax.plot(*series(records, "test", "", name), marker="o", label=f"{label}: test {name}")
        lr_ax.plot(*series(records, "train", "lr"), label=label, drawstyle="steps-post")
    loss_ax.set_ylabel("loss")
    loss_ax.legend()
    lr_ax.set_ylabel("learning rate")
    lr_ax.set_xlabel("iteration")
    lr_ax.legend()
    figure.tight_layout()
    image = io.BytesIO()
    figure.savefig(image, format="png", dpi=100)
    plt.close(figure)
    write_atomic(args.output, image.getvalue())
    print(f"wrote {args.output}")
    return 0
