"""The learnable blobs an exported net carries, as Net::Init and Net::CopyTrainedLayersFrom leave them.

Read with numpy (no torch needed): every blob starts with its fresh filler values (`dynsal.caffe.fillers.
fresh_blobs`, the values the torch engine's fresh net holds for the same seed) when there is no caffemodel
or it lacks layers (`allow_missing`); a caffemodel's layers are matched by layer name (`dynsal.caffe.
caffemodel.match_weights`, Caffe's legacy-shape rule) and reshaped to the net's shapes; and for shared
params (`param { name: ... }`) every sharing layer holds the values of the last one copied, as in Caffe,
where the copies land in one shared blob.
"""
from __future__ import annotations

from typing import Dict, List, Set

import numpy as np

from dynsal.caffe.blobs import blob_to_array
from dynsal.caffe.caffemodel import match_weights
from dynsal.caffe.fillers import fresh_blobs

Blobs = Dict[str, List[np.ndarray]]


def _share(graph, blobs: Blobs, copied: Set[str]) -> None:
    """Give every layer sharing a named param the blob of the last sharing layer copied from the caffemodel
    (in net order); without one it keeps its owner's fresh values."""
    last: Dict[str, np.ndarray] = {}
    for layer in graph.layers:
        if layer.name in copied:
            for spec, array in zip(layer.param.param, blobs[layer.name]):
                if spec.name:
                    last[spec.name] = array
    for layer in graph.layers:
        arrays = blobs.get(layer.name, [])
        for i, spec in enumerate(list(layer.param.param)[:len(arrays)]):
            if spec.name in last:
                arrays[i] = last[spec.name].reshape(arrays[i].shape)


def net_blobs(graph, param_shapes, model=None, allow_missing: bool = False, seed: int | None = None) -> Blobs:
    """{layer name: [blob, ...]} (float32, Caffe's order and shapes) for every layer with learnable blobs.

    Args:
        graph: the constructed net (`dynsal.caffe.graph.build_graph`).
        param_shapes: its learnable-blob shapes (`dynsal.caffe.shapes.infer_shapes`).
        model: a caffemodel `pb.NetParameter`, or None for fresh filler values.
        allow_missing: let layers the caffemodel lacks keep fresh filler values.
        seed: seed of the fillers' random numbers.

    Raises:
        WeightsMismatchError: a blob count or shape differs, or a layer is missing (without allow_missing).
    """
    if not any(param_shapes.values()):
        return {}
    if model is None:
        return fresh_blobs([layer.param for layer in graph.layers], param_shapes, seed)
    report = match_weights(param_shapes, model)
    report.check(graph.name, model.name, allow_missing)
    blobs = fresh_blobs([layer.param for layer in graph.layers], param_shapes, seed) if report.missing else {}
    source = {layer.name: layer for layer in model.layer if len(layer.blobs)}
    for name in report.matched:
        blobs[name] = [blob_to_array(blob).astype(np.float32).reshape(shape)
                       for blob, shape in zip(source[name].blobs, param_shapes[name])]
    _share(graph, blobs, set(report.matched))
    return blobs
