"""Caffe's weight fillers (filler.hpp) for fresh nets, drawn with numpy.

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
from typing import Sequence

import numpy as np

from dynsal.caffe.schema import pb
from dynsal.errors import NetDefinitionError


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
