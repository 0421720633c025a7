"""Convolution, Deconvolution, Pooling and LRN lowered to ONNX with Caffe's semantics.

- Convolution → Conv, Deconvolution → ConvTranspose (weights in Caffe's layouts, which are ONNX's;
  groups, dilation, per-axis pad/stride; ConvTranspose's default output size is Caffe's
  s(in − 1) + d(k − 1) + 1 − 2p). Plain convolution: the torch engine's FFT path is an
  implementation detail of its CPU inference and has no place in an exported graph.
- Pooling: Caffe's output size (`dynsal.caffe.pooling.pooled_size`: ceil or floor, then — when either
  axis is padded — the clip that drops a last window starting at or beyond input + pad, on both axes)
  is computed as `Size`s, so a dynamic export
  keeps it at every input size. The input is padded by exactly pad on the left and
  max(0, (out − 1)·s + k − in − pad) on the right, and pooled without rounding (floor mode), which
  yields exactly Caffe's windows: padding never wins MAX (ONNX pads, or the lowest float with an
  explicit Pad when the pads are not fixed or not smaller than the kernel — which is also Caffe's
  value for a window wholly outside the input, possible with pad 0 and kernel < stride, where AVE
  gives Caffe's 0/0 = NaN), and AVE sums are divided by Caffe's
  pool size, the window clipped to [−pad, in + pad) — AveragePool divides by k_h·k_w and a factor
  k_h·k_w / Caffe's count corrects the windows that differ (none in floor mode). MAX's second top,
  Caffe's mask, is the input-plane index h·W + w of each window's first maximum (from MaxPool's
  Indices). global_pooling → GlobalMaxPool / GlobalAveragePool.
- LRN ACROSS_CHANNELS → ONNX LRN (bias = k: the same x·(k + α/n·Σx²)^−β); WITHIN_CHANNEL as Caffe
  builds it: x·(1 + α·AVE_{n×n}(x²))^−β, the average over a zero-padded window of n² cells.
"""
from __future__ import annotations

import numpy as np
from onnx import TensorProto

from dynsal.caffe.pooling import ave_pool_sizes, lrn_unsupported, pooled_size, pooling_geometry, pooling_unsupported
from dynsal.caffe.schema import pb
from dynsal.caffe.shapes import conv_geometry
from dynsal.export.builder import Size
from dynsal.export.registry import LayerExport, lowering


def _convolution(ctx: LayerExport, op_type: str) -> None:
    b, p = ctx.builder, ctx.param.convolution_param
    axis, kernel, stride, pad, dilation = conv_geometry(ctx.param, ctx.shapes[0])
    if axis != 1:
        raise ctx.refuse(f"convolution over channel axis {axis}; only axis 1 exports")
    weights = [b.floats(ctx.blobs[0], f"{ctx.name}/weight")]
    if p.bias_term:
        weights.append(b.floats(ctx.blobs[1], f"{ctx.name}/bias"))
    for bottom, top in zip(ctx.bottoms, ctx.tops):
        b.op(op_type, [bottom] + weights, out=top, kernel_shape=list(kernel), strides=list(stride),
             pads=list(pad) * 2, dilations=list(dilation), group=int(p.group))


@lowering("Convolution")
def convolution(ctx: LayerExport) -> None:
    _convolution(ctx, "Conv")


@lowering("Deconvolution")
def deconvolution(ctx: LayerExport) -> None:
    _convolution(ctx, "ConvTranspose")


def _window_counts(ctx: LayerExport, size: Size, out: Size, kernel: int, stride: int, pad: int) -> str:
    """`dynsal.caffe.pooling.ave_pool_sizes` computed in the graph from dynamic sizes: a 1-D float tensor of
    length out."""
    b = ctx.builder
    positions = b.op("Range", [b.scalar(b.size(0)), b.scalar(out), b.scalar(b.size(1))], hint=f"{ctx.name}/o")
    starts = b.op("Sub", [b.op("Mul", [positions, b.ints([stride])]), b.ints([pad])])
    ends = b.op("Min", [b.op("Add", [starts, b.ints([kernel])]), (size + pad).tensor()])
    return b.op("Cast", [b.op("Sub", [ends, starts])], to=b.float_type, hint=f"{ctx.name}/counts")


def _ave_factor(ctx: LayerExport, sizes, outs, kernel, stride, pad) -> str | None:
    """k_h·k_w / Caffe's pool size, (out_h, out_w), or None where every window is a full k_h·k_w."""
    b = ctx.builder
    full = kernel[0] * kernel[1]
    geometry = list(zip(sizes, outs, kernel, stride, pad))
    if all(s.known for s in sizes):
        area = np.outer(*(np.array(ave_pool_sizes(s.static, o.static, k, st, p)) for s, o, k, st, p in geometry))
        if (area == full).all():
            return None
        with np.errstate(divide="ignore"):  # a window beyond in + pad has pool size 0: Caffe's 0/0 is NaN too
            return b.floats(full / area, f"{ctx.name}/divisor")
    if ctx.param.pooling_param.round_mode == pb.PoolingParameter.FLOOR:
        return None  # floor mode: the last window ends at or before in + pad, every window is full
    rows, cols = (_window_counts(ctx, *axis) for axis in geometry)
    area = b.op("Mul", [b.op("Unsqueeze", [rows, b.ints([1])]), cols])
    return b.op("Div", [b.floats(np.array(full), f"{ctx.name}/window"), area], hint=f"{ctx.name}/divisor")


def _mask(ctx: LayerExport, indices: str, plane: Size, width: Size, padded=None) -> None:
    """Caffe's mask top from MaxPool's flat Indices: h·W + w in the unpadded input plane, as floats.
    `padded` = (padded plane, padded width, top pad, left pad) when the input was padded by a Pad node."""
    b = ctx.builder
    if padded is None:
        index = b.op("Mod", [indices, plane.tensor()])
    else:
        padded_plane, padded_width, top, left = padded
        cell = b.op("Mod", [indices, padded_plane.tensor()])
        row = b.op("Sub", [b.op("Div", [cell, padded_width.tensor()]), b.ints([top])])
        col = b.op("Sub", [b.op("Mod", [cell, padded_width.tensor()]), b.ints([left])])
        index = b.op("Add", [b.op("Mul", [row, width.tensor()]), col])
    b.op("Cast", [index], out=ctx.tops[1], to=b.float_type)


def _global_pooling(ctx: LayerExport, is_max: bool) -> None:
    b = ctx.builder
    if len(ctx.tops) == 1:
        b.op("GlobalMaxPool" if is_max else "GlobalAveragePool", [ctx.bottoms[0]], out=ctx.tops[0])
        return
    if ctx.is_dynamic():
        raise ctx.refuse("a mask top of global pooling needs the input size fixed; export without --dynamic")
    height, width = ctx.shapes[0][2:]
    _, indices = b.ops("MaxPool", [ctx.bottoms[0]], [ctx.tops[0], b.fresh(f"{ctx.name}/indices")],
                       kernel_shape=[height, width])
    _mask(ctx, indices, b.size(height * width), b.size(width))


@lowering("Pooling")
def pooling(ctx: LayerExport) -> None:
    b, p = ctx.builder, ctx.param.pooling_param
    problem = pooling_unsupported(ctx.param)
    if problem:
        raise ctx.refuse(problem)
    is_max = p.pool == pb.PoolingParameter.MAX
    if len(ctx.tops) > 1 and b.float_type == TensorProto.FLOAT16:
        raise ctx.refuse("its mask top holds indices up to H·W, which fp16 does not represent exactly; "
                         "export with --precision fp32")
    if p.global_pooling:
        _global_pooling(ctx, is_max)
        return
    kernel, stride, pad = pooling_geometry(ctx.param, ctx.shapes[0])
    ceil_mode = p.round_mode == pb.PoolingParameter.CEIL
    sizes = [ctx.dim(0, 2), ctx.dim(0, 3)]
    outs = [pooled_size(s, k, st, pd, ceil_mode, clip=any(pad)) for s, k, st, pd in zip(sizes, kernel, stride, pad)]
    right = [((o - 1) * st + k - s - pd).maximum(0) for s, o, k, st, pd in zip(sizes, outs, kernel, stride, pad)]
    window = dict(kernel_shape=list(kernel), strides=list(stride))
    x, padded = ctx.bottoms[0], None
    if all(r.known for r in right) and all(r.static < k for r, k in zip(right, kernel)):
        window["pads"] = [pad[0], pad[1], right[0].static, right[1].static]
    else:
        fill = b.floats(np.array(np.finfo(b.float_dtype).min if is_max else 0.0), f"{ctx.name}/fill")
        x = b.op("Pad", [x, b.ints([0, 0, pad[0], pad[1], 0, 0, right[0], right[1]]), fill], mode="constant",
                 hint=f"{ctx.name}/padded")
        padded_height, padded_width = sizes[0] + pad[0] + right[0], sizes[1] + pad[1] + right[1]
        padded = (padded_height * padded_width, padded_width, pad[0], pad[1])
    if is_max:
        if len(ctx.tops) == 1:
            b.op("MaxPool", [x], out=ctx.tops[0], **window)
            return
        _, indices = b.ops("MaxPool", [x], [ctx.tops[0], b.fresh(f"{ctx.name}/indices")], **window)
        _mask(ctx, indices, sizes[0] * sizes[1], sizes[1], padded)
        return
    factor = _ave_factor(ctx, sizes, outs, kernel, stride, pad)
    average = b.op("AveragePool", [x], out=ctx.tops[0] if factor is None else None, hint=f"{ctx.name}/mean",
                   count_include_pad=1, **window)
    if factor is not None:
        b.op("Mul", [average, factor], out=ctx.tops[0])


@lowering("LRN")
def lrn(ctx: LayerExport) -> None:
    b, p = ctx.builder, ctx.param.lrn_param
    size = int(p.local_size)
    problem = lrn_unsupported(ctx.param)
    if problem:
        raise ctx.refuse(problem)
    if p.norm_region == pb.LRNParameter.ACROSS_CHANNELS:
        b.op("LRN", [ctx.bottoms[0]], out=ctx.tops[0], size=size, alpha=float(p.alpha), beta=float(p.beta),
             bias=float(p.k))
        return
    x, half = ctx.bottoms[0], (size - 1) // 2
    square = b.op("Mul", [x, x], hint=f"{ctx.name}/square")
    mean = b.op("AveragePool", [square], kernel_shape=[size, size], strides=[1, 1], pads=[half] * 4,
                count_include_pad=1, hint=f"{ctx.name}/mean")
    scale = b.op("Add", [b.op("Mul", [mean, b.floats(np.array(p.alpha), f"{ctx.name}/alpha")]),
                         b.floats(np.array(1.0), f"{ctx.name}/one")], hint=f"{ctx.name}/scale")
    power = b.op("Pow", [scale, b.floats(np.array(-p.beta), f"{ctx.name}/beta")], hint=f"{ctx.name}/power")
    b.op("Mul", [x, power], out=ctx.tops[0])
