#!/usr/bin/env python3
"""`python scripts/make_lmdb.py ARGS` = `dynsal make-lmdb ARGS` (see `dynsal make-lmdb --help`)."""
import sys

from dynsal.cli import main

if __name__ == "__main__":
    sys.exit(main(["make-lmdb", *sys.argv[1:]]))
