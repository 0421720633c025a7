"""The onnx engine (`dynsal.engines.onnx`): the Net interface's forward half against the torch engine,
reshaping, weights, precisions, devices, refusals, and `.onnx` files written by `dynsal export`."""
from __future__ import annotations

import numpy as np
import onnx
import pytest
from google.protobuf import text_format

from dynsal.caffe import io
from dynsal.caffe.caffemodel import attach_blobs
from dynsal.caffe.schema import pb
from dynsal.engines import load_net
from dynsal.errors import DynsalError, ExportError, WeightsMismatchError
from dynsal.export import export
from tests.engines.test_net_interface import inputs, random_weights, small_net
from tests.export.helpers import deviations

pytest.importorskip("torch", reason="the reference here is the torch engine (pip install dynsal[torch])")


@pytest.fixture()
def files(tmp_path):
    net = small_net()
    io.write_text(net, tmp_path / "small.prototxt")
    io.write_binary(attach_blobs(net, random_weights(net)), tmp_path / "small.caffemodel")
    return tmp_path / "small.prototxt", tmp_path / "small.caffemodel"


def _blobs(net):
    return {name: net.blob(name) for name in net.blob_names}


def test_forward_and_every_blob_equal_the_torch_engine(files):
    prototxt, caffemodel = files
    onnx_net, torch_net = (load_net(prototxt, caffemodel, engine=e) for e in ("onnx", "torch"))
    assert (onnx_net.inputs, onnx_net.outputs, onnx_net.blob_names) == (
        torch_net.inputs, torch_net.outputs, torch_net.blob_names)
    out = onnx_net.forward(**inputs())
    assert set(out) == {"loss"} and np.shape(out["loss"]) == ()
    torch_net.forward(**inputs())
    assert deviations(_blobs(onnx_net), _blobs(torch_net)) == []
    assert (onnx_net.blob("conv1") >= 0).all()  # the in-place ReLU's value, as Caffe's blob holds it
    for layer, arrays in torch_net.params().items():
        for got, want in zip(onnx_net.params()[layer], arrays):
            np.testing.assert_array_equal(got, want)


def test_new_input_shapes(files):
    """Other input shapes (multiples of 4: the label must match the upsampled output) run in the one
    dynamic export; a net that cannot be dynamic is exported again at each new shape."""
    prototxt, caffemodel = files
    onnx_net, torch_net = (load_net(prototxt, caffemodel, engine=e) for e in ("onnx", "torch"))
    assert onnx_net.dynamic
    onnx_net.forward(**inputs())
    session = onnx_net._session
    shapes = onnx_net.reshape(x=(1, 3, 8, 12), label=(1, 1, 8, 12))
    assert shapes["pool1"] == (1, 4, 4, 6)
    feed = inputs(seed=2, shape=(3, 3, 16, 20))
    onnx_net.forward(**feed)
    torch_net.forward(**feed)
    assert onnx_net._session is session and onnx_net.blob("deconv1").shape == (3, 1, 16, 20)
    assert deviations(_blobs(onnx_net), _blobs(torch_net)) == []
    with pytest.raises(DynsalError, match="not inputs of net 'small': y"):
        onnx_net.reshape(y=(1,))
    fixed_net = text_format.Parse('layer { name: "in" type: "Input" top: "x" input_param { shape { dim: 1 dim: 2 '
                                  'dim: 3 dim: 3 } } }\nlayer { name: "ip" type: "InnerProduct" bottom: "x" '
                                  'top: "y" inner_product_param { num_output: 2 weight_filler { type: "xavier" } } }',
                                  pb.NetParameter())
    onnx_net, torch_net = (load_net(fixed_net, None, engine=e, seed=1) for e in ("onnx", "torch"))
    assert not onnx_net.dynamic
    for batch in (1, 4):
        x = np.random.default_rng(batch).standard_normal((batch, 2, 3, 3)).astype(np.float32)
        np.testing.assert_allclose(onnx_net.forward(x=x)["y"], torch_net.forward(x=x)["y"], rtol=1e-5, atol=1e-6)


def test_set_params_and_fresh_weights(files):
    prototxt, caffemodel = files
    net = load_net(prototxt, caffemodel, engine="onnx")
    before = net.forward(**inputs())["loss"]
    params = net.params()
    params["conv1"][0] = params["conv1"][0] * 2
    net.set_params({"conv1": params["conv1"]})
    assert net.forward(**inputs())["loss"] != before
    np.testing.assert_array_equal(net.params()["conv1"][0], params["conv1"][0])
    with pytest.raises(WeightsMismatchError, match="layer 'conv1' blob 0: given"):
        net.set_params({"conv1": [np.zeros((1, 1)), params["conv1"][1]]})
    fresh_onnx, fresh_torch = (load_net(prototxt, None, engine=e, seed=8) for e in ("onnx", "torch"))
    fresh_onnx.forward(**inputs())
    fresh_torch.forward(**inputs())
    assert deviations(_blobs(fresh_onnx), _blobs(fresh_torch)) == []


def test_training_and_unsupported_options_are_refused(files):
    prototxt, caffemodel = files
    net = load_net(prototxt, caffemodel, engine="onnx")
    with pytest.raises(DynsalError, match="no blobs yet"):
        net.blob("conv1")
    net.forward(**inputs())
    for call in (net.backward, lambda: net.blob_diff("conv1"), net.param_diffs, net.clear_param_diffs):
        with pytest.raises(DynsalError, match="forward only; use engine='torch'"):
            call()
    with pytest.raises(DynsalError, match="runs the TEST phase"):
        load_net(prototxt, caffemodel, engine="onnx", phase="train")
    with pytest.raises(DynsalError, match="runs fp32 or fp16, not 'bf16'"):
        load_net(prototxt, caffemodel, engine="onnx", precision="bf16")
    with pytest.raises(DynsalError, match="unknown device 'gpu'"):
        load_net(prototxt, caffemodel, engine="onnx", device="gpu")
    import onnxruntime

    if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
        with pytest.raises(DynsalError, match="has no CUDA or TensorRT provider.*onnxruntime-gpu"):
            load_net(prototxt, caffemodel, engine="onnx", device="cuda")
    data_net = text_format.Parse('layer { name: "d" type: "Data" top: "x" data_param { source: "db" batch_size: 1 } }',
                                 pb.NetParameter())
    with pytest.raises(ExportError, match="layer 'd' \\(Data\\) reads its batches from files"):
        load_net(data_net, None, engine="onnx")


def test_fp16_runs_close_to_fp32(files):
    prototxt, caffemodel = files
    fp32, fp16 = (load_net(prototxt, caffemodel, engine="onnx", precision=p) for p in ("fp32", "fp16"))
    a, b = fp32.forward(**inputs())["loss"], fp16.forward(**inputs())["loss"]
    assert fp16.blob("deconv1").dtype == np.float32
    assert abs(b - a) <= 1e-2 * abs(a)


def test_exported_files_run_with_their_net(files, tmp_path):
    """An .onnx file of `dynsal export` as the weights (engine onnx or auto): its outputs equal the
    in-memory export's; other blobs, other shapes (fixed exports), other precisions, other nets and
    files dynsal did not write are refused with what to do."""
    prototxt, caffemodel = files
    fixed, dynamic = tmp_path / "fixed.onnx", tmp_path / "dynamic.onnx"
    export(prototxt, caffemodel, fixed)
    export(prototxt, caffemodel, dynamic, dynamic=True)
    reference = load_net(prototxt, caffemodel, engine="onnx")
    expected = reference.forward(**inputs())["loss"]
    net = load_net(prototxt, fixed)
    assert type(net).__name__ == "OnnxFileNet" and net.forward(**inputs())["loss"] == pytest.approx(expected, 1e-6)
    with pytest.raises(DynsalError, match="blob 'conv1' is not an output of this ONNX model"):
        net.blob("conv1")
    with pytest.raises(DynsalError, match="exported for x of shape \\(2, 3, 12, 16\\), not \\(1, 3, 8, 12\\): "
                                          "export it with --dynamic"):
        net.forward(**inputs(shape=(1, 3, 8, 12)))
    with pytest.raises(DynsalError, match="exported in fp32: run it with precision 'fp32'"):
        load_net(prototxt, fixed, precision="fp16")
    with pytest.raises(DynsalError, match="runs on engine 'onnx' only, not 'torch'"):
        load_net(prototxt, fixed, engine="torch")
    other = load_net(prototxt, dynamic, engine="onnx")
    feed = inputs(seed=4, shape=(1, 3, 8, 12))
    reference.forward(**feed)
    assert other.forward(**feed)["loss"] == pytest.approx(reference.blob("loss"), 1e-6)
    renamed = small_net()
    renamed.layer[0].top[0] = "image"
    renamed.layer[1].bottom[0] = "image"
    with pytest.raises(DynsalError, match="has inputs \\['x', 'label'\\] .* has inputs \\['image', 'label'\\]"):
        load_net(renamed, fixed)
    foreign = tmp_path / "foreign.onnx"
    model = onnx.load(str(fixed))
    del model.metadata_props[:]
    onnx.save(model, str(foreign))
    with pytest.raises(DynsalError, match="foreign.onnx: not an ONNX file written by `dynsal export`"):
        load_net(prototxt, foreign)
    (tmp_path / "broken.onnx").write_bytes(b"not a model")
    with pytest.raises(DynsalError, match="broken.onnx: onnxruntime cannot load it"):
        load_net(prototxt, tmp_path / "broken.onnx")
    with pytest.raises(DynsalError, match="missing.onnx: ONNX file not found"):
        load_net(prototxt, tmp_path / "missing.onnx")


def test_gpu_devices_use_tensorrt_and_cuda_where_installed(monkeypatch):
    """cuda:<i> asks for TensorRT and CUDA (those this onnxruntime has) on GPU i, then the CPU for the rest."""
    import onnxruntime

    from dynsal.engines.onnx import execution_providers

    monkeypatch.setattr(onnxruntime, "get_available_providers",
                        lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"])
    assert execution_providers("cuda:1") == [("CUDAExecutionProvider", {"device_id": 1}), "CPUExecutionProvider"]
    monkeypatch.setattr(onnxruntime, "get_available_providers",
                        lambda: ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"])
    assert [p[0] for p in execution_providers("cuda")[:2]] == ["TensorrtExecutionProvider", "CUDAExecutionProvider"]
    assert execution_providers("cpu") == ["CPUExecutionProvider"]
