#!/usr/bin/env python3
"""The original release's job: saliency maps for a folder of frames, one PNG per frame.

Usage: python scripts/generate_saliencies.py FRAMES_DIR OUT_DIR [dynsal predict options]
Example:
  python scripts/generate_saliencies.py videos/clip_frames maps --net stsconv --weights stsconvnet.caffemodel

Same as `dynsal predict FRAMES_DIR -o OUT_DIR --no-overlay ...`: maps land in OUT_DIR/<folder name>/,
named like the frames.
"""
import sys

import _checkout  # noqa: F401  (this checkout's dynsal before any installed one)

from dynsal.cli import main

if __name__ == "__main__":
    if len(sys.argv) < 3 or sys.argv[1] in ("-h", "--help"):
        print(__doc__)
        sys.exit(0 if len(sys.argv) > 1 else 2)
    frames, out, *rest = sys.argv[1:]
    sys.exit(main(["predict", frames, "-o", out, "--no-overlay", *rest]))
