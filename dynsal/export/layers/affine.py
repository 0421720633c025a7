"""InnerProduct, BatchNorm, Scale, Bias and Softmax lowered to ONNX.

- InnerProduct: the axes ≥ `axis` flattened (Reshape), then Gemm (axis 1) or MatMul + Add:
  y = x·Wᵀ + b with W (num_output, K), or y = x·W with W (K, num_output) when `transpose`.
- BatchNorm with stored statistics (use_global_stats, the TEST default): BatchNormalization with
  mean b0/s, variance b1/s (0 when s = 0), unit scale and zero shift: (x − mean)/√(var + eps).
  With batch statistics: the mean and biased variance over every axis but 1, computed in the graph.
- Scale: x·γ (+ β with bias_term); Bias: x + b. γ / b is the learned blob or bottom 1, of shape
  bottom.shape[axis:axis + num_axes], given trailing unit axes to broadcast.
- Softmax → Softmax along `axis` (opset ≥ 13: one axis, as Caffe).
"""
from __future__ import annotations

import numpy as np

from dynsal.caffe.shapes import canonical_axis
from dynsal.export.layers.structure import reshape_to
from dynsal.export.registry import LayerExport, lowering


@lowering("InnerProduct")
def inner_product(ctx: LayerExport) -> None:
    b, p = ctx.builder, ctx.param.inner_product_param
    axis = canonical_axis(p.axis, len(ctx.shapes[0]), ctx.param)
    flat = ctx.bottoms[0]
    if len(ctx.shapes[0]) != axis + 1:
        flat = reshape_to(ctx, flat, axis, [-1], len(ctx.shapes[0]), None)
    bias = [b.floats(ctx.blobs[1], f"{ctx.name}/bias")] if p.bias_term else []
    if axis == 1:
        weight = b.floats(ctx.blobs[0], f"{ctx.name}/weight")
        b.op("Gemm", [flat, weight] + bias, out=ctx.tops[0], transB=0 if p.transpose else 1)
        return
    matrix = ctx.blobs[0] if p.transpose else ctx.blobs[0].T
    product = b.op("MatMul", [flat, b.floats(matrix, f"{ctx.name}/weight")], out=None if bias else ctx.tops[0])
    if bias:
        b.op("Add", [product] + bias, out=ctx.tops[0])


def _channel_axes(ctx: LayerExport):
    return [0] + list(range(2, len(ctx.shapes[0])))


@lowering("BatchNorm")
def batch_norm(ctx: LayerExport) -> None:
    b, p = ctx.builder, ctx.param.batch_norm_param
    if len(ctx.shapes[0]) < 2:
        raise ctx.refuse("BatchNorm of a 1-D blob has no channel axis to export")
    global_stats = p.use_global_stats if p.HasField("use_global_stats") else True  # exports run the TEST phase
    x, eps = ctx.bottoms[0], float(p.eps)
    if global_stats:
        factor = ctx.blobs[2][0]
        factor = np.float32(0) if factor == 0 else np.float32(1) / factor
        mean, var = ctx.blobs[0] * factor, ctx.blobs[1] * factor
        channels = len(mean)
        b.op("BatchNormalization", [x, b.floats(np.ones(channels), f"{ctx.name}/unit"),
                                    b.floats(np.zeros(channels), f"{ctx.name}/zero"),
                                    b.floats(mean, f"{ctx.name}/mean"), b.floats(var, f"{ctx.name}/var")],
             out=ctx.tops[0], epsilon=eps)
        return
    axes = _channel_axes(ctx)
    centred = b.op("Sub", [x, b.reduce("ReduceMean", x, axes, keepdims=True)], hint=f"{ctx.name}/centred")
    var = b.reduce("ReduceMean", b.op("Mul", [centred, centred]), axes, keepdims=True, hint=f"{ctx.name}/var")
    std = b.op("Sqrt", [b.op("Add", [var, b.floats(np.array(eps), f"{ctx.name}/eps")])], hint=f"{ctx.name}/std")
    b.op("Div", [centred, std], out=ctx.tops[0])


def _operand(ctx: LayerExport, param, blob: np.ndarray | None, what: str) -> str:
    """γ or b broadcast against bottom 0: the learned `blob`, or bottom 1, with trailing unit axes."""
    b = ctx.builder
    axis = canonical_axis(param.axis, len(ctx.shapes[0]), ctx.param)
    shape = ctx.shapes[1] if blob is None else blob.shape
    trailing = len(ctx.shapes[0]) - axis - len(shape)
    if blob is not None:
        return b.floats(blob.reshape(tuple(shape) + (1,) * trailing), f"{ctx.name}/{what}")
    if not trailing:
        return ctx.bottoms[1]
    return b.op("Unsqueeze", [ctx.bottoms[1], b.ints(list(range(len(shape), len(shape) + trailing)))])


@lowering("Scale")
def scale(ctx: LayerExport) -> None:
    b, p = ctx.builder, ctx.param.scale_param
    learned = len(ctx.bottoms) == 1
    gamma = _operand(ctx, p, ctx.blobs[0] if learned else None, "scale")
    scaled = b.op("Mul", [ctx.bottoms[0], gamma], out=None if p.bias_term else ctx.tops[0])
    if p.bias_term:
        b.op("Add", [scaled, _operand(ctx, p, ctx.blobs[-1], "bias")], out=ctx.tops[0])


@lowering("Bias")
def bias(ctx: LayerExport) -> None:
    learned = len(ctx.bottoms) == 1
    operand = _operand(ctx, ctx.param.bias_param, ctx.blobs[0] if learned else None, "bias")
    ctx.builder.op("Add", [ctx.bottoms[0], operand], out=ctx.tops[0])


@lowering("Softmax")
def softmax(ctx: LayerExport) -> None:
    axis = canonical_axis(ctx.param.softmax_param.axis, len(ctx.shapes[0]), ctx.param)
    ctx.builder.op("Softmax", ctx.bottoms, out=ctx.tops[0], axis=axis)
