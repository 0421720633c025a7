"""The export registry: Caffe type string -> the lowering of one layer to ONNX nodes.

A lowering receives a `LayerExport` (the LayerParameter, its bottoms' value names, fixed shapes and
which of their axes are dynamic, the layer's learnable blobs as numpy arrays, the graph builder)
and must produce every top under the value name `tops[i]`. Layer types without a lowering, and
lowerings that meet parameters they cannot express, refuse the layer by name (`ExportError`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, List, Tuple

import numpy as np

from dynsal.caffe.type_table import registrar
from dynsal.errors import ExportError
from dynsal.export.builder import GraphBuilder, Size

Shape = Tuple[int, ...]
#: Layers that read their data from files: an exported net takes its inputs from Input layers.
DATA_LAYERS = ("Data", "HDF5Data", "ImageData")


@dataclass
class LayerExport:
    """One layer being lowered: what its lowering needs to know."""

    param: object  # pb.LayerParameter (after phase filtering and split insertion)
    builder: GraphBuilder
    bottoms: List[str]  # value names
    shapes: List[Shape]  # bottom shapes at the export's input shapes
    dynamic: List[Tuple[bool, ...]]  # per bottom, per axis: whether the size depends on the input sizes
    tops: List[str]  # value names each top must be produced under
    top_shapes: List[Shape]
    blobs: List[np.ndarray]  # learnable blobs, Caffe's order and shapes, float32

    @property
    def name(self) -> str:
        return self.param.name

    def dim(self, bottom: int, axis: int) -> Size:
        """Axis `axis` of bottom `bottom` as a Size (read from the graph where it is dynamic)."""
        return self.builder.shape_dim(self.bottoms[bottom], axis, self.shapes[bottom][axis],
                                      self.dynamic[bottom][axis])

    def dims(self, bottom: int) -> List[Size]:
        return [self.dim(bottom, axis) for axis in range(len(self.shapes[bottom]))]

    def is_dynamic(self, bottom: int = 0) -> bool:
        return any(self.dynamic[bottom])

    def refuse(self, why: str) -> ExportError:
        """The error refusing this layer: names it, its type and why."""
        return ExportError(f"layer {self.name!r} ({self.param.type}): {why}")


Lowering = Callable[[LayerExport], None]
LOWERINGS: Dict[str, Lowering] = {}


#: `@lowering("Type", ...)` registers the ONNX lowering of one or more exact Caffe layer type strings.
lowering = registrar(LOWERINGS)


def exportable_types() -> List[str]:
    """The Caffe layer types that export, sorted (Input is the graph's inputs)."""
    return sorted(set(LOWERINGS) | {"Input"})


def check_exportable(layer) -> None:
    """Refuse a `pb.LayerParameter` that has no ONNX lowering.

    Raises:
        ExportError: names the layer and its type, and what to do.
    """
    if layer.type in DATA_LAYERS:
        raise ExportError(f"layer {layer.name!r} ({layer.type}) reads its batches from files; an exported net "
                          "takes its inputs from Input layers: export the deploy prototxt")
    if layer.type not in LOWERINGS and layer.type != "Input":
        raise ExportError(f"layer {layer.name!r}: layer type {layer.type!r} cannot be exported; exportable: "
                          f"{', '.join(exportable_types())}")


def check_graph(graph) -> None:
    """`check_exportable` for every layer of a constructed net, in order (before sizing it: data layers
    would read their sources)."""
    for layer in graph.layers:
        check_exportable(layer.param)
