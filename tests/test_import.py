"""`import dynsal` stays light: no torch, no network."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_import_does_not_load_torch():
    code = ("import sys, dynsal, dynsal.caffe.io, dynsal.caffe.shapes, dynsal.zoo, dynsal.cli; "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_top_level_predictor_and_predict_load_on_first_use():
    code = ("import sys, dynsal; light = not {'torch', 'cv2', 'dynsal.predict'} & set(sys.modules); "
            "P = dynsal.Predictor; print(light, P.__name__, callable(dynsal.saliency_maps), 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["True", "Predictor", "True", "False"]


def _readme_api_names():
    """The `dynsal.…` names in the API column of README's job table (`dynsal.zoo.deploy(...)` → dynsal.zoo.deploy)."""
    text = (REPO / "README.md").read_text()
    table = text[text.index("| job | command | API |"):]
    rows = table[:table.index("\n\n")].splitlines()[2:]
    names = [name for row in rows for name in re.findall(r"`(dynsal\.[\w.]+)", row.split("|")[3])]
    assert len(names) >= 14, names  # the table was found whole
    return names


def test_every_name_of_the_readme_api_table_is_reachable_after_import_dynsal():
    """`import dynsal` then attribute access only, as the table writes them (`dynsal.metrics`,
    `dynsal.data.flow`, `dynsal.engines.torch.solver.TorchSolver`); the import itself loads no torch."""
    names = _readme_api_names()
    code = ("import functools, sys, dynsal; light = 'torch' not in sys.modules; "
            f"names = {names!r}; "
            "missing = [n for n in names if not functools.reduce(lambda o, a: getattr(o, a, None), "
            "n.split('.')[1:], dynsal)]; print(light, missing)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split(" ", 1) == ["True", "[]\n"], out
