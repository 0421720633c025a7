"""dynsal.export against the torch engine (itself held to real Caffe by tests/engines/test_oracle_parity.py;
tests/export/test_export_oracle.py holds the exports to Caffe directly): every blob of the every-layer
net and of a dynamic-shape net at sizes the export never saw, in onnxruntime and as TorchScript; Caffe's
pooling size rule computed in the graph; names, refusals, opsets, fp16, the file API."""
from __future__ import annotations

import itertools
import math
import subprocess
import sys

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from google.protobuf import text_format

from dynsal.caffe.caffemodel import attach_blobs
from dynsal.caffe.graph import build_graph
from dynsal.caffe.pooling import pooled_size
from dynsal.caffe.schema import pb
from dynsal.engines import load_net
from dynsal.errors import DynsalError, ExportError, WeightsMismatchError
from dynsal.export import export, max_opset, onnx_export
from dynsal.export.builder import GraphBuilder
from dynsal.export.registry import DATA_LAYERS, exportable_types
from dynsal.export.torchscript import to_torchscript
from tests.engines.nets import every_layer_inputs, every_layer_net
from tests.engines.parity import random_weights
from tests.export.helpers import deviations, every_blob, run_onnxruntime, run_torchscript, saved_and_loaded
from tests.export.nets import SIZES, dynamic_layers_inputs, dynamic_layers_net

torch = pytest.importorskip("torch", reason="the reference here is the torch engine (pip install dynsal[torch])")


def _reference(net_param, model, feed):
    """{blob: value} of the torch engine after forward on `feed`."""
    net = load_net(net_param, model, engine="torch")
    net.forward(**feed)
    return {blob: net.blob(blob) for blob in net.blob_names}


@pytest.fixture(scope="module")
def every_layer():
    net = every_layer_net()
    model = attach_blobs(net, random_weights(net, seed=7))
    feed = {k: v.astype(np.float32) for k, v in every_layer_inputs(3).items()}
    return net, model, feed, _reference(net, model, feed)


@pytest.fixture(scope="module")
def dynamic_export():
    net = dynamic_layers_net()
    model = attach_blobs(net, random_weights(net, seed=3))
    exported = onnx_export(net, model, dynamic=True, outputs=every_blob(net))
    return net, model, exported


def test_every_layer_exports_with_the_engines_values(every_layer):
    """Every blob of the every-layer net (in-place, split, mask tops, losses) in ONNX and TorchScript."""
    net, model, feed, reference = every_layer
    exported = onnx_export(net, model, outputs=every_blob(net))
    assert deviations(run_onnxruntime(exported, feed), reference) == []
    module = saved_and_loaded(to_torchscript(exported.model))
    assert deviations(run_torchscript(module, exported, feed), reference) == []


@pytest.mark.parametrize("batch,hw", [(2, SIZES[0]), (1, SIZES[1]), (3, SIZES[2]), (2, SIZES[3])],
                         ids=[f"{b}x{h}x{w}" for b, (h, w) in zip((2, 1, 3, 2), SIZES)])
def test_dynamic_export_keeps_caffes_size_rules(dynamic_export, batch, hw):
    """One dynamic export, run at batch sizes and spatial sizes it was not exported at: every blob
    equals the torch engine's, run at that size (pooling clips, AVE pool sizes, crops, reshapes)."""
    net, model, exported = dynamic_export
    feed = dynamic_layers_inputs(5, batch, hw)
    reference = _reference(net, model, feed)
    assert deviations(run_onnxruntime(exported, feed), reference) == []
    module = to_torchscript(exported.model)
    assert deviations(run_torchscript(module, exported, feed), reference) == []


def test_dynamic_inputs_are_named_axes():
    """Free axes are N, H, W, shared by inputs of equal declared size, suffixed by the input otherwise."""
    text = """
    layer { name: "in" type: "Input" top: "a" top: "b" top: "c" top: "v"
      input_param { shape { dim: 1 dim: 3 dim: 8 dim: 8 } shape { dim: 1 dim: 2 dim: 8 dim: 8 }
                    shape { dim: 1 dim: 1 dim: 6 dim: 8 } shape { dim: 1 dim: 4 } } }
    layer { name: "cat" type: "Concat" bottom: "a" bottom: "b" top: "cat" }
    """
    exported = onnx_export(text_format.Parse(text, pb.NetParameter()), None, dynamic=True)
    dims = {v.name: [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]
            for v in exported.model.graph.input}
    assert dims == {"a": ["N", 3, "H", "W"], "b": ["N", 2, "H", "W"], "c": ["N", 1, "H_c", "W"], "v": ["N", 4]}


def caffe_pooled_size(size: int, kernel: int, stride: int, pad: int, ceil: bool, clip: bool) -> int:
    """PoolingLayer::Reshape as Caffe writes it: float32 division, ceil or floor, + 1, then the clip."""
    rounding = math.ceil if ceil else math.floor
    out = int(rounding(float(np.float32(size + 2 * pad - kernel) / np.float32(stride)))) + 1
    return out - 1 if clip and (out - 1) * stride >= size + pad else out


def test_pooled_size_computed_in_the_graph_is_caffes():
    """dynsal.caffe.pooling.pooled_size, on an int and on a size read from the graph, equals Caffe's formula
    for every size 1..40 and geometry (the integer arithmetic is not frozen at the export's size), with the
    clip of the last window both from this axis's pad and from the other axis's alone (Caffe: pad_h || pad_w)."""
    cases = [(k, s, p, ceil, clip) for k, s, p, ceil, clip
             in itertools.product((1, 2, 3, 5), (1, 2, 3), (0, 1, 2), (True, False), (True, False))
             if p < k and (clip or not p)]
    builder = GraphBuilder(opset=17)
    size = builder.shape_dim("x", 2, 0, dynamic=True)
    outputs = [builder.op("Identity", [pooled_size(size, *case).tensor()], out=f"case{i}")
               for i, case in enumerate(cases)]
    graph = onnx.helper.make_graph(builder.nodes, "sizes", [onnx.helper.make_tensor_value_info(
        "x", onnx.TensorProto.FLOAT, [1, 1, "H", 1])], [onnx.helper.make_tensor_value_info(
            name, onnx.TensorProto.INT64, [1]) for name in outputs], builder.initializers)
    model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 17)])
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    for height in range(1, 41):
        got = session.run(None, {"x": np.zeros((1, 1, height, 1), np.float32)})
        for (kernel, stride, pad, ceil, clip), value in zip(cases, got):
            if height + 2 * pad >= kernel:
                expected = caffe_pooled_size(height, kernel, stride, pad, ceil, clip)
                assert int(value[0]) == expected, (height, kernel, stride, pad, ceil, clip)
                assert pooled_size(height, kernel, stride, pad, ceil, clip) == expected


def test_blob_names_with_slashes_and_an_input_changed_in_place():
    """Blob names may contain '/', like the names of earlier in-place versions (`<blob>/<layer>`): a blob
    keeps its own name; an input modified in place is returned as `<input>/out` (its name is the input's)."""
    text = """
    layer { name: "in" type: "Input" top: "x" input_param { shape { dim: 1 dim: 2 dim: 4 dim: 4 } } }
    layer { name: "relu" type: "ReLU" bottom: "x" top: "x" }
    layer { name: "c" type: "Convolution" bottom: "x" top: "c/c" convolution_param { num_output: 2 kernel_size: 1
      weight_filler { type: "xavier" } } }
    layer { name: "c" type: "ReLU" bottom: "c/c" top: "c/c" }
    layer { name: "d" type: "Convolution" bottom: "x" top: "c" convolution_param { num_output: 2 kernel_size: 1
      weight_filler { type: "xavier" } } }
    """
    net = text_format.Parse(text.replace('name: "c" type: "ReLU"', 'name: "c2" type: "ReLU"'), pb.NetParameter())
    feed = {"x": np.random.default_rng(0).standard_normal((1, 2, 4, 4)).astype(np.float32)}
    filled = attach_blobs(net, load_net(net, None, engine="torch", seed=1).params())
    for precision in ("fp32", "fp16"):
        exported = onnx_export(net, filled, outputs=["x", "c/c", "c"], precision=precision)
        assert exported.outputs == {"x": "x/out", "c/c": "c/c", "c": "c"}
        got = run_onnxruntime(exported, feed)
        if precision == "fp32":
            assert deviations(got, _reference(net, filled, feed)) == []
        assert (got["x"] >= 0).all()


def test_every_engine_layer_type_exports_or_is_refused_by_name():
    """Registry-driven: each layer type the torch engine runs has an ONNX lowering, or is a data layer
    (refused with what to do)."""
    from dynsal.engines.torch import supported_types

    missing = [t for t in supported_types() if t not in exportable_types() and t not in DATA_LAYERS]
    assert missing == []


def test_softmax_with_loss_probability_top():
    """SoftmaxWithLoss's optional second top (the probabilities, loss weight 0), VALID normalisation
    without an ignore label, over axis 2."""
    text = """
    layer { name: "in" type: "Input" top: "x" top: "label" input_param { shape { dim: 2 dim: 3 dim: 4 dim: 5 }
                                                                        shape { dim: 2 dim: 3 dim: 1 dim: 5 } } }
    layer { name: "smx" type: "SoftmaxWithLoss" bottom: "x" bottom: "label" top: "loss" top: "prob"
      loss_weight: 1 loss_weight: 0 softmax_param { axis: 2 } }
    """
    net = text_format.Parse(text, pb.NetParameter())
    rng = np.random.default_rng(3)
    feed = {"x": rng.standard_normal((2, 3, 4, 5)).astype(np.float32),
            "label": rng.integers(0, 4, (2, 3, 1, 5)).astype(np.float32)}
    exported = onnx_export(net, None, outputs=["loss", "prob"], dynamic=True)
    assert deviations(run_onnxruntime(exported, feed), _reference(net, None, feed)) == []


def test_names_follow_the_prototxt(every_layer):
    """Inputs and outputs carry the prototxt's names; the last version of an in-place blob its own
    name, earlier versions <blob>/<layer>; the model records the net, precision and names."""
    net, model, _, _ = every_layer
    exported = onnx_export(net, model)
    graph = exported.model.graph
    assert [v.name for v in graph.input] == ["data", "target1", "target2", "label", "label2"]
    assert sorted(v.name for v in graph.output) == build_graph(net).outputs == list(exported.outputs)
    producers = {out: node.op_type for node in graph.node for out in node.output}
    assert producers["conv_g"] == "LeakyRelu" and producers["conv_g/conv_g"] == "Conv"
    meta = {p.key: p.value for p in exported.model.metadata_props}
    assert meta["dynsal.net"] == "every_layer" and meta["dynsal.precision"] == "fp32"


REFUSED = {
    "data layer": ('layer { name: "data" type: "Data" top: "data" data_param { source: "x" batch_size: 1 } }',
                   "layer 'data' (Data) reads its batches from files"),
    "unknown type": ('layer { name: "in" type: "Input" top: "x" input_param { shape { dim: 1 dim: 2 } } }\n'
                     'layer { name: "acc" type: "BNLL" bottom: "x" top: "y" }',
                     "layer 'acc': layer type 'BNLL' cannot be exported"),
    "stochastic pooling": ('layer { name: "in" type: "Input" top: "x" input_param { shape { dim: 1 dim: 1 dim: 4 '
                           'dim: 4 } } }\nlayer { name: "p" type: "Pooling" bottom: "x" top: "y" pooling_param { '
                           'pool: STOCHASTIC kernel_size: 2 } }', "layer 'p' (Pooling): STOCHASTIC pooling"),
    "random dummy data": ('layer { name: "d" type: "DummyData" top: "x" dummy_data_param { shape { dim: 1 } '
                          'data_filler { type: "gaussian" } } }', "layer 'd' (DummyData): its gaussian filler"),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_layers_that_cannot_be_expressed_are_refused_by_name(case):
    text, message = REFUSED[case]
    with pytest.raises(ExportError, match=message.replace("(", r"\(").replace(")", r"\)")):
        onnx_export(text_format.Parse(text, pb.NetParameter()), None, seed=0)


def test_refusals_of_options(every_layer):
    net, model, _, _ = every_layer
    with pytest.raises(ExportError, match="--dynamic: the net does not take other input sizes \\(layer 'reshape'"):
        onnx_export(net, model, dynamic=True)
    with pytest.raises(ExportError, match="layer 'pool_max' \\(Pooling\\): its mask top .* fp16"):
        onnx_export(net, model, precision="fp16")
    with pytest.raises(DynsalError, match="opset 12 is not supported"):
        onnx_export(net, model, opset=12)
    with pytest.raises(DynsalError, match="not inputs of net 'every_layer': nope"):
        onnx_export(net, model, input_shapes={"nope": (1,)})
    ip_only = text_format.Parse('layer { name: "in" type: "Input" top: "x" input_param { shape { dim: 1 dim: 2 '
                                'dim: 3 dim: 3 } } }\nlayer { name: "ip" type: "InnerProduct" bottom: "x" top: "y" '
                                'inner_product_param { num_output: 2 } }', pb.NetParameter())
    with pytest.raises(ExportError, match="--dynamic: layer 'ip' has learnable blobs whose shapes follow"):
        onnx_export(ip_only, None, dynamic=True, seed=0)


@pytest.mark.parametrize("opset", sorted({13, 15, 18, max_opset()}))
def test_every_supported_opset_computes_the_same(dynamic_export, opset):
    """The opset-dependent forms (Shape start/end, Reduce* axes) give the same values."""
    net, model, reference_export = dynamic_export
    exported = onnx_export(net, model, dynamic=True, opset=opset, outputs=every_blob(net))
    assert exported.model.opset_import[0].version == opset
    feed = dynamic_layers_inputs(6, 2, SIZES[1])
    assert deviations(run_onnxruntime(exported, feed), run_onnxruntime(reference_export, feed)) == []


FP16_NET = """
layer { name: "in" type: "Input" top: "x" input_param { shape { dim: 2 dim: 3 dim: 20 dim: 24 } } }
layer { name: "conv1" type: "Convolution" bottom: "x" top: "conv1" convolution_param { num_output: 16 kernel_size: 5
  pad: 2 } }
layer { name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1" }
layer { name: "norm1" type: "LRN" bottom: "conv1" top: "norm1" lrn_param { local_size: 5 alpha: 0.0001 beta: 0.75 } }
layer { name: "pool1" type: "Pooling" bottom: "norm1" top: "pool1"
  pooling_param { pool: MAX kernel_size: 3 stride: 2 } }
layer { name: "conv2" type: "Convolution" bottom: "pool1" top: "conv2" convolution_param { num_output: 8 kernel_size: 3
  pad: 1 } }
layer { name: "pool2" type: "Pooling" bottom: "conv2" top: "pool2" pooling_param { pool: AVE kernel_size: 3 stride: 2
  pad: 1 } }
layer { name: "bn" type: "BatchNorm" bottom: "pool2" top: "pool2" }
layer { name: "deconv" type: "Deconvolution" bottom: "pool2" top: "deconv" convolution_param { num_output: 1
  kernel_size: 8 stride: 4 pad: 2 } }
"""


def test_fp16_export_keeps_float32_io_and_stays_close():
    """fp16 weights and arithmetic, float32 inputs and outputs; the output within 1e-2·max of fp32's."""
    net = text_format.Parse(FP16_NET, pb.NetParameter())
    model = attach_blobs(net, random_weights(net, seed=2))
    feed = {"x": np.random.default_rng(1).standard_normal((2, 3, 20, 24)).astype(np.float32)}
    fp32 = run_onnxruntime(onnx_export(net, model), feed)["deconv"]
    exported = onnx_export(net, model, precision="fp16")
    assert exported.model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert {i.data_type for i in exported.model.graph.initializer if len(i.dims) == 4} == {onnx.TensorProto.FLOAT16}
    for got in (run_onnxruntime(exported, feed)["deconv"],
                run_torchscript(to_torchscript(exported.model), exported, feed)["deconv"]):
        assert got.dtype == np.float32
        assert np.abs(got - fp32).max() <= 1e-2 * np.abs(fp32).max()


def test_fresh_and_shared_weights_are_the_engines():
    """Without a caffemodel the torch engine's fillers (same seed, same values); a shared param holds the
    values of the last layer sharing it, as Caffe's CopyTrainedLayersFrom leaves it."""
    text = """
    layer { name: "in" type: "Input" top: "x" input_param { shape { dim: 1 dim: 2 dim: 5 dim: 5 } } }
    layer { name: "a" type: "Convolution" bottom: "x" top: "a" param { name: "w" } param { name: "b" }
      convolution_param { num_output: 2 kernel_size: 3 pad: 1 weight_filler { type: "gaussian" std: 0.5 }
                          bias_filler { type: "uniform" } } }
    layer { name: "b" type: "Convolution" bottom: "a" top: "b" param { name: "w" } param { name: "b" }
      convolution_param { num_output: 2 kernel_size: 3 pad: 1 } }
    """
    net = text_format.Parse(text, pb.NetParameter())
    feed = {"x": np.random.default_rng(0).standard_normal((1, 2, 5, 5)).astype(np.float32)}
    filled = attach_blobs(net, load_net(net, None, engine="torch", seed=4).params())
    assert deviations(run_onnxruntime(onnx_export(net, None, seed=4), feed), _reference(net, filled, feed)) == []
    rng = np.random.default_rng(5)
    weights = {name: [rng.standard_normal((2, 2, 3, 3)).astype(np.float32), rng.standard_normal(2).astype(np.float32)]
               for name in ("a", "b")}
    model = attach_blobs(net, weights)
    assert deviations(run_onnxruntime(onnx_export(net, model), feed), _reference(net, model, feed)) == []


def test_fresh_blobs_need_no_torch_and_partial_weights_are_the_engines():
    """The exporter's fresh blobs come from `dynsal.caffe.fillers` (no torch imported), equal to the torch
    engine's for the same seed, also for the layers a caffemodel lacks (allow_missing)."""
    code = ("import sys; from dynsal.caffe.graph import build_graph; from dynsal.caffe.shapes import infer_shapes; "
            "from dynsal import zoo; from dynsal.export.net_blobs import net_blobs; "
            "g = build_graph(zoo.deploy('ssnet', (1, 3, 64, 64)), phase='TEST'); "
            "b = net_blobs(g, infer_shapes(g)[1], seed=1); print(len(b), 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split()[1] == "False" and int(out.split()[0]) > 0
    net = text_format.Parse("""
    layer { name: "in" type: "Input" top: "x" input_param { shape { dim: 1 dim: 2 dim: 5 dim: 5 } } }
    layer { name: "a" type: "Convolution" bottom: "x" top: "a"
      convolution_param { num_output: 2 kernel_size: 3 pad: 1 weight_filler { type: "gaussian" std: 0.5 } } }
    layer { name: "b" type: "Convolution" bottom: "a" top: "b"
      convolution_param { num_output: 2 kernel_size: 3 pad: 1 weight_filler { type: "xavier" } } }
    """, pb.NetParameter())
    feed = {"x": np.random.default_rng(0).standard_normal((1, 2, 5, 5)).astype(np.float32)}
    model = attach_blobs(net, {"b": [np.full((2, 2, 3, 3), 0.5, np.float32), np.ones(2, np.float32)]})
    del model.layer[1]  # "a"
    engine = load_net(net, model, engine="torch", allow_missing=True, seed=7)
    assert np.abs(engine.params()["a"][0]).max() > 0
    filled = attach_blobs(net, engine.params())
    exported = onnx_export(net, model, allow_missing=True, seed=7)
    assert deviations(run_onnxruntime(exported, feed), _reference(net, filled, feed)) == []


def test_weights_that_do_not_fit_are_refused(every_layer):
    net, model, _, _ = every_layer
    broken = pb.NetParameter()
    broken.CopyFrom(model)
    del broken.layer[1].blobs[:]
    with pytest.raises(WeightsMismatchError, match="layer 'conv_g'"):
        onnx_export(net, broken)


def test_export_writes_onnx_and_torchscript_files(tmp_path, every_layer):
    """export(): .onnx and .pt written whole (no temporary files left), an existing file replaced only
    with overwrite, other suffixes refused; the files load in onnxruntime and torch.jit."""
    net, model, feed, reference = every_layer
    result = export(net, model, tmp_path / "net.onnx")
    assert result.format == "onnx" and result.inputs["data"] == [2, 4, 11, 13]
    assert "  output smx2: " in "\n".join(result.lines())
    session = ort.InferenceSession(str(tmp_path / "net.onnx"), providers=["CPUExecutionProvider"])
    values = dict(zip([o.name for o in session.get_outputs()], session.run(None, feed)))
    assert deviations(values, reference) == []
    result = export(net, model, tmp_path / "net.pt")
    out = torch.jit.load(str(tmp_path / "net.pt"))(**{k: torch.from_numpy(v) for k, v in feed.items()})
    assert deviations({k: v.numpy() for k, v in out.items()}, reference) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["net.onnx", "net.pt"]
    with pytest.raises(DynsalError, match="net.onnx exists; pass overwrite=True"):
        export(net, model, tmp_path / "net.onnx")
    export(net, model, tmp_path / "net.onnx", overwrite=True, precision="fp32")
    with pytest.raises(DynsalError, match="unknown export format"):
        export(net, model, tmp_path / "net.tflite")
