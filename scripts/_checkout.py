"""Imported first by the scripts here: puts this checkout's dynsal ahead of any installed one, so
`python scripts/train.py ...` works from a checkout before (or without) `pip install`."""
import sys
from pathlib import Path

ROOT = str(Path(__file__).resolve().parents[1])
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
