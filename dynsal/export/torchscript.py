"""An exported ONNX graph as a TorchScript module: the same nodes, run by PyTorch.

`to_torchscript(model)` writes the Python source of a module whose forward makes one call per ONNX
node (`dynsal.export.torch_ops`, ONNX semantics) with the graph's initializers as buffers, compiles it
with `torch.jit.script` and returns the ScriptModule. Its forward takes the net's inputs as arguments
named after the input blobs (characters outside [A-Za-z0-9_] become `_`) and returns
{output blob: tensor}. Sizes the graph computes stay computed, so a dynamic export stays dynamic.
The saved file (`torch.jit.save`) loads with `torch.jit.load` (or libtorch's `torch::jit::load`)
without dynsal.
"""
from __future__ import annotations

import importlib.util
import keyword
import re
import tempfile
import warnings
from pathlib import Path
from typing import Callable, Dict

import onnx
import torch
from onnx import TensorProto, helper, numpy_helper

from dynsal.errors import ExportError

_DTYPES = {TensorProto.FLOAT: "torch.float32", TensorProto.FLOAT16: "torch.float16", TensorProto.INT64: "torch.long",
           TensorProto.BOOL: "torch.bool"}
_RESERVED = {"self", "ops", "torch", "F", "Dict", "List", "Optional"}


def _attrs(node) -> Dict[str, object]:
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _ints(values) -> str:
    return "[" + ", ".join(str(int(v)) for v in values) + "]"


def _pool_args(node, args) -> str:
    a = _attrs(node)
    if a.get("ceil_mode", 0) or any(d != 1 for d in a.get("dilations", [1, 1])):
        raise ExportError(f"node {node.name}: ceil_mode and dilated pooling are not translated")
    pads = a.get("pads", [0] * 2 * len(a["kernel_shape"]))
    if node.op_type == "AveragePool" and any(pads) and not a.get("count_include_pad", 0):
        raise ExportError(f"node {node.name}: AveragePool without count_include_pad is not translated")
    strides = a.get("strides", [1] * len(a["kernel_shape"]))
    return f"{args[0]}, {_ints(a['kernel_shape'])}, {_ints(strides)}, {_ints(pads)}"


def _conv(fn: str):
    def call(node, args):
        a = _attrs(node)
        n = len(a["kernel_shape"])
        bias = args[2] if len(args) > 2 and args[2] else "None"
        return (f"ops.{fn}({args[0]}, {args[1]}, {bias}, {_ints(a.get('strides', [1] * n))}, "
                f"{_ints(a.get('pads', [0] * 2 * n))}, {_ints(a.get('dilations', [1] * n))}, {a.get('group', 1)})")
    return call


def _gemm(node, args) -> str:
    a = _attrs(node)
    if a.get("transA", 0) or a.get("alpha", 1.0) != 1.0 or a.get("beta", 1.0) != 1.0:
        raise ExportError(f"node {node.name}: Gemm with transA, alpha or beta is not translated")
    bias = args[2] if len(args) > 2 and args[2] else "None"
    return f"ops.gemm({args[0]}, {args[1]}, {bias}, {a.get('transB', 0)})"


def _reduce(fn: str):
    def call(node, args):
        a = _attrs(node)
        axes = args[1] if len(args) > 1 else f"torch.tensor({_ints(a['axes'])}, dtype=torch.long)"
        return f"ops.{fn}({args[0]}, {axes}, {a.get('keepdims', 1)})"
    return call


def _constant_of_shape(node, args) -> str:
    value = numpy_helper.to_array(_attrs(node)["value"]).reshape(-1)[0]
    return f"ops.constant_of_shape({args[0]}, {float(value)!r}, {_DTYPES[_attrs(node)['value'].data_type]})"


def _shape(node, args) -> str:
    a = _attrs(node)
    return f"ops.shape({args[0]}, {a.get('start', 0)}, {a.get('end', 'None')})"


def _binary(template: str):
    return lambda node, args: template.format(*args)


#: ONNX op type -> the Python expression of one node (its single output, or a tuple for MaxPool + Indices)
CALLS: Dict[str, Callable] = {
    "Conv": _conv("conv"),
    "ConvTranspose": _conv("conv_transpose"),
    "MaxPool": lambda node, args: (f"ops.max_pool_with_indices({_pool_args(node, args)})" if len(node.output) > 1
                                   else f"ops.max_pool({_pool_args(node, args)})"),
    "AveragePool": lambda node, args: f"ops.average_pool({_pool_args(node, args)})",
    "GlobalMaxPool": _binary("ops.global_max_pool({0})"),
    "GlobalAveragePool": _binary("ops.global_average_pool({0})"),
    "Pad": _binary("ops.pad({0}, {1}, {2})"),
    "LRN": lambda node, args: "ops.lrn({0}, {size}, {alpha!r}, {beta!r}, {bias!r})".format(
        args[0], **{"alpha": 1e-4, "beta": 0.75, "bias": 1.0, **_attrs(node)}),
    "Add": _binary("{0} + {1}"),
    "Sub": _binary("{0} - {1}"),
    "Mul": _binary("{0} * {1}"),
    "Div": _binary("ops.div({0}, {1})"),
    "Pow": _binary("torch.pow({0}, {1})"),
    "Mod": _binary("torch.remainder({0}, {1})"),
    "Max": lambda node, args: f"ops.maximum([{', '.join(args)}])",
    "Min": _binary("torch.minimum({0}, {1})"),
    "Relu": _binary("torch.relu({0})"),
    "LeakyRelu": lambda node, args: f"F.leaky_relu({args[0]}, {_attrs(node).get('alpha', 0.01)!r})",
    "PRelu": _binary("ops.prelu({0}, {1})"),
    "Sigmoid": _binary("torch.sigmoid({0})"),
    "Tanh": _binary("torch.tanh({0})"),
    "Abs": _binary("torch.abs({0})"),
    "Neg": _binary("torch.neg({0})"),
    "Log": _binary("torch.log({0})"),
    "Sqrt": _binary("torch.sqrt({0})"),
    "Softplus": _binary("F.softplus({0})"),
    "Not": _binary("torch.logical_not({0})"),
    "Equal": _binary("torch.eq({0}, {1})"),
    "GreaterOrEqual": _binary("torch.ge({0}, {1})"),
    "Where": _binary("torch.where({0}, {1}, {2})"),
    "Identity": _binary("{0}"),
    "Cast": lambda node, args: f"{args[0]}.to({_DTYPES[_attrs(node)['to']]})",
    "Concat": lambda node, args: f"torch.cat([{', '.join(args)}], {_attrs(node)['axis']})",
    "Softmax": lambda node, args: f"torch.softmax({args[0]}, {_attrs(node).get('axis', -1)})",
    "GatherElements": lambda node, args: f"torch.gather({args[0]}, {_attrs(node).get('axis', 0)}, {args[1]})",
    "Gather": lambda node, args: f"ops.gather({args[0]}, {args[1]}, {_attrs(node).get('axis', 0)})",
    "MatMul": _binary("torch.matmul({0}, {1})"),
    "Gemm": _gemm,
    "BatchNormalization": lambda node, args: "ops.batch_norm({0}, {1}, {2}, {3}, {4}, {eps!r})".format(
        *args, eps=_attrs(node).get("epsilon", 1e-5)),
    "ReduceMean": _reduce("reduce_mean"),
    "ReduceSum": _reduce("reduce_sum"),
    "Squeeze": _binary("ops.squeeze({0}, {1})"),
    "Unsqueeze": _binary("ops.unsqueeze({0}, {1})"),
    "Range": _binary("ops.range_({0}, {1}, {2})"),
    "Shape": _shape,
    "Slice": _binary("ops.slice_({0}, {1}, {2}, {3})"),
    "Reshape": _binary("ops.reshape({0}, {1})"),
    "ConstantOfShape": _constant_of_shape,
}


def _identifier(name: str, taken: set) -> str:
    ident = re.sub(r"\W", "_", name)
    if not ident or ident[0].isdigit() or keyword.iskeyword(ident) or ident in _RESERVED:
        ident = f"in_{ident}"
    base, index = ident, 0
    while ident in taken:
        index += 1
        ident = f"{base}_{index}"
    taken.add(ident)
    return ident


def module_source(model: onnx.ModelProto) -> str:
    """The Python source of the module class `ExportedNet` computing `model`'s graph (see the module docstring)."""
    graph = model.graph
    names: Dict[str, str] = {}
    taken: set = set()
    for i, init in enumerate(graph.initializer):
        names[init.name] = f"self.c{i}"
    arguments = []
    for value in graph.input:
        names[value.name] = _identifier(value.name, taken)
        arguments.append(f"{names[value.name]}: torch.Tensor")
    lines = []
    for node in graph.node:
        if node.op_type not in CALLS:
            raise ExportError(f"node {node.name}: ONNX op {node.op_type} has no TorchScript translation")
        args = [names[i] if i else "" for i in node.input]
        for out in node.output:
            names[out] = f"v{len(names)}"
        lines.append(f"        {', '.join(names[o] for o in node.output)} = {CALLS[node.op_type](node, args)}")
    returned = ", ".join(f"{out.name!r}: {names[out.name]}" for out in graph.output)
    return "\n".join([
        '"""Generated by dynsal.export.torchscript from an exported Caffe net."""',
        "from typing import Dict, List, Optional",
        "",
        "import torch",
        "import torch.nn.functional as F",
        "",
        "from dynsal.export import torch_ops as ops",
        "",
        "",
        "class ExportedNet(torch.nn.Module):",
        f"    def forward(self, {', '.join(arguments)}) -> Dict[str, torch.Tensor]:",
        *lines,
        f"        return {{{returned}}}",
        "",
    ])


def to_torchscript(model: onnx.ModelProto) -> torch.jit.ScriptModule:
    """The ONNX graph of a dynsal export as a compiled TorchScript module (see the module docstring).

    Raises:
        ExportError: a node type without translation (only dynsal's own exports are translated).
    """
    source = module_source(model)
    with tempfile.TemporaryDirectory(prefix="dynsal-torchscript-") as folder:
        path = Path(folder) / "exported_net.py"
        path.write_text(source)
        spec = importlib.util.spec_from_file_location(f"dynsal_exported_{model.graph.name}", path)
        generated = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(generated)
        module = generated.ExportedNet()
        for i, init in enumerate(model.graph.initializer):
            module.register_buffer(f"c{i}", torch.from_numpy(numpy_helper.to_array(init).copy()))
        with warnings.catch_warnings():  # torch 2.9+ marks TorchScript deprecated; the format is what we write
            warnings.simplefilter("ignore", DeprecationWarning)
            scripted = torch.jit.script(module.eval())
    return scripted
