"""caffemodel ⇄ torch engine blobs: the named mapping step between a caffemodel and a CaffeModule.

Loading follows Net::CopyTrainedLayersFrom (via `dynsal.caffe.caffemodel.match_weights`): layers match
by name, caffemodel layers the net lacks are ignored, a matched layer needs the same blob count and
shapes that fit (legacy 4-D shapes by Caffe's rule; the values are then reshaped to the net's shape).
"""
from __future__ import annotations

from typing import Dict, List, Sequence

import numpy as np
import torch

from dynsal.caffe.blobs import blob_to_array
from dynsal.caffe.caffemodel import WeightsReport, match_weights
from dynsal.caffe.fillers import fresh_blobs
from dynsal.errors import WeightsMismatchError


def module_param_shapes(module) -> Dict[str, List[tuple]]:
    """{layer name: [blob shape, ...]} of a CaffeModule's layers with learnable blobs."""
    return {name: [tuple(b.shape) for b in layer.blobs] for name, layer in module.named_layers()}


def load_caffemodel(module, model, allow_missing: bool = False, new_net: bool = False,
                    seed: int | None = None) -> WeightsReport:
    """Copy a caffemodel's (`pb.NetParameter` with blobs) values into a CaffeModule.

    Args:
        module: the `CaffeModule` to fill.
        model: the caffemodel, read with `dynsal.caffe.io.read_net`.
        allow_missing: leave net layers the caffemodel lacks as they are instead of failing.
        new_net: the module was just built: where the caffemodel lacks layers, every blob is first
            filled fresh (`fill_fresh`, from `seed`), as Net::Init does before CopyTrainedLayersFrom, so
            those layers hold their fillers' values (else they are left as they are).
        seed: seed of the fillers' random numbers.

    Returns:
        The matching report (matched, missing, unused layers).

    Raises:
        WeightsMismatchError: a blob count or shape differs (names layer and both shapes), or a
            layer is missing and not `allow_missing`.
    """
    report = match_weights(module_param_shapes(module), model)
    report.check(module.graph.name, model.name, allow_missing)
    if report.missing and new_net:
        fill_fresh(module, seed)
    source = {layer.name: layer for layer in model.layer if len(layer.blobs)}
    layers = dict(module.named_layers())
    with torch.no_grad():
        for name in report.matched:
            for target, blob in zip(layers[name].blobs, source[name].blobs):
                values = blob_to_array(blob).astype(np.float32).reshape(tuple(target.shape))
                target.copy_(torch.from_numpy(values))
    return report


def fill_fresh(module, seed: int | None = None) -> None:
    """Fill every learnable blob with its fresh value (`dynsal.caffe.fillers.fresh_blobs`: the layers' Caffe
    fillers in net order; a shared blob once, by its owner)."""
    values = fresh_blobs([g.param for g in module.graph.layers], module_param_shapes(module), seed)
    done = set()
    with torch.no_grad():
        for name, layer in module.named_layers():
            for target, array in zip(layer.blobs, values[name]):
                if id(target) not in done:
                    done.add(id(target))
                    target.copy_(torch.from_numpy(array.reshape(tuple(target.shape))))


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
