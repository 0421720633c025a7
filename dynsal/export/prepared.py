"""The steps before lowering, shared by `dynsal.export.onnx_export` and the onnx engine (`OnnxNet`)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Sequence

import numpy as np

from dynsal.caffe.graph import build_graph
from dynsal.export.net_blobs import net_blobs
from dynsal.export.registry import check_graph
from dynsal.export.shapes import ExportShapes, export_shapes


@dataclass
class PreparedNet:
    """A net ready to lower: its TEST-phase graph, blob shapes (and dynamic axes) and learnable blobs."""

    graph: object  # dynsal.caffe.graph's constructed net
    shapes: ExportShapes
    blobs: Dict[str, List[np.ndarray]]


def prepare_net(net_param, model=None, input_shapes: Dict[str, Sequence[int]] | None = None, dynamic: bool = False,
                allow_missing: bool = False, seed: int | None = None) -> PreparedNet:
    """Construct the TEST phase of `net_param`, refuse (by name) a layer without an ONNX form, compute the blob
    shapes at `input_shapes` (free batch and spatial axes when `dynamic`), and take the learnable blobs from
    `model` (a `pb.NetParameter` with blobs) or fresh filler values (`seed`).

    Raises:
        ExportError: a layer that cannot be exported, or a net that cannot be dynamic (named).
        WeightsMismatchError, NetDefinitionError: as `dynsal.engines.load_net`.
    """
    graph = build_graph(net_param, phase="TEST")
    check_graph(graph)
    shapes = export_shapes(graph, input_shapes, dynamic)
    return PreparedNet(graph, shapes, net_blobs(graph, shapes.params, model, allow_missing, seed))
