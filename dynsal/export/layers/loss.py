"""Loss layers lowered to ONNX (their top 0 is a 0-d tensor, as Caffe's loss blob):

- EuclideanLoss: Σ(a − b)² / (2N), N = a.shape[0] (b reshaped to a's shape).
- SigmoidCrossEntropyLoss: Σ over targets ≠ ignore_label of max(x, 0) − x·t + log(1 + e^−|x|)
  (Caffe's stable form), divided by the normaliser (default BATCH_SIZE).
- SoftmaxWithLoss: −Σ log(max(p_label, FLT_MIN)) over positions whose label ≠ ignore_label, softmax
  along `softmax_param.axis`, divided by the normaliser (default VALID); top 1 = the probabilities.
Normalisers (LossLayer::GetNormalizer): FULL = all positions, VALID = non-ignored positions (all
without an ignore_label), BATCH_SIZE = the product of the axes before the softmax axis, NONE = 1;
at least 1. FLT_MIN is the smallest normal number of the exported float type.
"""
from __future__ import annotations

import math

import numpy as np
from onnx import TensorProto

from dynsal.caffe.losses import MODES, normalization_mode
from dynsal.caffe.shapes import canonical_axis
from dynsal.export.builder import Size
from dynsal.export.registry import LayerExport, lowering


def _product(ctx: LayerExport, sizes) -> Size:
    return math.prod(sizes, start=ctx.builder.size(1))


def _float_scalar(ctx: LayerExport, size: Size) -> str:
    """A Size as a 0-d tensor of the exported float type."""
    b = ctx.builder
    if size.known:
        return b.floats(np.array(size.static), f"{ctx.name}/count")
    return b.op("Cast", [b.scalar(size)], to=b.float_type, hint=f"{ctx.name}/count")


def _sum_all(ctx: LayerExport, x: str, ndim: int, hint: str) -> str:
    return ctx.builder.reduce("ReduceSum", x, list(range(ndim)), keepdims=False, hint=f"{ctx.name}/{hint}")


def _normalise(ctx: LayerExport, total: str, mode: int, outer: Size, inner: Size, valid: str | None) -> None:
    """tops[0] = total / max(normaliser, 1); `valid` is the 0-d count of non-ignored positions."""
    b = ctx.builder
    if mode == MODES.VALID and valid is not None:
        count = valid
    else:
        count = _float_scalar(ctx, {MODES.FULL: outer * inner, MODES.VALID: outer * inner,
                                    MODES.BATCH_SIZE: outer}.get(mode, b.size(1)))
    divisor = b.op("Max", [count, b.floats(np.array(1.0), f"{ctx.name}/one")], hint=f"{ctx.name}/normaliser")
    b.op("Div", [total, divisor], out=ctx.tops[0])


def _ignored(ctx: LayerExport, labels: str, ndim: int):
    """(bool mask of `labels` (`ndim` axes) == ignore_label, 0-d float count of the others), or (None, None)."""
    b, loss_param = ctx.builder, ctx.param.loss_param
    if not loss_param.HasField("ignore_label"):
        return None, None
    mask = b.op("Equal", [labels, b.floats(np.array(loss_param.ignore_label), f"{ctx.name}/ignore")],
                hint=f"{ctx.name}/ignored")
    kept = b.op("Cast", [b.op("Not", [mask])], to=b.float_type)
    return mask, _sum_all(ctx, kept, ndim, "valid")


def _zero_where(ctx: LayerExport, mask: str | None, x: str) -> str:
    if mask is None:
        return x
    return ctx.builder.op("Where", [mask, ctx.builder.floats(np.array(0.0), f"{ctx.name}/zero"), x])


@lowering("EuclideanLoss")
def euclidean_loss(ctx: LayerExport) -> None:
    b = ctx.builder
    a, target = ctx.bottoms
    diff = b.op("Sub", [a, b.op("Reshape", [target, b.op("Shape", [a])])], hint=f"{ctx.name}/diff")
    total = _sum_all(ctx, b.op("Mul", [diff, diff]), len(ctx.shapes[0]), "sum")
    twice_n = _float_scalar(ctx, ctx.dim(0, 0) * 2)
    b.op("Div", [total, twice_n], out=ctx.tops[0])


@lowering("SigmoidCrossEntropyLoss")
def sigmoid_cross_entropy_loss(ctx: LayerExport) -> None:
    b = ctx.builder
    x = ctx.bottoms[0]
    target = b.op("Reshape", [ctx.bottoms[1], b.op("Shape", [x])], hint=f"{ctx.name}/target")
    softplus = b.op("Softplus", [b.op("Neg", [b.op("Abs", [x])])])
    per_element = b.op("Add", [b.op("Sub", [b.op("Relu", [x]), b.op("Mul", [x, target])]), softplus])
    mask, valid = _ignored(ctx, target, len(ctx.shapes[0]))
    total = _sum_all(ctx, _zero_where(ctx, mask, per_element), len(ctx.shapes[0]), "sum")
    dims = ctx.dims(0)
    _normalise(ctx, total, normalization_mode(ctx.param.loss_param, MODES.BATCH_SIZE), dims[0],
               _product(ctx, dims[1:]), valid)


@lowering("SoftmaxWithLoss")
def softmax_with_loss(ctx: LayerExport) -> None:
    b = ctx.builder
    ndim = len(ctx.shapes[0])
    axis = canonical_axis(ctx.param.softmax_param.axis, ndim, ctx.param)
    dims = ctx.dims(0)
    outer, channels, inner = _product(ctx, dims[:axis]), dims[axis], _product(ctx, dims[axis + 1:])
    prob = b.op("Softmax", [ctx.bottoms[0]], out=ctx.tops[1] if len(ctx.tops) > 1 else None, axis=axis,
                hint=f"{ctx.name}/prob")
    prob = b.op("Reshape", [prob, b.ints([outer, channels, inner])])
    labels = b.op("Reshape", [ctx.bottoms[1], b.ints([outer, 1, inner])], hint=f"{ctx.name}/labels")
    mask, valid = _ignored(ctx, labels, 3)
    index = b.op("Cast", [_zero_where(ctx, mask, labels)], to=TensorProto.INT64, hint=f"{ctx.name}/index")
    picked = b.op("GatherElements", [prob, index], axis=1, hint=f"{ctx.name}/picked")
    tiny = b.floats(np.array(np.finfo(b.float_dtype).tiny), f"{ctx.name}/flt_min")
    log_p = b.op("Log", [b.op("Max", [picked, tiny])], hint=f"{ctx.name}/log_p")
    total = b.op("Neg", [_sum_all(ctx, _zero_where(ctx, mask, log_p), 3, "sum")])
    _normalise(ctx, total, normalization_mode(ctx.param.loss_param, MODES.VALID), outer, inner, valid)
