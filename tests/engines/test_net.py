"""The engine interface on the torch engine: loading, weights, errors, backward, reshape, save."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from google.protobuf import text_format

from dynsal import zoo
from dynsal.caffe import io
from dynsal.caffe.blobs import array_to_blob
from dynsal.caffe.caffemodel import attach_blobs
from dynsal.caffe.schema import pb
from dynsal.engines import load_net, pick_engine
from dynsal.errors import DynsalError, FormatError, NetDefinitionError, WeightsMismatchError

SMALL = (1, 3, 16, 24)

TWO_CONV = """
name: "two_conv"
layer { name: "input" type: "Input" top: "x" input_param { shape { dim: 2 dim: 3 dim: 6 dim: 7 } } }
layer { name: "a" type: "Convolution" bottom: "x" top: "a" param { name: "w" } param { lr_mult: 0 }
  convolution_param { num_output: 3 kernel_size: 3 pad: 1 weight_filler { type: "xavier" } } }
layer { name: "relu" type: "ReLU" bottom: "a" top: "a" }
layer { name: "b" type: "Convolution" bottom: "a" top: "b" param { name: "w" } param { lr_mult: 1 }
  convolution_param { num_output: 3 kernel_size: 3 pad: 1 } }
layer { name: "drop" type: "Dropout" bottom: "b" top: "d" include { phase: TRAIN } }
"""


def _net(text=TWO_CONV):
    return text_format.Parse(text, pb.NetParameter())


def test_import_engines_does_not_import_torch():
    code = "import sys, dynsal.engines; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_engine_choice():
    assert pick_engine("torch") == "torch"
    assert pick_engine("auto") in ("torch", "caffe")
    with pytest.raises(DynsalError, match="unknown engine 'tf'"):
        pick_engine("tf")
    with pytest.raises(DynsalError, match="unknown phase"):
        load_net(_net(), engine="torch", phase="val")


def test_interface_names_follow_caffe():
    net = load_net(zoo.deploy("stsmax", SMALL), engine="torch", seed=0)
    assert net.inputs == ["data1", "data1_b"]
    assert net.outputs == ["deconv1"]
    assert net.blob_names[:4] == ["data1", "data1_b", "conv1", "norm1"]
    out = net.forward(data1=np.zeros(SMALL), data1_b=np.ones(SMALL))
    assert out["deconv1"].shape == SMALL[:1] + (1,) + SMALL[2:] and out["deconv1"].dtype == np.float32
    assert net.blob("elt_fuse").shape == (1, 512, 4, 6)


def test_fresh_nets_use_caffe_fillers():
    params = load_net(zoo.deploy("ssnet", SMALL), engine="torch", seed=0).params()
    bound = np.sqrt(3 / (3 * 7 * 7))
    assert 0.9 * bound < np.abs(params["conv1"][0]).max() <= bound
    assert not params["conv1"][1].any()
    np.testing.assert_allclose(params["deconv1"][0][0, 0, 0, :4], [1 / 64, 3 / 64, 5 / 64, 7 / 64])


def test_unknown_layer_type_names_layer_type_and_supported():
    net = _net(TWO_CONV + 'layer { name: "odd" type: "Im2col" bottom: "b" top: "c" }')
    with pytest.raises(NetDefinitionError, match=r"layer 'odd'.*'Im2col'.*supported: .*Convolution"):
        load_net(net, engine="torch")


def test_inputs_are_checked_and_forward_reshapes():
    net = load_net(_net(), engine="torch", seed=0)
    with pytest.raises(DynsalError, match="missing: x"):
        net.forward(y=np.zeros((1,)))
    net.forward(x=np.ones((1, 3, 9, 5)))
    assert net.blob("b").shape == (1, 3, 9, 5)
    assert net.reshape(x=(4, 3, 2, 2))["b"] == (4, 3, 2, 2)
    with pytest.raises(NetDefinitionError, match="change the blob shapes"):
        net.reshape(x=(1, 5, 6, 7))
    with pytest.raises(DynsalError, match="has no blob 'zz'"):
        net.blob("zz")


def test_phase_rules_and_shared_params():
    test_net, train_net = load_net(_net(), engine="torch", seed=0), load_net(_net(), engine="torch", phase="train")
    assert "d" not in test_net.blob_names and "d" in train_net.blob_names
    params = test_net.params()
    np.testing.assert_array_equal(params["a"][0], params["b"][0])  # one blob, named "w"


def test_backward_in_place_diffs_shared_and_frozen_params():
    net = load_net(_net(), engine="torch", seed=0)
    x = np.random.default_rng(0).standard_normal((2, 3, 6, 7)).astype(np.float32)
    with pytest.raises(DynsalError, match="forward pass run with gradients"):
        net.backward({"b": np.ones((2, 3, 6, 7))})
    net.gradients = True
    net.forward(x=x)
    with pytest.raises(DynsalError, match="no loss"):
        net.backward()
    assert not net.backward({"b": np.ones((2, 3, 6, 7))})["x"].any()  # no force_backward: no input diff (Caffe)
    forced = _net()
    forced.force_backward = True
    net = load_net(forced, engine="torch", seed=0)
    net.forward(x=x)
    diffs = net.backward({"b": np.ones((2, 3, 6, 7))})
    assert diffs["x"].shape == x.shape and np.abs(diffs["x"]).sum() > 0
    pre = net._blobs.origin["a"].detach().numpy()
    post = net.blob("a")
    np.testing.assert_array_equal(post, np.maximum(pre, 0))  # data: after the in-place ReLU
    assert np.all(net.blob_diff("a")[pre <= 0] == 0)  # diff: of the convolution's output
    pdiffs = net.param_diffs()
    assert not pdiffs["a"][1].any() and pdiffs["b"][1].any()  # lr_mult 0: no gradient
    assert pdiffs["a"][0] is not pdiffs["b"][0]
    np.testing.assert_array_equal(pdiffs["a"][0], pdiffs["b"][0])  # the shared blob's diff (both uses)
    blob_diff = net.blob_diff("a")
    net.backward({"b": np.ones((2, 3, 6, 7))})  # again on the same forward, as Caffe allows
    np.testing.assert_allclose(net.param_diffs()["b"][1], 2 * pdiffs["b"][1], rtol=1e-6)  # param diffs accumulate
    np.testing.assert_array_equal(net.blob_diff("a"), blob_diff)  # blob diffs do not
    net.clear_param_diffs()
    assert not net.param_diffs()["b"][1].any()


def test_weights_load_by_name_with_shape_checks(tmp_path):
    deploy = zoo.deploy("ssnet", SMALL)
    source = load_net(deploy, engine="torch", seed=1)
    path = tmp_path / "ssnet.caffemodel"
    source.save(path)
    loaded = load_net(deploy, path, engine="torch")
    assert {k: len(v) for k, v in loaded.params().items()} == {k: len(v) for k, v in source.params().items()}
    for layer, arrays in source.params().items():
        for ours, theirs in zip(loaded.params()[layer], arrays):
            np.testing.assert_array_equal(ours, theirs)
    assert loaded.weights_report.matched[:2] == ["conv1", "conv2"]

    model = io.read_net(path)
    bad = [layer for layer in model.layer if layer.name == "conv2"][0]
    array_to_blob(np.zeros((256, 96, 3, 3), np.float32), bad.blobs[0])
    with pytest.raises(WeightsMismatchError, match=r"'conv2'.*\(256, 96, 3, 3\).*\(256, 96, 5, 5\)"):
        load_net(deploy, model, engine="torch")

    del model.layer[[layer.name for layer in model.layer].index("conv2")]
    with pytest.raises(WeightsMismatchError, match=r"does not fit net '.*': layers with learnable blobs that the "
                       r"caffemodel lacks \(1\): conv2; to start from another net's weights: `dynsal train"):
        load_net(deploy, model, engine="torch")
    partial = load_net(deploy, model, engine="torch", allow_missing=True, seed=2)
    assert partial.weights_report.missing == ["conv2"]


def test_layers_a_caffemodel_lacks_keep_their_filler_values():
    """allow_missing: as Net::Init then CopyTrainedLayersFrom, a layer the caffemodel lacks holds the fresh net's
    filler values for the same seed (not zeros); the layers it has hold its values."""
    net = _net(TWO_CONV.replace('param { name: "w" } ', ""))
    fresh = load_net(net, None, engine="torch", seed=3).params()
    given = {"b": [np.full((3, 3, 3, 3), 0.5, np.float32), np.full(3, 0.25, np.float32)]}
    model = attach_blobs(net, given)
    del model.layer[[layer.name for layer in model.layer].index("a")]
    partial = load_net(net, model, engine="torch", allow_missing=True, seed=3)
    assert partial.weights_report.missing == ["a"]
    np.testing.assert_array_equal(partial.params()["a"][0], fresh["a"][0])
    assert np.abs(fresh["a"][0]).max() > 0  # xavier
    np.testing.assert_array_equal(partial.params()["b"][0], given["b"][0])


def test_legacy_4d_inner_product_weights_load():
    net = _net("""
layer { name: "input" type: "Input" top: "x" input_param { shape { dim: 2 dim: 6 } } }
layer { name: "ip" type: "InnerProduct" bottom: "x" top: "y" inner_product_param { num_output: 4 } }
""")
    w, b = np.arange(24, dtype=np.float32).reshape(4, 6), np.arange(4, dtype=np.float32)
    model = pb.NetParameter()
    layer = model.layer.add(name="ip", type="InnerProduct")
    array_to_blob(w.reshape(1, 1, 4, 6), layer.blobs.add(), legacy=True)
    array_to_blob(b.reshape(1, 1, 1, 4), layer.blobs.add(), legacy=True)
    loaded = load_net(net, model, engine="torch")
    np.testing.assert_array_equal(loaded.params()["ip"][0], w)
    np.testing.assert_allclose(loaded.forward(x=np.ones((2, 6)))["y"], np.ones((2, 6)) @ w.T + b)


def test_corrupt_caffemodel_is_named(tmp_path):
    path = tmp_path / "broken.caffemodel"
    io.write_binary(attach_blobs(_net(), {}), path)
    path.write_bytes(path.read_bytes() + b"\xff\xff\xff")
    with pytest.raises(FormatError, match="broken.caffemodel"):
        load_net(_net(), path, engine="torch")


def test_devices_and_precisions():
    with pytest.raises(DynsalError, match="unknown precision"):
        load_net(_net(), engine="torch", precision="int8")
    with pytest.raises(DynsalError, match="device"):
        load_net(_net(), engine="torch", device="tpu")
    x = np.random.default_rng(0).standard_normal(SMALL).astype(np.float32)
    fp32 = load_net(zoo.deploy("ssnet", SMALL), engine="torch", seed=3)
    bf16 = load_net(zoo.deploy("ssnet", SMALL), engine="torch", seed=3, precision="bf16")
    a, b = fp32.forward(data1=x)["deconv1"], bf16.forward(data1=x)["deconv1"]
    assert b.dtype == np.float32 and not np.array_equal(a, b)
    assert np.corrcoef(a.ravel(), b.ravel())[0, 1] > 0.99


def test_dummy_data_constant_once_gaussian_redrawn():
    net = load_net(_net("""
layer { name: "dummy" type: "DummyData" top: "c" top: "g"
  dummy_data_param { shape { dim: 2 dim: 3 } shape { dim: 500 }
                     data_filler { type: "constant" value: 1.5 } data_filler { type: "gaussian" std: 2 } } }
"""), engine="torch")
    assert net.inputs == [] and net.outputs == ["c", "g"]
    first = net.forward()
    second = net.forward()
    np.testing.assert_array_equal(first["c"], np.full((2, 3), 1.5, np.float32))
    assert abs(first["g"].std() - 2) < 0.3 and not np.array_equal(first["g"], second["g"])
