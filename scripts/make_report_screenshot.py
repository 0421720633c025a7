#!/usr/bin/env python3
"""The README's picture of `dynsal eval --html`: a report made by dynsal from synthetic data, shot in headless Chromium.

The data are tests/synthetic_eval.py's (moving discs, simulated observers, two made-up models: no net and no
real dataset), so the picture shows what the report looks like, not how any model scores.

Example:
  python scripts/make_report_screenshot.py -o docs/eval_report_synthetic.png
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

import _checkout  # noqa: F401  (this checkout's dynsal before any installed one)
from PIL import Image

from dynsal.cli import main as dynsal
from tests.browser import Browser
from tests.synthetic_eval import write_eval_set


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-o", "--output", required=True, help="the PNG to write")
    parser.add_argument("--chromium", default=shutil.which("chromium") or "chromium")
    parser.add_argument("--width", type=int, default=1100)
    parser.add_argument("--height", type=int, default=760)
    parser.add_argument("--colours", type=int, default=128, help="palette size of the PNG (smaller file)")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="dynsal-report-shot-"))
    try:
        models, gt = write_eval_set(work / "synthetic", videos=4, frames=24, size=(180, 320))
        report = work / "report.html"
        code = dynsal(["eval", *[a for name, folder in models.items() for a in ("--model", f"{name}={folder}")],
                       str(gt), "--baselines", "centre,chance", "--html", str(report), "--quiet"])
        if code != 0:
            return code
        with Browser(args.chromium, width=args.width, height=args.height) as browser:
            browser.open(report)
            if browser.console_errors:
                print(f"console errors: {browser.console_errors}", file=sys.stderr)
                return 1
            browser.screenshot(work / "shot.png")
        with Image.open(work / "shot.png") as image:
            image.convert("RGB").quantize(args.colours).save(args.output, optimize=True)
        print(f"wrote {args.output}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
