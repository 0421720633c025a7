#!/usr/bin/env python3
"""`python scripts/make_hdf5.py ARGS` = `dynsal make-hdf5 ARGS` (see `dynsal make-hdf5 --help`)."""
import sys

import _checkout  # noqa: F401  (this checkout's dynsal before any installed one)

from dynsal.cli import main

if __name__ == "__main__":
    sys.exit(main(["make-hdf5", *sys.argv[1:]]))
