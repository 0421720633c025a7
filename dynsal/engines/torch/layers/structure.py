"""Layers that move data without arithmetic, plus Eltwise: Input, Split, Concat, Slice, Crop,
Flatten, Reshape, Eltwise.

Output shapes come from the shape rules of `dynsal.caffe.shapes` applied to the actual input shapes,
so these layers follow a net reshaped to new input sizes.
- Input: its tops are the values fed to the net (the net module handles it).
- Split (explicit or implicit): each top is a view of the bottom; the bottom's diff is the sum.
- Concat / Slice: along `axis` (or the deprecated concat_dim / slice_dim); Slice at `slice_point`s or
  in equal parts.
- Crop: bottom 0 cut to bottom 1's size on axes ≥ `axis`, at `offset` (none: 0; one: every axis).
- Eltwise: SUM Σ coeff_i·x_i (coeffs default 1), PROD Π x_i, MAX element-wise maximum (ties as Caffe).
- Crop's reference bottom gets no diff, as in Caffe.
The layers that apply a shape rule in forward read their LayerParameter as a `PlainMessage`, which
`torch.compile` can trace.
"""
from __future__ import annotations

import torch

from dynsal.caffe.plain import PlainMessage
from dynsal.caffe.schema import pb
from dynsal.caffe.shapes import SHAPE_RULES, canonical_axis
from dynsal.engines.torch.registry import CaffeLayer, FunctionLayer, LayerContext, register
from dynsal.errors import NetDefinitionError


class InputLayer(CaffeLayer):
    """Marks the net's inputs: the net module feeds its tops from the values given to forward."""

    def forward(self, *bottoms):
        raise RuntimeError("Input layers are fed by the net, not called")


@register("Input")
def input_layer(ctx: LayerContext) -> CaffeLayer:
    return InputLayer(ctx)


@register("Split")
def split(ctx: LayerContext) -> CaffeLayer:
    count = len(ctx.param.top)
    return FunctionLayer(ctx, lambda x: tuple(x.view_as(x) for _ in range(count)))


def _top_shapes(param, bottoms):
    return SHAPE_RULES[param.type](param, [tuple(b.shape) for b in bottoms])[0]


@register("Concat")
def concat(ctx: LayerContext) -> CaffeLayer:
    p = ctx.param.concat_param
    axis = canonical_axis(p.concat_dim if p.HasField("concat_dim") else p.axis, len(ctx.bottom_shapes[0]), ctx.param)
    return FunctionLayer(ctx, lambda *xs: torch.cat(xs, dim=axis))


@register("Slice")
def slice_layer(ctx: LayerContext) -> CaffeLayer:
    p, layer = ctx.param.slice_param, PlainMessage(ctx.param)
    axis = canonical_axis(p.slice_dim if p.HasField("slice_dim") else p.axis, len(ctx.bottom_shapes[0]), layer)
    return FunctionLayer(ctx, lambda x: torch.split(x, [s[axis] for s in _top_shapes(layer, [x])], dim=axis))


def _crop(layer, x, ref):
    top = _top_shapes(layer, [x, ref])[0]
    axis = canonical_axis(layer.crop_param.axis, x.dim(), layer)
    offsets = list(layer.crop_param.offset)
    n = x.dim() - axis
    offsets = offsets * n if len(offsets) == 1 else (offsets or [0] * n)
    index = [slice(None)] * axis + [slice(o, o + s) for o, s in zip(offsets, top[axis:])]
    return x[tuple(index)]


@register("Crop")
def crop(ctx: LayerContext) -> CaffeLayer:
    layer = PlainMessage(ctx.param)
    return FunctionLayer(ctx, lambda x, ref: _crop(layer, x, ref))


@register("Flatten", "Reshape")
def reshape(ctx: LayerContext) -> CaffeLayer:
    layer = PlainMessage(ctx.param)
    return FunctionLayer(ctx, lambda x: x.reshape(_top_shapes(layer, [x])[0]))


def _eltwise_sum(xs, coeffs):
    out = xs[0] * coeffs[0] if coeffs[0] != 1 else xs[0]
    for x, c in zip(xs[1:], coeffs[1:]):
        out = out + (x * c if c != 1 else x)
    return out


def _eltwise_prod(xs):
    out = xs[0]
    for x in xs[1:]:
        out = out * x
    return out


def _eltwise_max(xs):
    """Caffe's tie rule (it routes the gradient): bottom 1 wins ties with bottom 0; later ones must be greater."""
    out = torch.where(xs[0] > xs[1], xs[0], xs[1])
    for x in xs[2:]:
        out = torch.where(x > out, x, out)
    return out


@register("Eltwise")
def eltwise(ctx: LayerContext) -> CaffeLayer:
    p, n = ctx.param.eltwise_param, len(ctx.param.bottom)
    coeffs = list(p.coeff)
    if n < 2:
        raise NetDefinitionError(f"layer {ctx.name!r}: Eltwise needs at least 2 bottoms")
    if coeffs and (p.operation != pb.EltwiseParameter.SUM or len(coeffs) != n):
        raise NetDefinitionError(f"layer {ctx.name!r}: Eltwise coeffs need operation SUM and one coeff per bottom "
                                 f"({n}), got {len(coeffs)}")
    if p.operation == pb.EltwiseParameter.SUM:
        coeffs = coeffs or [1.0] * n
        return FunctionLayer(ctx, lambda *xs: _eltwise_sum(xs, coeffs))
    reduce = _eltwise_prod if p.operation == pb.EltwiseParameter.PROD else _eltwise_max
    return FunctionLayer(ctx, lambda *xs: reduce(xs))
