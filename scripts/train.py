#!/usr/bin/env python3
"""Train or fine-tune from a Caffe solver file (= `dynsal train`).

Example:
  python scripts/train.py prototxt/ssnet_solver.prototxt --weights salnet.caffemodel
"""
import sys

from dynsal.cli import main

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))
