"""`import dynsal` stays light: no torch, no network."""
from __future__ import annotations

import subprocess
import sys


def test_import_does_not_load_torch():
    code = ("import sys, dynsal, dynsal.caffe.io, dynsal.caffe.shapes, dynsal.zoo, dynsal.cli; "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_top_level_predictor_and_predict_load_on_first_use():
    code = ("import sys, dynsal; light = not {'torch', 'cv2', 'dynsal.predict'} & set(sys.modules); "
            "P = dynsal.Predictor; print(light, P.__name__, callable(dynsal.predict), 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["True", "Predictor", "True", "False"]
