#!/usr/bin/env python3
"""`python scripts/make_lmdb.py ARGS` = `dynsal make-lmdb ARGS` (see `dynsal make-lmdb --help`)."""
import sys

import _checkout  # noqa: F401  (this checkout's dynsal before any installed one)

from dynsal.cli import main

if __name__ == "__main__":
    sys.exit(main(["make-lmdb", *sys.argv[1:]]))
