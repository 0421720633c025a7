"""What a user installs: a complete sdist, and a fresh venv (no torch) whose `dynsal predict --help` works
and whose `dynsal predict` says in one line how to install torch; scripts/ run from a checkout."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.predict.helpers import zoo_weights

REPO = Path(__file__).resolve().parents[1]
OFFLINE = ("NewConnectionError", "Temporary failure in name resolution", "Network is unreachable",
           "No matching distribution found")
IN_SDIST = ["LICENSE", "NOTICE", "CITATION.cff", "CHANGELOG.md", "README.md", "pyproject.toml", "MANIFEST.in",
            "dynsal/py.typed", "dynsal/caffe/caffe.proto", "dynsal/weights/registry.json", "tests/conftest.py",
            "tests/__init__.py", "tests/predict/helpers.py", "tests/oracle/datasets.py", "tests/data/synthetic.py",
            "scripts/build_oracle.sh", "scripts/_checkout.py", "prototxt/stsconv_deploy.prototxt",
            "recipes/diem.sh", ".ci/constraints.txt"]


def run(command, **kwargs) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return subprocess.run([str(c) for c in command], capture_output=True, text=True, env=env, **kwargs)


@pytest.fixture(scope="module")
def sdist(tmp_path_factory) -> Path:
    """The sdist built from a copy of this checkout (the checkout itself is left as it is)."""
    root = tmp_path_factory.mktemp("packaging")
    source = root / "src"
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(".git", ".venv", "__pycache__", "*.egg-info", "build",
                                                                 "dist", ".pytest_cache", ".ruff_cache"))
    result = run([sys.executable, "-c", "from setuptools import build_meta; print(build_meta.build_sdist('dist'))"],
                 cwd=source)
    assert result.returncode == 0, result.stderr[-2000:]
    return source / "dist" / result.stdout.strip().splitlines()[-1]


def test_the_sdist_holds_the_tests_and_their_files(sdist):
    with tarfile.open(sdist) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    assert [name for name in IN_SDIST if name not in names] == []
    tests_in_repo = {str(p.relative_to(REPO)) for p in (REPO / "tests").rglob("*.py")}
    assert tests_in_repo <= names  # every test module and helper
    assert not any("__pycache__" in name or name.endswith(".pyc") for name in names)


def test_a_fresh_venv_without_torch(sdist, tmp_path):
    venv = tmp_path / "venv"
    assert run([sys.executable, "-m", "venv", venv]).returncode == 0
    python, dynsal = venv / "bin" / "python", venv / "bin" / "dynsal"
    install = run([python, "-m", "pip", "install", "-q", sdist])
    if install.returncode != 0 and any(word in install.stderr for word in OFFLINE):
        pytest.skip(f"pip cannot reach a package index here: {install.stderr.strip().splitlines()[-1]}")
    assert install.returncode == 0, install.stderr[-2000:]
    assert run([python, "-c", "import torch"]).returncode != 0  # the venv really has no torch

    help_text = run([dynsal, "predict", "--help"], cwd=tmp_path)
    assert help_text.returncode == 0, help_text.stderr
    assert "(default: auto)" in help_text.stdout and "--layout" in help_text.stdout
    loaded = "import sys, dynsal; dynsal.Predictor; print(sorted({'torch', 'cv2'} & set(sys.modules)))"
    lazy = run([python, "-c", loaded], cwd=tmp_path)
    assert lazy.stdout.strip() == "['cv2']", lazy.stderr  # the predictor loads OpenCV, never torch

    cv2.imwrite(str(tmp_path / "still.png"), np.zeros((24, 32, 3), np.uint8))
    predict = run([dynsal, "predict", "--net", "ssnet", "--weights", zoo_weights("ssnet", tmp_path), "--engine",
                   "torch", tmp_path / "still.png", "-o", tmp_path / "out"], cwd=tmp_path)
    assert predict.returncode == 1 and "Traceback" not in predict.stderr
    assert predict.stderr.strip().splitlines() == [
        "dynsal predict: error: this needs torch, which is not installed here: pip install torch (CPU; for a GPU "
        "pick the build for your CUDA at pytorch.org/get-started), or pip install \"dynsal[torch]\""]

    # scripts/ from a checkout, dynsal not installed: the checkout's own package is used
    assert run([python, "-m", "pip", "uninstall", "-q", "-y", "dynsal"]).returncode == 0
    script = run([python, sdist.parent.parent / "scripts" / "train.py", "--help"], cwd=tmp_path)
    assert script.returncode == 0, script.stderr
    assert "--no-test-initialization" in script.stdout
