"""`dynsal predict --engine caffe` inside the oracle (Debian's Caffe, OpenCV 4.5, Python 3.9) gives
the maps the torch engine gives on the same files."""
from __future__ import annotations

import shutil

import cv2
import numpy as np
import pytest

from dynsal.cli import main
from tests.predict.helpers import make_inputs, zoo_weights

pytestmark = pytest.mark.caffe_parity

pytest.importorskip("torch", reason="the comparison runs the torch engine too")


@pytest.mark.parametrize("net", ["stsconv"])
def test_caffe_engine_predict_matches_torch(oracle, workdir, tmp_path, net):
    _, frames = make_inputs(tmp_path, frames=3)
    weights = zoo_weights(net, tmp_path)
    shutil.copytree(frames, workdir.host / "shots")
    shutil.copy(weights, workdir.host / "net.caffemodel")
    args = ["predict", "--net", net, "--weights", "net.caffemodel", "shots", "-o", "out", "--npz", "--no-overlay",
            "--engine", "caffe"]
    result = oracle.run(["python3", "-m", "dynsal", *args], workdir, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    assert main(["predict", "--net", net, "--weights", str(weights), str(frames), "-o", str(tmp_path / "out"),
                 "--npz", "--no-overlay", "--engine", "torch"]) == 0
    caffe_maps = np.load(workdir.host / "out" / "shots" / "maps.npz")["maps"]
    torch_maps = np.load(tmp_path / "out" / "shots" / "maps.npz")["maps"]
    assert caffe_maps.shape == torch_maps.shape == (3, 60, 76)
    assert np.abs(caffe_maps - torch_maps).max() < 2e-3  # maps in [0, 1]; float32 engines, same pipeline
    for name in ("frame_000", "frame_001", "frame_002"):
        caffe_png = cv2.imread(str(workdir.host / "out" / "shots" / f"{name}.png"), cv2.IMREAD_UNCHANGED)
        torch_png = cv2.imread(str(tmp_path / "out" / "shots" / f"{name}.png"), cv2.IMREAD_UNCHANGED)
        assert np.abs(caffe_png.astype(int) - torch_png.astype(int)).max() <= 1  # at most 1 grey level
