"""Caffe's weight fillers (filler.hpp) for fresh nets, drawn with numpy, and which filler each learnable
blob of a layer takes (each layer's LayerSetUp), for every engine and the exporters alike.

Fan-in = count / shape[0], fan-out = count / shape[1] (count for 1-D blobs); variance_norm picks
n = fan-in, fan-out or their mean. Caffe's own random numbers (boost mt19937) cannot be reproduced;
the distributions are.

- constant: `value`; uniform: U(min, max);
- gaussian: N(mean, std); with `sparse` ≥ 0 each weight is kept with probability sparse/shape[0];
- xavier: U(-√(3/n), √(3/n)); msra: N(0, √(2/n));
- positive_unitball: U(0, 1) with each of the shape[0] rows normalised to sum 1;
- bilinear (4-D, square kernels): w[y, x] = (1 − |x/f − c|)(1 − |y/f − c|), f = ceil(K/2),
  c = (K − 1) / (2f) (BVLC master), the same for every (out, in) slice.
"""
from __future__ import annotations

import math
from typing import Dict, Iterable, List, Sequence, Tuple

import numpy as np

from dynsal.caffe.schema import pb
from dynsal.errors import NetDefinitionError

Shape = Tuple[int, ...]
Blobs = Dict[str, List[np.ndarray]]


def constant_filler(value: float):
    """A `pb.FillerParameter` of type constant."""
    return pb.FillerParameter(type="constant", value=value)


def _fan_n(filler, shape: Sequence[int]) -> float:
    count = math.prod(shape)
    fan_in = count / shape[0]
    fan_out = count / shape[1] if len(shape) > 1 else count
    norm = filler.variance_norm
    if norm == pb.FillerParameter.AVERAGE:
        return (fan_in + fan_out) / 2
    return fan_out if norm == pb.FillerParameter.FAN_OUT else fan_in


def _bilinear(shape: Sequence[int]) -> np.ndarray:
    if len(shape) != 4 or shape[2] != shape[3]:
        raise NetDefinitionError(f"the bilinear filler needs a 4-D blob with a square kernel, got {tuple(shape)}")
    k = shape[3]
    f = math.ceil(k / 2)
    c = (k - 1) / (2.0 * f)
    ramp = 1 - np.abs(np.arange(k) / f - c)
    return np.broadcast_to(np.outer(ramp, ramp), tuple(shape))


def fill(filler, shape: Sequence[int], rng: np.random.Generator) -> np.ndarray:
    """Values of a blob of `shape` drawn from a Caffe `pb.FillerParameter` (float32).

    Raises:
        NetDefinitionError: an unknown filler type, or a shape the filler cannot fill.
    """
    shape = tuple(int(d) for d in shape)
    kind = filler.type
    if kind == "constant":
        out = np.full(shape, filler.value)
    elif kind == "uniform":
        out = rng.uniform(filler.min, filler.max, shape)
    elif kind == "gaussian":
        out = rng.normal(filler.mean, filler.std, shape)
        if filler.sparse >= 0:
            out = out * (rng.random(shape) < filler.sparse / shape[0])
    elif kind == "xavier":
        bound = math.sqrt(3.0 / _fan_n(filler, shape))
        out = rng.uniform(-bound, bound, shape)
    elif kind == "msra":
        out = rng.normal(0.0, math.sqrt(2.0 / _fan_n(filler, shape)), shape)
    elif kind == "positive_unitball":
        out = rng.random(shape).reshape(shape[0], -1)
        out = (out / out.sum(axis=1, keepdims=True)).reshape(shape)
    elif kind == "bilinear":
        out = _bilinear(shape)
    else:
        raise NetDefinitionError(f"unknown filler type {kind!r}; use constant, uniform, gaussian, xavier, msra, "
                                 "positive_unitball or bilinear")
    return np.ascontiguousarray(out, dtype=np.float32)


def _weight_and_bias(p) -> List:
    return [p.weight_filler] + ([p.bias_filler] if p.bias_term else [])


def blob_fillers(layer) -> List:
    """The `pb.FillerParameter` of each learnable blob of a `pb.LayerParameter`, with Caffe's defaults, as
    each layer's LayerSetUp reads them: Convolution, Deconvolution, InnerProduct [weight_filler, bias_filler
    (bias_term)]; PReLU [filler, default constant 0.25]; Scale [filler, default constant 1 (one bottom only),
    bias_filler (bias_term)]; Bias [filler (one bottom only)]; BatchNorm three constant-0 statistics;
    any other type none."""
    kind = layer.type
    if kind in ("Convolution", "Deconvolution"):
        return _weight_and_bias(layer.convolution_param)
    if kind == "InnerProduct":
        return _weight_and_bias(layer.inner_product_param)
    if kind == "PReLU":
        p = layer.prelu_param
        return [p.filler if p.HasField("filler") else constant_filler(0.25)]
    if kind == "Scale":
        p = layer.scale_param
        fillers = [p.filler if p.HasField("filler") else constant_filler(1.0)] if len(layer.bottom) == 1 else []
        return fillers + ([p.bias_filler] if p.bias_term else [])
    if kind == "Bias":
        return [layer.bias_param.filler] if len(layer.bottom) == 1 else []
    if kind == "BatchNorm":
        return [constant_filler(0.0)] * 3
    return []


def fresh_blobs(layers: Iterable, param_shapes: Dict[str, List[Shape]], seed: int | None = None) -> Blobs:
    """{layer name: [blob, ...]}: the fresh values of a net's learnable blobs, as Net::Init leaves them.

    Blobs are drawn in net order from one numpy generator seeded `seed` (each from `blob_fillers`); a blob
    shared by name (`param { name: ... }`) is drawn once, by the first layer naming it (Caffe's owner), and
    the later sharers hold its values (reshaped to their own shapes, as Caffe's PERMISSIVE sharing allows).

    Args:
        layers: the net's `pb.LayerParameter`s in order (after filtering by phase).
        param_shapes: {layer name: learnable-blob shapes} (`dynsal.caffe.shapes.infer_shapes`).
        seed: seed of the random fillers.

    Raises:
        NetDefinitionError: a layer whose fillers do not cover its blobs, an unknown filler type.
    """
    rng = np.random.default_rng(seed)
    owners: Dict[str, np.ndarray] = {}
    blobs: Blobs = {}
    for layer in layers:
        shapes = param_shapes.get(layer.name) or []
        if not shapes:
            continue
        fillers, specs = blob_fillers(layer), list(layer.param)
        if len(fillers) != len(shapes):
            raise NetDefinitionError(f"layer {layer.name!r}: {len(fillers)} fillers for {len(shapes)} blobs")
        arrays = []
        for i, (filler, shape) in enumerate(zip(fillers, shapes)):
            shared = specs[i].name if i < len(specs) else ""
            if shared in owners:
                arrays.append(owners[shared].reshape(shape))
                continue
            arrays.append(fill(filler, shape, rng))
            if shared:
                owners[shared] = arrays[-1]
        blobs[layer.name] = arrays
    return blobs
