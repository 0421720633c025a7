"""`dynsal export --net stsconv -o s.onnx`, then `dynsal predict --engine onnx` with that file: the maps are
within one grey level of the torch engine's. The published weights cannot be downloaded here, so the
registered weights file ($DYNSAL_MODELS/stsconvnet.caffemodel) is a caffemodel of STSConvNet's structure
with the zoo's fillers, made by the test."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from dynsal import zoo
from dynsal.caffe import io
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
    assert main(["predict", "--weights", str(tmp_path / "s.onnx"), *common, "-o", str(tmp_path / "onnx")]) == 0
    assert main(["predict", "--net", "stsconv", "--engine", "torch", *common, "-o", str(tmp_path / "torch")]) == 0
    onnx_maps, torch_maps = _maps(tmp_path / "onnx" / "clip"), _maps(tmp_path / "torch" / "clip")
    assert len(onnx_maps) == len(torch_maps) == 2
    for a, b in zip(onnx_maps, torch_maps):
        assert a.shape == SIZE and np.abs(a.astype(int) - b.astype(int)).max() <= 1
        assert a.std() > 0  # real maps, not a constant image


def _settings(folder):
    return json.loads((folder / "settings.json").read_text())


@pytest.mark.parametrize("net", ["ssnet", "tsnet"])
def test_a_single_stream_export_runs_as_written_at_its_fixed_size(net, tmp_path, capsys):
    """`dynsal export PROTOTXT CAFFEMODEL -o net.onnx` then `dynsal predict --weights net.onnx VIDEO`, nothing
    else: the net (SSNet: frames; TSNet: flow images, one input each) and the precision come from the file, the
    frames are resized to the export's fixed size (said on stderr), any --batch runs; the maps are the torch
    engine's at that size."""
    prototxt, caffemodel = tmp_path / f"{net}_deploy.prototxt", zoo_weights(net, tmp_path)
    io.write_text(zoo.deploy(net), prototxt)
    export = tmp_path / "net.onnx"
    assert main(["export", str(prototxt), str(caffemodel), "-o", str(export), "--shape", "data1=1x3x48x64"]) == 0
    video = panning_video(tmp_path / "clip.avi", 3, 72, 80)
    common = [str(video), "--no-overlay", "--workers", "0", "--batch", "2"]
    capsys.readouterr()
    assert main(["predict", "--weights", str(export), *common, "-o", str(tmp_path / "onnx")]) == 0
    assert "net.onnx takes 48×64 inputs only (exported without --dynamic): frames are resized to 48×64" in (
        capsys.readouterr().err)
    settings = _settings(tmp_path / "onnx" / "clip")
    assert (settings["net"], settings["engine"], settings["precision"], settings["resize"]) == (
        net, "onnx", "fp32", "fixed:48x64")
    assert main(["predict", "--net", net, "--weights", str(caffemodel), "--engine", "torch", "--resize",
                 "fixed:48x64", *common, "-o", str(tmp_path / "torch")]) == 0
    onnx_maps, torch_maps = _maps(tmp_path / "onnx" / "clip"), _maps(tmp_path / "torch" / "clip")
    assert len(onnx_maps) == len(torch_maps) == 3
    for a, b in zip(onnx_maps, torch_maps):
        assert a.shape == (72, 80) and np.abs(a.astype(int) - b.astype(int)).max() <= 1 and a.std() > 0


def test_a_fixed_export_refuses_another_resize_in_one_line(tmp_path, capsys):
    prototxt = tmp_path / "ssnet_deploy.prototxt"
    io.write_text(zoo.deploy("ssnet"), prototxt)
    assert main(["export", str(prototxt), "-o", str(tmp_path / "net.onnx"), "--shape", "data1=1x3x48x64"]) == 0
    video = panning_video(tmp_path / "clip.avi", 2, 48, 64)
    capsys.readouterr()
    assert main(["predict", "--weights", str(tmp_path / "net.onnx"), str(video), "--resize", "fit:512",
                 "-o", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err.strip()
    assert "not --resize fit:512" in err and "export with --dynamic" in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "out" / "clip").exists()


def test_a_dynamic_fp16_stsconv_export_runs_with_its_own_precision(tmp_path, monkeypatch, capsys):
    """`dynsal export --net stsconv --dynamic --precision fp16` then `dynsal predict --weights s.onnx`: the
    file's net and fp16 are used without --net or --precision, at the default fit:512 resize; its summary
    names every axis."""
    models = tmp_path / "models"
    models.mkdir()
    zoo_weights("stsconv", models).rename(models / "stsconvnet.caffemodel")
    monkeypatch.setenv("DYNSAL_MODELS", str(models))
    export = tmp_path / "s.onnx"
    assert main(["export", "--net", "stsconv", "-o", str(export), "--dynamic", "--precision", "fp16"]) == 0
    summary = capsys.readouterr().out
    assert "input  data1: N×3×H×W" in summary and "output deconv1: ?×1×?×?" in summary, summary
    video = panning_video(tmp_path / "clip.avi", 2, 40, 56)
    assert main(["predict", "--weights", str(export), str(video), "--no-overlay", "--workers", "0",
                 "-o", str(tmp_path / "out")]) == 0
    assert "takes" not in capsys.readouterr().err
    settings = _settings(tmp_path / "out" / "clip")
    assert (settings["net"], settings["precision"], settings["resize"]) == ("stsconv", "fp16", "fit:512")
    maps = _maps(tmp_path / "out" / "clip")
    assert len(maps) == 2 and maps[0].shape == (40, 56) and maps[0].std() > 0
