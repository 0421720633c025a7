#!/usr/bin/env python3
"""Saliency maps for videos, frame folders and images (= `dynsal predict`).

Example:
  python scripts/predict.py --net stsconv clip.mp4 -o saliency
"""
import sys

import _checkout  # noqa: F401  (this checkout's dynsal before any installed one)

from dynsal.cli import main

if __name__ == "__main__":
    sys.exit(main(["predict", *sys.argv[1:]]))
