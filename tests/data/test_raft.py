"""RAFT through torchvision (`dynsal.data.raft`), run in the venv of scripts/build_torchvision_env.sh.

What is checked: dynsal's RAFT equals torchvision's documented use of the same model and weights
(its `transforms()` preset, the last refinement), padding to a multiple of 8 equals padding by hand,
both architectures are recognised from the weights file, bad files and parameters give one line,
and `dynsal flow` / `dynsal make-lmdb` run with it. Not checked: accuracy on real motion, which
needs the published weights (not downloadable here); the weights used are random.
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from dynsal.cli import main
from dynsal.data.flow import available_methods, compute_flow
from dynsal.errors import DataError
from tests.data.synthetic import panning_video, steady_gaze

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]


def in_env(python: str, *args: str, cwd=None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([python, *args], capture_output=True, text=True, env=env, cwd=cwd or REPO)


def random_raft_small(python: str, path: Path) -> Path:
    """A state dict of torchvision's raft_small with seeded random weights, saved by the venv's torch."""
    saved = in_env(python, "-c", "import sys, torch; from torchvision.models.optical_flow import raft_small; "
                   "torch.manual_seed(1); torch.save(raft_small().state_dict(), sys.argv[1])", str(path))
    assert saved.returncode == 0, saved.stderr
    return path


def check(python: str, name: str, folder: Path) -> dict:
    result = in_env(python, str(HERE / "raft_env.py"), name, str(folder))
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_raft_without_torchvision_is_one_clear_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "torchvision", None)  # as if not installed
    assert "raft" not in available_methods()
    frame = np.zeros((16, 16, 3), np.uint8)
    with pytest.raises(DataError, match=r"'raft' needs torch and torchvision: pip install 'dynsal\[raft\]'"):
        compute_flow(frame, frame, "raft", weights="w.pth")
    video = panning_video(tmp_path / "pan.avi", 3, 32, 32)
    assert main(["flow", str(video), "-o", str(tmp_path / "o"), "--method", "raft", "--param", "weights=w.pth"]) == 1
    assert "needs torch and torchvision" in capsys.readouterr().err
    with pytest.raises(DataError, match="unknown parameter.*steps.*raft"):
        compute_flow(frame, frame, "raft", steps=4)


def test_raft_equals_torchvisions_own_use(torchvision_python, tmp_path):
    found = check(torchvision_python, "matches_torchvision", tmp_path)
    for model in ("small", "large"):
        assert found[f"{model} shape"] == [128, 136, 2, "float32"]
        assert found[f"{model} grey shape"] == [130, 141, 2]
        assert found[f"{model} 128x136"] == 0.0, found  # the same arithmetic as torchvision's preset
        assert found[f"{model} 130x141"] < 1e-5, found


def test_raft_bad_weights_and_parameters(torchvision_python, tmp_path):
    found = check(torchvision_python, "errors", tmp_path)
    assert found["missing"].endswith("none.pth: no such RAFT weights file; give torchvision's raft_large_*.pth or "
                                     "raft_small_*.pth with --param weights=PATH")
    assert "conv.pth: not a state dict of torchvision's raft_large or raft_small (it starts with weight, bias)" in \
        found["not raft"]
    assert "garbage.pth: not a PyTorch weights file" in found["garbage"]
    assert "needs its weights file: --param weights=PATH" in found["no weights"]
    assert "iterations must be ≥ 1, got 0" in found["iterations"]
    assert "unknown device 'tpu'" in found["device"]
    assert "needs frames of at least 128×128 pixels, got 100×128; resize them larger" in found["too small"]
    assert all("\n" not in message for message in found.values())


def test_flow_and_make_lmdb_commands_with_raft(torchvision_python, tmp_path):
    weights = random_raft_small(torchvision_python, tmp_path / "raft_small.pth")
    video = panning_video(tmp_path / "pan.avi", 3, 128, 136)
    params = ["--method", "raft", "--param", f"weights={weights}", "--param", "iterations=2", "--param", "device=cpu"]
    flow = in_env(torchvision_python, "-m", "dynsal", "flow", str(video), "-o", str(tmp_path / "flows"), "--flo",
                  *params)
    assert flow.returncode == 0, flow.stderr
    record = json.loads((tmp_path / "flows" / "pan" / "flow_settings.json").read_text())
    assert record["flow"]["method"] == "raft"
    assert record["flow"]["params"] == {"weights": str(weights), "iterations": 2, "device": "cpu"}
    assert sorted(p.name for p in (tmp_path / "flows" / "pan").glob("*.png")) == [f"{i:06d}.png" for i in range(3)]
    steady_gaze(tmp_path / "gaze", "pan_136x128", 3, (136, 128))
    (tmp_path / "videos").mkdir()
    (tmp_path / "pan.avi").rename(tmp_path / "videos" / "pan_136x128.avi")
    build = in_env(torchvision_python, "-m", "dynsal", "make-lmdb", "--videos", str(tmp_path / "videos"), "--gaze",
                   str(tmp_path / "gaze"), "-o", str(tmp_path / "data"), "--resize", "native", "--no-progress",
                   "--jobs", "2", *params)
    assert build.returncode == 0, build.stderr
    manifest = json.loads((tmp_path / "data" / "train_lmdb_manifest.json").read_text())
    assert manifest["count"] == 3 and manifest["settings"]["flow"]["method"] == "raft"
    assert manifest["flow_files"] == {str(weights): hashlib.sha256(weights.read_bytes()).hexdigest()}
    image = cv2.imread(str(tmp_path / "flows" / "pan" / "000001.png"))
    assert image.shape == (128, 136, 3)


def test_predict_with_raft_flow(torchvision_python, tmp_path):
    """`dynsal predict` on a two-stream net computes its flow images with RAFT (worker threads share the model)."""
    from tests.predict.helpers import zoo_weights

    weights = random_raft_small(torchvision_python, tmp_path / "raft_small.pth")
    video = panning_video(tmp_path / "pan.avi", 4, 128, 136)
    run = in_env(torchvision_python, "-m", "dynsal", "predict", "--net", "stsconv", "--weights",
                 str(zoo_weights("stsconv", tmp_path)), "--engine", "torch", "--resize", "native", "--workers", "2",
                 "--flow-method", "raft", "--flow-param", f"weights={weights}", "--flow-param", "iterations=2",
                 "--no-overlay", str(video), "-o", str(tmp_path / "out"))
    assert run.returncode == 0, run.stderr
    settings = json.loads((tmp_path / "out" / "pan" / "settings.json").read_text())
    assert settings["flow"]["method"] == "raft" and settings["flow"]["params"]["iterations"] == 2
    assert sorted(p.name for p in (tmp_path / "out" / "pan").glob("*.png")) == [f"{i:06d}.png" for i in range(4)]
