"""Export any Caffe net dynsal runs to ONNX or TorchScript, with Caffe's semantics, checked against real Caffe
like the engines.

    from dynsal.export import export
    export("deploy.prototxt", "weights.caffemodel", "net.onnx", dynamic=True)   # or "net.pt"

The net is constructed for the TEST phase (`dynsal.caffe.graph`), each layer is lowered to ONNX nodes
by its registered lowering (`dynsal.export.layers`; a layer that cannot be expressed is refused by
name), and a TorchScript file is that same graph run by PyTorch (`dynsal.export.torchscript`). The
ONNX side needs the `onnx` package only (torch only to fill fresh weights without a caffemodel).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Sequence, Union

import onnx

from dynsal.caffe.io import as_net_param
from dynsal.errors import DynsalError
from dynsal.export.onnx_model import DEFAULT_OPSET, PRECISIONS, OnnxExport, build_model, check_options, max_opset
from dynsal.export.prepared import prepare_net
from dynsal.files import atomic_output

PathLike = Union[str, os.PathLike]
#: file suffix -> export format
FORMATS = {".onnx": "onnx", ".pt": "torchscript"}

__all__ = ["DEFAULT_OPSET", "FORMATS", "PRECISIONS", "ExportResult", "OnnxExport", "export", "max_opset",
           "onnx_export"]


def onnx_export(prototxt, weights=None, input_shapes: Dict[str, Sequence[int]] | None = None,
                dynamic: bool = False, opset: int = DEFAULT_OPSET, precision: str = "fp32",
                outputs: Sequence[str] | None = None, allow_missing: bool = False, seed: int | None = None
                ) -> OnnxExport:
    """The ONNX model of a Caffe net (in memory).

    Args:
        prototxt: path of a net definition, or a `pb.NetParameter` (upgraded like Caffe on load).
        weights: path of a caffemodel, a `pb.NetParameter` with blobs, or None for fresh filler values.
        input_shapes: {input blob: shape} replacing the prototxt's input shapes.
        dynamic: free the batch axis and the axes after the channel axis of every input.
        opset: ONNX default-domain opset (13 to `max_opset()`).
        precision: "fp32" or "fp16" (weights and arithmetic; inputs and outputs stay float32).
        outputs: the blobs the model returns (default: the net's outputs).
        allow_missing: layers the caffemodel lacks keep fresh filler values.
        seed: seed of the filler random numbers.

    Raises:
        ExportError: a layer that cannot be exported, or a net that cannot be dynamic (named).
        WeightsMismatchError, NetDefinitionError, FormatError: as `dynsal.engines.load_net`.
    """
    check_options(opset, precision)
    net_param = as_net_param(prototxt, "net")
    model = as_net_param(weights, "weights")
    net = prepare_net(net_param, model, input_shapes, dynamic, allow_missing=allow_missing, seed=seed)
    return build_model(net.graph, net.shapes, net.blobs, opset=opset, precision=precision, outputs=outputs)


@dataclass
class ExportResult:
    """What `export` wrote."""

    path: Path
    format: str  # "onnx" or "torchscript"
    opset: int
    precision: str
    inputs: Dict[str, List]  # input blob -> dims (ints, symbols for free axes)
    outputs: Dict[str, List]  # output blob -> dims (ints, None for sizes computed at run time)

    def lines(self) -> List[str]:
        """A short description: file, format, inputs and outputs with their shapes."""
        def shape(dims):
            return "×".join("?" if d is None else str(d) for d in dims)
        size = self.path.stat().st_size / 1e6
        return ([f"{self.path}: {self.format} (ONNX opset {self.opset}, {self.precision}), {size:.1f} MB"]
                + [f"  input  {name}: {shape(dims)}" for name, dims in self.inputs.items()]
                + [f"  output {name}: {shape(dims)}" for name, dims in self.outputs.items()])


def _dims(value) -> List:
    """A graph input's or output's dims: ints, the export's symbols (N, H, W, ...), None where computed."""
    return [d.dim_value if d.HasField("dim_value") else (None if d.dim_param.startswith("unk__") else d.dim_param)
            for d in value.type.tensor_type.shape.dim]


def _write_atomic(path: Path, write: Callable[[str], None]) -> None:
    """`write(temporary path)` beside `path`, then renamed into place (`dynsal.files.atomic_output`:
    nothing half-written remains, its folder is made, and the file gets the user's umask, not mkstemp's 0600)."""
    with atomic_output(path) as tmp:
        write(str(tmp))


def export(prototxt, weights, path: PathLike, input_shapes: Dict[str, Sequence[int]] | None = None,
           dynamic: bool = False, opset: int = DEFAULT_OPSET, precision: str = "fp32", overwrite: bool = False,
           allow_missing: bool = False, seed: int | None = None) -> ExportResult:
    """Export a Caffe net to `path`: ONNX for `.onnx`, TorchScript for `.pt` (arguments as `onnx_export`).

    The file is written under a temporary name and renamed when complete; an existing file is
    replaced only with `overwrite`.

    Raises:
        DynsalError: an unknown suffix, or `path` exists without `overwrite`; and as `onnx_export`.
    """
    path = Path(path)
    kind = FORMATS.get(path.suffix.lower())
    if kind is None:
        raise DynsalError(f"{path}: unknown export format; name the file {' or '.join('*' + s for s in FORMATS)}")
    if path.exists() and not overwrite:
        raise DynsalError(f"{path} exists; pass --overwrite (overwrite=True) to replace it")
    exported = onnx_export(prototxt, weights, input_shapes=input_shapes, dynamic=dynamic, opset=opset,
                           precision=precision, allow_missing=allow_missing, seed=seed)
    if kind == "onnx":
        _write_atomic(path, lambda tmp: onnx.save_model(exported.model, tmp))
    else:
        from dynsal.export.torchscript import to_torchscript  # TorchScript needs torch; ONNX does not

        module = to_torchscript(exported.model)
        _write_atomic(path, module.save)
    graph = exported.model.graph
    return ExportResult(path, kind, opset, precision, {v.name: _dims(v) for v in graph.input},
                        {blob: _dims(next(v for v in graph.output if v.name == name))
                         for blob, name in exported.outputs.items()})
