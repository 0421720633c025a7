"""Two-stream initialisation: single-stream caffemodels (SSNet, TSNet) mapped onto a two-stream net.

What `dynsal init-weights` writes (dynsal's documented reconstruction; the paper says only that the
streams start from the trained single-stream nets):
- spatial stream `conv1..convK` <- the spatial model's layers of the same names;
- temporal stream `conv1_b..convK_b` <- the temporal model's `conv1..convK`;
- the head after the fusion (`conv6..conv9`, `deconv1`; EarlyFusion from `conv5`) <- the `--head`
  model (spatial by default), or the element-wise mean of both (`--head average`);
- `conv_fuse` (1×1, 2C -> C, STSConvNet and EarlyFusion) <- [½·I | ½·I] with zero bias, so the
  fused features start as the mean of the two streams' features. With both streams given the same
  weights and the same input, every fused net then reproduces the single-stream net's output
  exactly (max(a, a) = a, ½a + ½a = a) — the property the tests check.
"""
from __future__ import annotations

from typing import Dict, List

import numpy as np

from dynsal import zoo
from dynsal.caffe import io
from dynsal.caffe.blobs import blob_to_array
from dynsal.caffe.graph import build_graph
from dynsal.caffe.shapes import infer_shapes
from dynsal.errors import DynsalError, WeightsMismatchError

HEADS = ("spatial", "temporal", "average")


def read_blobs(path) -> Dict[str, List[np.ndarray]]:
    """{layer: [float32 array, ...]} of a caffemodel's layers that have blobs."""
    return {layer.name: [blob_to_array(b).astype(np.float32) for b in layer.blobs]
            for layer in io.read_net(path).layer if len(layer.blobs)}


def fuse_identity(shape) -> np.ndarray:
    """[½·I | ½·I] for a 1×1 conv weight of shape (C, 2C, 1, 1): the mean of the two streams."""
    out_channels, in_channels = shape[:2]
    if in_channels != 2 * out_channels or tuple(shape[2:]) != (1, 1):
        raise WeightsMismatchError(f"conv_fuse weight {tuple(shape)} is not a 1×1 (C, 2C) fusion")
    eye = np.eye(out_channels, dtype=np.float32) * 0.5
    return np.concatenate([eye, eye], axis=1).reshape(shape)


def _take(source: Dict[str, List[np.ndarray]], name: str, layer: str, shapes, origin: str):
    if name not in source:
        raise WeightsMismatchError(f"{origin} has no layer {name!r} (needed for {layer!r})")
    arrays = source[name]
    if [tuple(a.shape) for a in arrays] != [tuple(s) for s in shapes]:
        raise WeightsMismatchError(f"{origin} layer {name!r}: shapes {[a.shape for a in arrays]} do not fit "
                                   f"{layer!r} {[tuple(s) for s in shapes]}")
    return arrays


def two_stream_weights(net_name: str, spatial: Dict, temporal: Dict, head: str = "spatial") -> Dict:
    """{layer: arrays} for a two-stream zoo net from single-stream {layer: arrays} dicts.

    Raises:
        DynsalError: not a two-stream net, or an unknown head choice.
        WeightsMismatchError: a needed layer is missing or has other shapes (names the model).
    """
    net = zoo.get(net_name)
    if not net.two_stream:
        raise DynsalError(f"{net_name} is a single-stream net; init-weights builds two-stream nets")
    if head not in HEADS:
        raise DynsalError(f"unknown --head {head!r}; choose one of: {', '.join(HEADS)}")
    _, params = infer_shapes(build_graph(zoo.deploy(net_name)))
    weights = {}
    for layer, shapes in params.items():
        if not shapes:
            continue
        if layer == "conv_fuse":
            weights[layer] = [fuse_identity(shapes[0]), np.zeros(shapes[1], np.float32)]
        elif layer.endswith("_b"):
            weights[layer] = _take(temporal, layer[:-2], layer, shapes, "the temporal model")
        elif f"{layer}_b" in params:
            weights[layer] = _take(spatial, layer, layer, shapes, "the spatial model")
        elif head == "average":
            a = _take(spatial, layer, layer, shapes, "the spatial model")
            b = _take(temporal, layer, layer, shapes, "the temporal model")
            weights[layer] = [(x + y) / 2 for x, y in zip(a, b)]
        else:
            source, origin = (spatial, "the spatial model") if head == "spatial" else (temporal, "the temporal model")
            weights[layer] = _take(source, layer, layer, shapes, origin)
    return weights


def write_two_stream_init(net_name: str, spatial_path, temporal_path, output, head: str = "spatial") -> Dict:
    """Read the two caffemodels, map them (see module docstring) and write the two-stream caffemodel."""
    weights = two_stream_weights(net_name, read_blobs(spatial_path), read_blobs(temporal_path), head)
    io.write_caffemodel(zoo.deploy(net_name), weights, output)
    return weights
