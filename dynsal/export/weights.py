"""The learnable blobs an exported net carries, as Net::CopyTrainedLayersFrom would leave them.

With a caffemodel covering every layer, the blobs are read with numpy (no torch needed): matched by
layer name (`dynsal.caffe.weights.match_weights`, Caffe's legacy-shape rule), reshaped to the net's
shapes, and for shared params (`param { name: ... }`) every sharing layer holds the values of the last
one copied, as in Caffe, where the copies land in one shared blob. Without a caffemodel, or with
layers missing from it and `allow_missing`, the torch engine fills the fresh blobs with the layers'
Caffe fillers (this needs torch).
"""
from __future__ import annotations

from typing import Dict, List

import numpy as np

from dynsal.caffe.blobs import blob_to_array
from dynsal.caffe.weights import match_weights
from dynsal.errors import DynsalError

Blobs = Dict[str, List[np.ndarray]]


def _filled_by_torch(net_param, model, allow_missing: bool, seed: int | None) -> Blobs:
    try:
        from dynsal.engines.torch import TorchNet  # optional dependency: only fresh blobs need it
    except ImportError:
        raise DynsalError("filling fresh weights uses the torch engine's Caffe fillers and needs torch "
                          "(pip install dynsal[torch]); or give a caffemodel with every layer") from None
    return TorchNet(net_param, model, allow_missing=allow_missing, seed=seed).params()


def _share(graph, blobs: Blobs) -> None:
    """Give every layer sharing a named param the blob of the last sharing layer (in net order)."""
    last: Dict[str, np.ndarray] = {}
    for layer in graph.layers:
        for spec, array in zip(layer.param.param, blobs.get(layer.name, [])):
            if spec.name:
                last[spec.name] = array
    for layer in graph.layers:
        arrays = blobs.get(layer.name, [])
        for i, spec in enumerate(list(layer.param.param)[:len(arrays)]):
            if spec.name:
                arrays[i] = last[spec.name].reshape(arrays[i].shape)


def net_blobs(graph, param_shapes, net_param, model=None, allow_missing: bool = False, seed: int | None = None
              ) -> Blobs:
    """{layer name: [blob, ...]} (float32, Caffe's order and shapes) for every layer with learnable blobs.

    Args:
        graph: the constructed net (`dynsal.caffe.graph.build_graph`).
        param_shapes: its learnable-blob shapes (`dynsal.caffe.shapes.infer_shapes`).
        net_param: the net definition (for the torch engine's fillers).
        model: a caffemodel `pb.NetParameter`, or None for fresh filler values.
        allow_missing: let layers the caffemodel lacks keep fresh filler values.
        seed: seed of the fillers' random numbers.

    Raises:
        WeightsMismatchError: a blob count or shape differs, or a layer is missing (without allow_missing).
    """
    if not any(param_shapes.values()):
        return {}
    if model is None:
        return _filled_by_torch(net_param, None, allow_missing, seed)
    report = match_weights(param_shapes, model)
    report.check(graph.name, model.name, allow_missing)
    if report.missing:
        return _filled_by_torch(net_param, model, allow_missing, seed)
    source = {layer.name: layer for layer in model.layer if len(layer.blobs)}
    blobs = {name: [blob_to_array(blob).astype(np.float32).reshape(shape)
                    for blob, shape in zip(source[name].blobs, param_shapes[name])]
             for name in report.matched}
    _share(graph, blobs)
    return blobs
