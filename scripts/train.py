#!/usr/bin/env python3
"""Train or fine-tune from a Caffe solver file (= `dynsal train`).

Example:
  python scripts/train.py prototxt/ssnet_solver.prototxt --weights salnet.caffemodel
"""
import sys

import _checkout  # noqa: F401  (this checkout's dynsal before any installed one)

from dynsal.cli import main

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))
