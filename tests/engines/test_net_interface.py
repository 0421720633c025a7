"""The engine-neutral Net interface, for whichever engine $DYNSAL_TEST_ENGINE names (default torch).

The same file runs on the host with the torch engine and inside the real-Caffe chroot with the
caffe engine (tests/oracle/test_engines.py), so both engines are held to one contract.
"""
from __future__ import annotations

import os

import numpy as np
import pytest
from google.protobuf import text_format

from dynsal.caffe import io
from dynsal.caffe.caffemodel import attach_blobs
from dynsal.caffe.graph import build_graph
from dynsal.caffe.schema import pb
from dynsal.caffe.shapes import infer_shapes
from dynsal.engines import load_net
from dynsal.errors import DynsalError, NetDefinitionError, WeightsMismatchError

ENGINE = os.environ.get("DYNSAL_TEST_ENGINE", "torch")
if ENGINE == "torch":
    pytest.importorskip("torch", reason="the torch engine needs torch (pip install dynsal[torch])")

SMALL_NET = """
name: "small"
force_backward: true
layer { name: "input" type: "Input" top: "x" top: "label"
        input_param { shape { dim: 2 dim: 3 dim: 12 dim: 16 } shape { dim: 2 dim: 1 dim: 12 dim: 16 } } }
layer { name: "conv1" type: "Convolution" bottom: "x" top: "conv1"
        convolution_param { num_output: 4 kernel_size: 3 pad: 1 } }
layer { name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1" }
layer { name: "pool1" type: "Pooling" bottom: "conv1" top: "pool1"
        pooling_param { pool: MAX kernel_size: 3 stride: 2 } }
layer { name: "deconv1" type: "Deconvolution" bottom: "pool1" top: "deconv1"
        convolution_param { num_output: 1 kernel_size: 4 stride: 2 pad: 1 bias_term: false } }
layer { name: "loss" type: "EuclideanLoss" bottom: "deconv1" bottom: "label" top: "loss" }
"""


def small_net():
    return text_format.Parse(SMALL_NET, pb.NetParameter())


def random_weights(net, seed=0):
    _, params = infer_shapes(build_graph(net))
    rng = np.random.default_rng(seed)
    return {k: [rng.standard_normal(s).astype(np.float32) * 0.3 for s in v] for k, v in params.items() if v}


def inputs(seed=1, shape=(2, 3, 12, 16)):
    rng = np.random.default_rng(seed)
    return {"x": rng.standard_normal(shape).astype(np.float32),
            "label": rng.standard_normal((shape[0], 1) + shape[2:]).astype(np.float32)}


@pytest.fixture()
def files(tmp_path):
    net = small_net()
    weights = random_weights(net)
    io.write_text(net, tmp_path / "small.prototxt")
    io.write_binary(attach_blobs(net, weights), tmp_path / "small.caffemodel")
    return tmp_path / "small.prototxt", tmp_path / "small.caffemodel", weights


def test_names_and_forward(files):
    prototxt, caffemodel, weights = files
    net = load_net(prototxt, caffemodel, engine=ENGINE)
    assert net.inputs == ["x", "label"] and net.outputs == ["loss"]
    assert net.blob_names == ["x", "label", "conv1", "pool1", "deconv1", "loss"]
    out = net.forward(**inputs())
    assert set(out) == {"loss"} and np.shape(out["loss"]) == ()
    expected = np.sum((net.blob("deconv1") - inputs()["label"]) ** 2) / 2 / 2
    assert out["loss"] == pytest.approx(expected, rel=1e-4)
    assert (net.blob("conv1") >= 0).all()  # in-place ReLU: the blob holds the post-ReLU value
    for layer, arrays in weights.items():
        assert len(net.params()[layer]) == len(arrays), layer
        for got, want in zip(net.params()[layer], arrays):
            np.testing.assert_array_equal(got, want)


def test_backward_accumulates_until_cleared(files):
    prototxt, caffemodel, _ = files
    net = load_net(prototxt, caffemodel, engine=ENGINE)
    net.forward(**inputs())
    first = net.backward()
    assert first["x"].shape == (2, 3, 12, 16) and np.abs(first["x"]).sum() > 0
    once = net.param_diffs()["conv1"][0].copy()
    net.backward()
    np.testing.assert_allclose(net.param_diffs()["conv1"][0], 2 * once, rtol=1e-5, atol=1e-6)
    net.clear_param_diffs()
    assert not np.any(net.param_diffs()["conv1"][0])


def test_reshape_and_save(files, tmp_path):
    prototxt, caffemodel, weights = files
    net = load_net(prototxt, caffemodel, engine=ENGINE)
    shapes = net.reshape(x=(1, 3, 20, 24), label=(1, 1, 20, 24))
    assert tuple(shapes["deconv1"]) == (1, 1, 20, 24)
    out = net.forward(**inputs(shape=(1, 3, 20, 24)))
    assert np.isfinite(out["loss"])
    with pytest.raises(NetDefinitionError):
        net.reshape(x=(1, 3, 20, 24), label=(1, 1, 21, 24))
    net.save(tmp_path / "saved.caffemodel")
    again = load_net(prototxt, tmp_path / "saved.caffemodel", engine=ENGINE)
    np.testing.assert_array_equal(again.params()["conv1"][0], weights["conv1"][0])


def test_set_params(files):
    prototxt, caffemodel, weights = files
    net = load_net(prototxt, caffemodel, engine=ENGINE)
    net.set_params({"deconv1": [np.zeros_like(weights["deconv1"][0])]})
    net.forward(**inputs())
    assert not np.any(net.blob("deconv1"))
    with pytest.raises(WeightsMismatchError, match="conv1"):
        net.set_params({"conv1": [np.zeros((1, 1)), np.zeros(4)]})


def test_weights_that_do_not_fit(files, tmp_path):
    prototxt, _, weights = files
    wrong = dict(weights, conv1=[np.zeros((4, 3, 5, 5), np.float32), weights["conv1"][1]])
    io.write_binary(attach_blobs(small_net(), wrong), tmp_path / "wrong.caffemodel")
    with pytest.raises(WeightsMismatchError, match="conv1.*(4, 3, 5, 5).*(4, 3, 3, 3)"):
        load_net(prototxt, tmp_path / "wrong.caffemodel", engine=ENGINE)
    partial = attach_blobs(small_net(), weights)
    del partial.layer[[layer.name for layer in partial.layer].index("deconv1")]
    io.write_binary(partial, tmp_path / "partial.caffemodel")
    with pytest.raises(WeightsMismatchError, match="deconv1"):
        load_net(prototxt, tmp_path / "partial.caffemodel", engine=ENGINE)
    net = load_net(prototxt, tmp_path / "partial.caffemodel", engine=ENGINE, allow_missing=True)
    np.testing.assert_array_equal(net.params()["conv1"][0], weights["conv1"][0])


def test_bad_inputs_are_clear_errors(files):
    prototxt, caffemodel, _ = files
    net = load_net(prototxt, caffemodel, engine=ENGINE)
    with pytest.raises(DynsalError, match="label"):
        net.forward(x=inputs()["x"])
    with pytest.raises(DynsalError, match="no blob 'nope'"):
        net.blob("nope")


def test_device_auto_runs_on_a_resolved_device_it_names():
    """device="auto": the GPU when the engine sees one, else the CPU; the net says which ran (never "auto")."""
    net = load_net(small_net(), None, engine=ENGINE, device="auto", seed=1)
    assert net.engine == ENGINE and net.precision == "fp32"
    assert net.device_name == "cpu" or net.device_name.startswith("cuda:")
    if ENGINE == "torch":
        import torch

        assert net.device_name == ("cuda:0" if torch.cuda.is_available() else "cpu")
    else:  # the oracle's Caffe is Debian's CPU build
        assert net.device_name == "cpu"
