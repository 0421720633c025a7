"""Layers that move data, plus Eltwise and DummyData, lowered to ONNX.

- Split (explicit or implicit): an Identity per top, so every Caffe blob is a named ONNX value.
- Concat → Concat along `axis` (or concat_dim).
- Slice → one Slice per top, at the `slice_point`s or in equal parts (sizes computed where dynamic).
- Crop → Slice of bottom 0 at `offset` (none: 0; one: every axis) to bottom 1's size on axes ≥ axis.
- Flatten / Reshape → Reshape: the axes before `axis` are copied (ONNX 0), Caffe's 0 and −1 dims
  are ONNX's 0 and −1 (same position, same meaning), the axes after the reshaped range are given.
- Eltwise: SUM Σ coeff_i·x_i, PROD Π x_i, MAX → Max (which top wins a tie only matters for gradients).
- DummyData with constant fillers: a constant of the declared shape; random fillers (redrawn at
  every forward) are refused.
"""
from __future__ import annotations

import numpy as np

from dynsal.caffe.schema import pb
from dynsal.caffe.shapes import canonical_axis
from dynsal.export.registry import LayerExport, lowering


@lowering("Split")
def split(ctx: LayerExport) -> None:
    for top in ctx.tops:
        ctx.builder.op("Identity", [ctx.bottoms[0]], out=top)


@lowering("Concat")
def concat(ctx: LayerExport) -> None:
    p = ctx.param.concat_param
    axis = canonical_axis(p.concat_dim if p.HasField("concat_dim") else p.axis, len(ctx.shapes[0]), ctx.param)
    ctx.builder.op("Concat", ctx.bottoms, out=ctx.tops[0], axis=axis)


def _slice(ctx: LayerExport, x: str, top: str, axes, starts, ends) -> None:
    b = ctx.builder
    b.op("Slice", [x, b.ints(starts), b.ints(ends), b.ints(axes)], out=top)


@lowering("Slice")
def slice_layer(ctx: LayerExport) -> None:
    p = ctx.param.slice_param
    axis = canonical_axis(p.slice_dim if p.HasField("slice_dim") else p.axis, len(ctx.shapes[0]), ctx.param)
    size = ctx.dim(0, axis)
    if len(p.slice_point):
        bounds = [0] + [int(v) for v in p.slice_point] + [size]
    else:
        part = size // len(ctx.tops)
        bounds = [part * i for i in range(len(ctx.tops) + 1)]
    for i, top in enumerate(ctx.tops):
        _slice(ctx, ctx.bottoms[0], top, [axis], [bounds[i]], [bounds[i + 1]])


@lowering("Crop")
def crop(ctx: LayerExport) -> None:
    ndim = len(ctx.shapes[0])
    axis = canonical_axis(ctx.param.crop_param.axis, ndim, ctx.param)
    offsets = [int(v) for v in ctx.param.crop_param.offset]
    offsets = offsets * (ndim - axis) if len(offsets) == 1 else (offsets or [0] * (ndim - axis))
    ends = [offset + ctx.dim(1, axis + i) for i, offset in enumerate(offsets)]
    _slice(ctx, ctx.bottoms[0], ctx.tops[0], list(range(axis, ndim)), offsets, ends)


def reshape_to(ctx: LayerExport, x: str, lead: int, middle, tail_from: int, out: str) -> str:
    """Reshape bottom 0's value `x` to: its first `lead` axes (copied), the dims `middle` (ints in
    ONNX's meaning: 0 copies the axis at the same position, −1 is inferred), its axes ≥ `tail_from`."""
    tail = [ctx.dim(0, axis) for axis in range(tail_from, len(ctx.shapes[0]))]
    shape = ctx.builder.ints([0] * lead + list(middle) + tail)
    return ctx.builder.op("Reshape", [x, shape], out=out)


@lowering("Flatten")
def flatten(ctx: LayerExport) -> None:
    ndim = len(ctx.shapes[0])
    start = canonical_axis(ctx.param.flatten_param.axis, ndim, ctx.param)
    end = canonical_axis(ctx.param.flatten_param.end_axis, ndim, ctx.param)
    reshape_to(ctx, ctx.bottoms[0], start, [-1], end + 1, ctx.tops[0])


@lowering("Reshape")
def reshape(ctx: LayerExport) -> None:
    p, ndim = ctx.param.reshape_param, len(ctx.shapes[0])
    axis = p.axis if p.axis >= 0 else ndim + p.axis + 1
    end = ndim if p.num_axes == -1 else axis + p.num_axes
    reshape_to(ctx, ctx.bottoms[0], axis, [int(d) for d in p.shape.dim], end, ctx.tops[0])


@lowering("Eltwise")
def eltwise(ctx: LayerExport) -> None:
    b, p, n = ctx.builder, ctx.param.eltwise_param, len(ctx.bottoms)
    coeffs = [float(c) for c in p.coeff]
    if n < 2:
        raise ctx.refuse("Eltwise needs at least 2 bottoms")
    if coeffs and (p.operation != pb.EltwiseParameter.SUM or len(coeffs) != n):
        raise ctx.refuse(f"Eltwise coeffs need operation SUM and one coeff per bottom ({n}), got {len(coeffs)}")
    if p.operation == pb.EltwiseParameter.MAX:
        b.op("Max", ctx.bottoms, out=ctx.tops[0])
        return
    op_type = "Mul" if p.operation == pb.EltwiseParameter.PROD else "Add"
    terms = list(ctx.bottoms)
    for i, coeff in enumerate(coeffs):
        if coeff != 1:
            terms[i] = b.op("Mul", [terms[i], b.floats(np.array(coeff), f"{ctx.name}/coeff{i}")])
    total = terms[0]
    for i, term in enumerate(terms[1:], 1):
        total = b.op(op_type, [total, term], out=ctx.tops[0] if i == n - 1 else None)


@lowering("DummyData")
def dummy_data(ctx: LayerExport) -> None:
    b, fillers = ctx.builder, list(ctx.param.dummy_data_param.data_filler)
    for i, (top, shape) in enumerate(zip(ctx.tops, ctx.top_shapes)):
        filler = fillers[0 if len(fillers) == 1 else i] if fillers else pb.FillerParameter(type="constant")
        if filler.type != "constant":
            raise ctx.refuse(f"its {filler.type} filler draws new values at every forward; only constant "
                             "DummyData exports")
        b.op("Identity", [b.floats(np.full(shape, filler.value), f"{ctx.name}/{top}")], out=top)
