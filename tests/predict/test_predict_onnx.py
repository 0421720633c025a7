"""`dynsal export --net stsconv -o s.onnx`, then `dynsal predict --engine onnx` with that file: the maps are
within one grey level of the torch engine's. The published weights cannot be downloaded here, so the
registered weights file ($DYNSAL_MODELS/stsconvnet.caffemodel) is a caffemodel of STSConvNet's structure
with the zoo's fillers, made by the test."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from dynsal.cli import main
from tests.data.synthetic import panning_video
from tests.predict.helpers import zoo_weights

pytest.importorskip("torch", reason="the reference maps come from the torch engine")

SIZE = (240, 320)  # the deploy prototxt's input size: `dynsal export` without --dynamic fixes it


def _maps(folder):
    return [cv2.imread(str(path), cv2.IMREAD_GRAYSCALE) for path in sorted(folder.glob("*.png"))]


def test_exported_stsconv_predicts_the_torch_engines_maps(tmp_path, monkeypatch, capsys):
    models = tmp_path / "models"
    models.mkdir()
    zoo_weights("stsconv", models).rename(models / "stsconvnet.caffemodel")
    monkeypatch.setenv("DYNSAL_MODELS", str(models))
    video = panning_video(tmp_path / "clip.avi", 2, *SIZE)
    assert main(["export", "--net", "stsconv", "-o", str(tmp_path / "s.onnx")]) == 0
    assert "input  data1: 1×3×240×320" in capsys.readouterr().out
    common = [str(video), "--no-overlay", "--workers", "1"]
    assert main(["predict", "--net", "stsconv", "--engine", "onnx", "--weights", str(tmp_path / "s.onnx"), *common,
                 "-o", str(tmp_path / "onnx")]) == 0
    assert main(["predict", "--net", "stsconv", "--engine", "torch", *common, "-o", str(tmp_path / "torch")]) == 0
    onnx_maps, torch_maps = _maps(tmp_path / "onnx" / "clip"), _maps(tmp_path / "torch" / "clip")
    assert len(onnx_maps) == len(torch_maps) == 2
    for a, b in zip(onnx_maps, torch_maps):
        assert a.shape == SIZE and np.abs(a.astype(int) - b.astype(int)).max() <= 1
        assert a.std() > 0  # real maps, not a constant image
