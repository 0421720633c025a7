"""A constructed Caffe net (TEST phase) as an ONNX model, layer by layer through the lowerings.

Names: the graph's inputs are the net's input blobs, its outputs Caffe's net outputs (blobs no layer
consumes, alphabetically), both named as in the prototxt and float32 whatever the precision. Inside,
every Caffe blob is the ONNX value of its name after the last layer writing it (in-place chains and
implicit Split tops included); earlier versions of an in-place blob are `<blob>/<layer>`. An fp16
export casts the inputs to float16, computes with float16 weights and casts the outputs back.

Shapes: fixed at the input shapes given (default: the prototxt's); with `dynamic`, the batch axis and
every axis after the channel axis of each input are free (named N, H, W, ... and shared by inputs of
equal declared size), and the lowerings compute Caffe's size rules in the graph (see
`dynsal.export.shapes` and `dynsal.export.builder`).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Dict, List, Sequence

import onnx
from google.protobuf import text_format
from onnx import TensorProto, helper

import dynsal.export.layers  # noqa: F401  (registers the lowerings)
from dynsal import __version__
from dynsal.errors import DynsalError, ExportError
from dynsal.export.builder import FLOAT_TYPES, GraphBuilder
from dynsal.export.registry import LOWERINGS, LayerExport, check_graph
from dynsal.export.shapes import ExportShapes

MIN_OPSET = 13  # Softmax along one axis, Unsqueeze/Squeeze/ReduceSum axes as inputs
DEFAULT_OPSET = 17
PRECISIONS = tuple(FLOAT_TYPES)
MAX_PROTO_BYTES = 2 ** 31 - 1  # protobuf's limit on one message
_SYMBOLS = {3: {2: "L"}, 4: {2: "H", 3: "W"}, 5: {2: "D", 3: "H", 4: "W"}}


#: the metadata key of the net definition a file export records (prototxt text), read by `dynsal predict`
NET_DEFINITION_KEY = "dynsal.prototxt"


def max_opset() -> int:
    """The newest default-domain opset the installed onnx package knows."""
    return onnx.defs.onnx_opset_version()


def check_options(opset: int, precision: str) -> None:
    """Raises DynsalError for an opset outside [13, newest known] or an unknown precision."""
    if not MIN_OPSET <= opset <= max_opset():
        raise DynsalError(f"opset {opset} is not supported: choose {MIN_OPSET} to {max_opset()} (onnx "
                          f"{onnx.__version__}; default {DEFAULT_OPSET})")
    if precision not in PRECISIONS:
        raise DynsalError(f"unknown export precision {precision!r}; choose one of: {', '.join(PRECISIONS)}")


@dataclass
class OnnxExport:
    """An exported model and the ONNX value holding each Caffe blob it returns."""

    model: onnx.ModelProto
    outputs: Dict[str, str]  # Caffe blob -> graph output name (the blob's own name where it is free)


def _input_dims(graph, shapes: ExportShapes) -> Dict[str, List]:
    """Per input: its dims, an int per fixed axis and a symbol per free one (equal declared sizes
    share a symbol; an input whose size differs from an earlier one's gets `<symbol>_<input>`)."""
    declared: Dict[str, int] = {}
    dims = {}
    for name in graph.inputs:
        shape, free = shapes.blobs[name], shapes.dynamic[name]
        row = []
        for axis, (size, is_free) in enumerate(zip(shape, free)):
            if not is_free:
                row.append(size)
                continue
            symbol = "N" if axis == 0 else _SYMBOLS.get(len(shape), {}).get(axis, f"d{axis}")
            if declared.setdefault(symbol, size) != size:
                symbol = f"{symbol}_{name}"
            row.append(symbol)
        dims[name] = row
    return dims


class _Values:
    """The current ONNX value of each Caffe blob while the layers are lowered. Every blob name is reserved
    up front, so no intermediate value takes a name a Caffe blob has (blob names may contain '/')."""

    def __init__(self, builder: GraphBuilder, graph, fp16: bool):
        self.builder, self.fp16, self.inputs = builder, fp16, set(graph.inputs)
        self.last_writer: Dict[str, str] = {}
        for layer in graph.layers:
            for top in layer.param.top:
                self.last_writer[top] = layer.name
        for blob in graph.blobs:
            builder.reserve(blob)
        self.current: Dict[str, str] = {}

    def top_name(self, blob: str, layer: str) -> str:
        """The value name of a layer's top: the blob's own name for its last version (fp32, not an input's
        name), else `<blob>/<layer>`."""
        if self.last_writer[blob] == layer and not self.fp16 and blob not in self.inputs:
            return blob
        return self.builder.fresh(f"{blob}/{layer}")

    def output_name(self, blob: str) -> str:
        """The graph output name of a blob whose value is not already named after it: its name, or
        `<blob>/out` where an input holds it."""
        return self.builder.fresh(f"{blob}/out") if blob in self.inputs else blob


def _lower(builder: GraphBuilder, graph, shapes: ExportShapes, blobs, values: _Values) -> List:
    """Lower every layer; returns the graph inputs."""
    inputs = []
    input_dims = _input_dims(graph, shapes)
    for glayer in graph.layers:
        layer = glayer.param
        if layer.type == "Input":
            for top in layer.top:
                inputs.append(helper.make_tensor_value_info(top, TensorProto.FLOAT, input_dims[top]))
                values.current[top] = top if not values.fp16 else builder.op(
                    "Cast", [top], out=values.top_name(top, layer.name), to=TensorProto.FLOAT16)
            continue
        tops = [values.top_name(top, layer.name) for top in layer.top]
        ctx = LayerExport(param=layer, builder=builder, bottoms=[values.current[b] for b in layer.bottom],
                          shapes=[shapes.blobs[b] for b in layer.bottom],
                          dynamic=[shapes.dynamic[b] for b in layer.bottom], tops=tops,
                          top_shapes=[shapes.blobs[t] for t in layer.top], blobs=blobs.get(layer.name, []))
        LOWERINGS[layer.type](ctx)
        produced = {out for node in builder.nodes for out in node.output}
        missing = [t for t in tops if t not in produced]
        if missing:
            raise ExportError(f"layer {layer.name!r} ({layer.type}): its lowering did not produce {missing}")
        values.current.update(zip(layer.top, tops))
    return inputs


def _graph_outputs(builder: GraphBuilder, values: _Values, blobs: Sequence[str]) -> Dict[str, str]:
    """Graph outputs for `blobs`: the blob's value itself, or a float32 Cast / Identity of it named after
    the blob (`<blob>/out` where an input holds the name)."""
    names = {}
    for blob in blobs:
        value = values.current[blob]
        if value == blob and blob not in values.inputs:
            names[blob] = blob
            continue
        target = values.output_name(blob)
        if values.fp16:
            builder.op("Cast", [value], out=target, to=TensorProto.FLOAT)
        else:
            builder.op("Identity", [value], out=target)
        names[blob] = target
    return names


def _prune(builder: GraphBuilder, outputs: Sequence[str]) -> None:
    """Drop the nodes and initializers no requested output depends on (layers feeding other blobs only)."""
    needed, kept = set(outputs), []
    for node in reversed(builder.nodes):
        if needed.intersection(node.output):
            kept.append(node)
            needed.update(name for name in node.input if name)
    builder.nodes = kept[::-1]
    builder.initializers = [init for init in builder.initializers if init.name in needed]


def record_net_definition(model: onnx.ModelProto, net_param) -> None:
    """Add the net definition (`pb.NetParameter`, as prototxt text) to the model's metadata, so that the
    file alone says which net it runs (`dynsal.engines.onnx.OnnxFileNet`); learnable blobs are left out."""
    definition = type(net_param)()
    definition.CopyFrom(net_param)
    for layer in definition.layer:
        layer.ClearField("blobs")
    props = {p.key: p.value for p in model.metadata_props}
    props[NET_DEFINITION_KEY] = text_format.MessageToString(definition)
    helper.set_model_props(model, props)


def description(model: onnx.ModelProto) -> Dict[str, str]:
    """The `dynsal.*` metadata of an export (net, precision, dynamic, inputs, outputs, net definition)."""
    return {p.key: p.value for p in model.metadata_props if p.key.startswith("dynsal.")}


def build_model(graph, shapes: ExportShapes, blobs, opset: int = DEFAULT_OPSET, precision: str = "fp32",
                outputs: Sequence[str] | None = None) -> OnnxExport:
    """The ONNX model of a constructed net.

    Args:
        graph: `dynsal.caffe.graph.build_graph(net, "TEST")`.
        shapes: `dynsal.export.shapes.export_shapes` of it.
        blobs: {layer name: [array, ...]} learnable blobs (`dynsal.export.net_blobs.net_blobs`).
        opset: default-domain opset, 13 to the newest the onnx package knows.
        precision: "fp32" or "fp16" (computation and weights; inputs and outputs stay float32).
        outputs: the blobs the graph returns (default: Caffe's net outputs).

    Raises:
        ExportError: a layer that cannot be exported (named), or a model over protobuf's 2 GB.
        DynsalError: an unsupported opset or precision.
    """
    check_options(opset, precision)
    check_graph(graph)
    builder = GraphBuilder(opset, precision)
    values = _Values(builder, graph, fp16=precision == "fp16")
    inputs = _lower(builder, graph, shapes, blobs, values)
    wanted = list(graph.outputs if outputs is None else outputs)
    names = _graph_outputs(builder, values, wanted)
    _prune(builder, list(names.values()))
    output_infos = [helper.make_tensor_value_info(names[blob], TensorProto.FLOAT,
                                                  [None if free else size for size, free in
                                                   zip(shapes.blobs[blob], shapes.dynamic[blob])])
                    for blob in wanted]
    onnx_graph = helper.make_graph(builder.nodes, graph.name or "net", inputs, output_infos, builder.initializers,
                                   doc_string="Caffe net exported by dynsal with Caffe's semantics")
    opsets = [helper.make_opsetid("", opset)]
    model = helper.make_model(onnx_graph, opset_imports=opsets, producer_name="dynsal", producer_version=__version__,
                              ir_version=helper.find_min_ir_version_for(opsets))
    dynamic = any(any(shapes.dynamic[name]) for name in graph.inputs)
    helper.set_model_props(model, {"dynsal.net": graph.name, "dynsal.precision": precision,
                                   "dynsal.dynamic": json.dumps(dynamic),
                                   "dynsal.inputs": json.dumps(list(graph.inputs)),
                                   "dynsal.outputs": json.dumps(names)})
    weight_bytes = sum(len(init.raw_data) for init in builder.initializers)
    if weight_bytes > MAX_PROTO_BYTES:
        raise ExportError(f"net {graph.name!r}: its weights take {weight_bytes / 2 ** 30:.1f} GB, over protobuf's "
                          "2 GB limit for one ONNX file")
    try:
        onnx.checker.check_model(model, full_check=True)  # full: strict shape inference of every node too
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        raise ExportError(f"net {graph.name!r}: the exported graph fails ONNX's checker ({exc}); this is a "
                          "dynsal bug, please report it with the prototxt") from None
    return OnnxExport(model, names)
