"""`dynsal export` end to end: files written and described, the registered weights of a zoo net, and bad
input as one line with exit status 1."""
from __future__ import annotations

import json

import numpy as np
import onnxruntime as ort
import pytest

from dynsal.caffe import io
from dynsal.caffe.caffemodel import attach_blobs
from dynsal.cli import main
from dynsal.engines import load_net
from dynsal.errors import DynsalError
from dynsal.export import export
from tests.engines.test_net_interface import inputs, random_weights, small_net

torch = pytest.importorskip("torch", reason="TorchScript exports need torch")


@pytest.fixture()
def files(tmp_path):
    net = small_net()
    io.write_text(net, tmp_path / "small.prototxt")
    io.write_binary(attach_blobs(net, random_weights(net)), tmp_path / "small.caffemodel")
    (tmp_path / "small.caffemodel.json").write_text(json.dumps({"resize": "fixed:12x16"}))
    return tmp_path / "small.prototxt", tmp_path / "small.caffemodel"


def test_onnx_and_torchscript_files(files, tmp_path, capsys):
    """An .onnx and a .pt of the same net give the onnx engine's outputs; the model's settings JSON travels
    with the export; --shape sets the exported input shapes."""
    prototxt, caffemodel = files
    expected = load_net(prototxt, caffemodel, engine="onnx").forward(**inputs())["loss"]
    assert main(["export", str(prototxt), str(caffemodel), "-o", str(tmp_path / "net.onnx"), "--opset", "13"]) == 0
    out = capsys.readouterr().out
    assert "net.onnx: onnx (ONNX opset 13, fp32)" in out and "input  x: 2×3×12×16" in out and "output loss: " in out
    assert json.loads((tmp_path / "net.onnx.json").read_text()) == {"resize": "fixed:12x16"}
    session = ort.InferenceSession(str(tmp_path / "net.onnx"), providers=["CPUExecutionProvider"])
    assert session.run(["loss"], inputs())[0] == pytest.approx(expected, rel=1e-6)
    assert main(["export", str(prototxt), str(caffemodel), "-o", str(tmp_path / "net.pt"), "--dynamic"]) == 0
    assert "input  x: N×3×H×W" in capsys.readouterr().out
    recorded = {"dynsal.json": ""}  # what the export is, as the ONNX file's metadata
    module = torch.jit.load(str(tmp_path / "net.pt"), _extra_files=recorded)
    description = json.loads(recorded["dynsal.json"])
    assert (description["dynsal.net"], description["dynsal.precision"], description["dynsal.dynamic"]) == (
        "small", "fp32", "true") and "dynsal.prototxt" in description
    feed = {k: torch.from_numpy(v) for k, v in inputs().items()}
    assert float(module(**feed)["loss"]) == pytest.approx(expected, rel=1e-5)
    assert main(["export", str(prototxt), str(caffemodel), "-o", str(tmp_path / "big.onnx"),
                 "--shape", "x=1x3x24x32", "--shape", "label=1x1x24x32"]) == 0
    assert "input  x: 1×3×24×32" in capsys.readouterr().out


def test_bad_input_is_one_line_and_nothing_is_overwritten(files, tmp_path, capsys):
    prototxt, caffemodel = files
    target = tmp_path / "net.onnx"
    target.write_bytes(b"mine")
    cases = [
        (["export", str(prototxt), "-o", str(target)], "net.onnx exists; pass --overwrite"),
        (["export", str(prototxt), "-o", str(tmp_path / "net.tflite")], "unknown export format"),
        (["export", str(prototxt), "--net", "ssnet", "-o", str(tmp_path / "a.onnx")], "give a prototxt or --net"),
        (["export", str(prototxt), str(caffemodel), "-o", str(tmp_path / "a.onnx"), "--opset", "9"],
         "opset 9 is not supported: choose 13 to"),
        (["export", str(prototxt), str(caffemodel), "-o", str(tmp_path / "a.onnx"), "--shape", "y=1x2"],
         "not inputs of net 'small': y"),
        (["export", str(tmp_path / "missing.prototxt"), "-o", str(tmp_path / "a.onnx")], "missing.prototxt"),
    ]
    for argv, message in cases:
        assert main(argv) == 1, argv
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    with pytest.raises(DynsalError, match="net.onnx exists; pass overwrite=True to replace it"):
        export(prototxt, caffemodel, target)  # the API's words, not the command's
    assert target.read_bytes() == b"mine" and not (tmp_path / "a.onnx").exists()
    with pytest.raises(SystemExit) as exit_info:
        main(["export", str(prototxt), "-o", str(tmp_path / "a.onnx"), "--shape", "x=1xthree"])
    assert exit_info.value.code == 2 and "expected NAME=DIMS" in capsys.readouterr().err


def test_zoo_net_without_its_weights_says_how_to_fetch(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DYNSAL_MODELS", str(tmp_path / "models"))
    assert main(["export", "--net", "stsconv", "-o", str(tmp_path / "s.onnx")]) == 1
    err = capsys.readouterr().err
    assert "dynsal weights fetch stsconvnet-diem" in err and str(tmp_path / "models") in err
    assert main(["export", "--net", "ssnet", "-o", str(tmp_path / "s.onnx")]) == 1
    assert "no published weights for 'ssnet'" in capsys.readouterr().err
    assert not (tmp_path / "s.onnx").exists()


def test_fresh_weights_without_a_caffemodel(files, tmp_path):
    """No caffemodel: the layers' Caffe fillers (the small net's are constant 0, so its deconv1 is 0)."""
    prototxt, _ = files
    assert main(["export", str(prototxt), "-o", str(tmp_path / "fresh.onnx")]) == 0
    session = ort.InferenceSession(str(tmp_path / "fresh.onnx"), providers=["CPUExecutionProvider"])
    feed = inputs()
    assert session.run(["loss"], feed)[0] == pytest.approx(np.sum(feed["label"] ** 2) / 2 / 2, rel=1e-5)
