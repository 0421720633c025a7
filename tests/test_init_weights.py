"""Two-stream initialisation from single-stream caffemodels (the oracle test runs the result in Caffe)."""
from __future__ import annotations

import numpy as np
import pytest

from dynsal import zoo
from dynsal.caffe import io
from dynsal.caffe.caffemodel import attach_blobs
from dynsal.caffe.graph import build_graph
from dynsal.caffe.shapes import infer_shapes
from dynsal.cli import main
from dynsal.errors import DynsalError, WeightsMismatchError
from dynsal.init_weights import fuse_identity, read_blobs, two_stream_weights


def single_stream(seed: int):
    _, params = infer_shapes(build_graph(zoo.deploy("ssnet", (1, 3, 48, 64))))
    rng = np.random.default_rng(seed)
    return {k: [rng.standard_normal(s).astype(np.float32) for s in v] for k, v in params.items() if v}


def test_fuse_identity_averages_streams():
    w = fuse_identity((4, 8, 1, 1))
    a, b = np.arange(4.0), np.arange(4.0) * 3
    np.testing.assert_allclose(w[:, :, 0, 0] @ np.concatenate([a, b]), (a + b) / 2)
    with pytest.raises(WeightsMismatchError):
        fuse_identity((4, 6, 1, 1))


@pytest.mark.parametrize("net", ["stsmax", "stsconv", "early", "late"])
def test_mapping(net):
    ss, ts = single_stream(0), single_stream(1)
    weights = two_stream_weights(net, ss, ts)
    np.testing.assert_array_equal(weights["conv1"][0], ss["conv1"][0])
    np.testing.assert_array_equal(weights["conv1_b"][0], ts["conv1"][0])
    np.testing.assert_array_equal(weights["deconv1"][0], ss["deconv1"][0])
    average = two_stream_weights(net, ss, ts, head="average")
    np.testing.assert_allclose(average["deconv1"][0], (ss["deconv1"][0] + ts["deconv1"][0]) / 2)


def test_errors():
    ss = single_stream(0)
    with pytest.raises(DynsalError, match="single-stream"):
        two_stream_weights("ssnet", ss, ss)
    broken = dict(ss, conv3=[np.zeros((512, 256, 5, 5), np.float32), ss["conv3"][1]])
    with pytest.raises(WeightsMismatchError, match="temporal model layer 'conv3'"):
        two_stream_weights("stsconv", ss, broken)
    del broken["conv3"]
    with pytest.raises(WeightsMismatchError, match="temporal model has no layer 'conv3'"):
        two_stream_weights("stsconv", ss, broken)


def test_command_writes_a_caffemodel_that_fits(tmp_path, capsys):
    deploy = zoo.deploy("ssnet")
    io.write_binary(attach_blobs(deploy, single_stream(0)), tmp_path / "ss.caffemodel")
    io.write_binary(attach_blobs(deploy, single_stream(1)), tmp_path / "ts.caffemodel")
    assert main(["init-weights", "--net", "stsconv", "--spatial", str(tmp_path / "ss.caffemodel"),
                 "--temporal", str(tmp_path / "ts.caffemodel"), "-o", str(tmp_path / "init.caffemodel")]) == 0
    io.write_text(zoo.deploy("stsconv"), tmp_path / "stsconv.prototxt")
    assert main(["info", str(tmp_path / "stsconv.prototxt"), str(tmp_path / "init.caffemodel")]) == 0
    assert "fits" in capsys.readouterr().out
    assert set(read_blobs(tmp_path / "init.caffemodel")) >= {"conv_fuse", "conv5_b", "conv9"}
