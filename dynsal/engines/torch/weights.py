"""caffemodel ⇄ torch engine blobs: the named mapping step between a caffemodel and a CaffeModule.

Loading follows Net::CopyTrainedLayersFrom (via `dynsal.caffe.weights.match_weights`): layers match
by name, caffemodel layers the net lacks are ignored, a matched layer needs the same blob count and
shapes that fit (legacy 4-D shapes by Caffe's rule; the values are then reshaped to the net's shape).
"""
from __future__ import annotations

from typing import Dict, List, Sequence

import numpy as np
import torch

from dynsal.caffe.blobs import blob_to_array
from dynsal.caffe.weights import WeightsReport, match_weights
from dynsal.engines.torch.fillers import fill
from dynsal.errors import WeightsMismatchError


def module_param_shapes(module) -> Dict[str, List[tuple]]:
    """{layer name: [blob shape, ...]} of a CaffeModule's layers with learnable blobs."""
    return {name: [tuple(b.shape) for b in layer.blobs] for name, layer in module.named_layers()}


def load_caffemodel(module, model, allow_missing: bool = False) -> WeightsReport:
    """Copy a caffemodel's (`pb.NetParameter` with blobs) values into a CaffeModule.

    Args:
        module: the `CaffeModule` to fill.
        model: the caffemodel, read with `dynsal.caffe.io.read_net`.
        allow_missing: leave net layers the caffemodel lacks as they are instead of failing.

    Returns:
        The matching report (matched, missing, unused layers).

    Raises:
        WeightsMismatchError: a blob count or shape differs (names layer and both shapes), or a
            layer is missing and not `allow_missing`.
    """
    report = match_weights(module_param_shapes(module), model)
    error = report.error(module.graph.name, model.name, allow_missing)
    if error is not None:
        raise error
    source = {layer.name: layer for layer in model.layer if len(layer.blobs)}
    layers = dict(module.named_layers())
    with torch.no_grad():
        for name in report.matched:
            for target, blob in zip(layers[name].blobs, source[name].blobs):
                values = blob_to_array(blob).astype(np.float32).reshape(tuple(target.shape))
                target.copy_(torch.from_numpy(values))
    return report


def fill_fresh(module, seed: int | None = None) -> None:
    """Fill every learnable blob from its layer's Caffe filler (shared blobs once, by their owner)."""
    rng = np.random.default_rng(seed)
    done = set()
    with torch.no_grad():
        for _, layer in module.named_layers():
            for target, filler in zip(layer.blobs, layer.fillers):
                if id(target) not in done:
                    done.add(id(target))
                    target.copy_(torch.from_numpy(fill(filler, tuple(target.shape), rng)))


def set_blobs(module, params: Dict[str, Sequence[np.ndarray]]) -> None:
    """Overwrite learnable blobs from {layer name: [array, ...]}; shapes must match exactly.

    Raises:
        WeightsMismatchError: an unknown layer, a wrong blob count or shape.
    """
    layers = dict(module.named_layers())
    for name, arrays in params.items():
        if name not in layers:
            raise WeightsMismatchError(f"layer {name!r}: the net has no layer with learnable blobs of that name")
        blobs = layers[name].blobs
        if len(arrays) != len(blobs):
            raise WeightsMismatchError(f"layer {name!r}: {len(arrays)} arrays for {len(blobs)} blobs")
        for i, (target, array) in enumerate(zip(blobs, arrays)):
            array = np.asarray(array, dtype=np.float32)
            if array.shape != tuple(target.shape):
                raise WeightsMismatchError(f"layer {name!r} blob {i}: given {array.shape}, net {tuple(target.shape)}")
            with torch.no_grad():
                target.copy_(torch.from_numpy(array))
