"""The blob shapes of a net to export and, for a dynamic export, which axes depend on the input sizes.

A dynamic export frees the batch axis and every axis after the channel axis of each input. Which
axes of the other blobs follow them is found by Caffe's own shape rules (`dynsal.caffe.shapes`):
the net is sized at the export's input shapes and at two further sets (batch + 1 and + 2, each free
axis at 2 and 3 times its size, which keeps any divisibility the net needs, e.g. a label matching an
upsampled output); an axis whose size changes is dynamic. A layer whose learnable
blob shapes change with the input (an InnerProduct over spatial axes), or that cannot take other
sizes, makes a dynamic export impossible: it is refused naming the layer.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Sequence, Tuple

from dynsal.caffe.shapes import infer_shapes
from dynsal.errors import DynsalError, ExportError, NetDefinitionError

Shape = Tuple[int, ...]
_PROBES = ((1, 2), (2, 3))  # (batch increment, size factor) of the probe sizes


@dataclass
class ExportShapes:
    """Shapes of every blob at the export's input shapes, and per blob and axis whether it is dynamic."""

    blobs: Dict[str, Shape]
    params: Dict[str, List[Shape]]
    dynamic: Dict[str, Tuple[bool, ...]]


def _probe(shape: Shape, batch: int, factor: int) -> Shape:
    return tuple(d + batch if axis == 0 else d if axis == 1 else factor * d for axis, d in enumerate(shape))


def export_shapes(graph, input_shapes: Dict[str, Sequence[int]] | None, dynamic: bool) -> ExportShapes:
    """Blob shapes at `input_shapes` (default: the Input layers' own) and the dynamic axes.

    Raises:
        DynsalError: `input_shapes` names a blob that is not an input.
        NetDefinitionError: the net cannot take the given input shapes.
        ExportError: `dynamic` and some layer needs fixed input sizes (named).
    """
    unknown = sorted(set(input_shapes or {}) - set(graph.inputs))
    if unknown:
        raise DynsalError(f"not inputs of net {graph.name!r}: {', '.join(unknown)}; inputs: {', '.join(graph.inputs)}")
    blobs, params = infer_shapes(graph, input_shapes)
    fixed = {name: tuple(False for _ in shape) for name, shape in blobs.items()}
    if not dynamic:
        return ExportShapes(blobs, params, fixed)
    changed = dict(fixed)
    for batch, factor in _PROBES:
        probe_inputs = {name: _probe(blobs[name], batch, factor) for name in graph.inputs}
        try:
            probe_blobs, probe_params = infer_shapes(graph, probe_inputs)
        except NetDefinitionError as exc:
            raise ExportError(f"--dynamic: the net does not take other input sizes ({exc}); export with fixed "
                              "input shapes") from None
        for layer, shapes in params.items():
            if probe_params[layer] != shapes:
                raise ExportError(f"--dynamic: layer {layer!r} has learnable blobs whose shapes follow the input "
                                  f"size ({shapes} here, {probe_params[layer]} at inputs {probe_inputs}); export "
                                  "with fixed input shapes")
        for name, shape in blobs.items():
            changed[name] = tuple(c or a != b for c, a, b in zip(changed[name], shape, probe_blobs[name]))
    return ExportShapes(blobs, params, changed)
