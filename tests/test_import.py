"""`import dynsal` stays light: no torch (DESIGN.md D2), no network."""
from __future__ import annotations

import subprocess
import sys


def test_import_does_not_load_torch():
    code = ("import sys, dynsal, dynsal.caffe.io, dynsal.caffe.shapes, dynsal.zoo, dynsal.cli; "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
