"""Caffe's Pooling and LRN rules, written once for every back end: the shape inference
(`dynsal.caffe.shapes`), the torch engine and the exporter call these.

Caffe keeps a layer's geometry in the layer (`pooling_layer.cpp`: LayerSetUp reads kernel, stride and pad,
Reshape computes the pooled size, Forward_cpu the AVE pool size and the MAX mask); so does this module. The size
functions take plain ints or the exporter's traced sizes (`dynsal.export.builder.Size`: +, −, ·, // and
`at_least`), so a fixed and a dynamic export compute the very same rule.
"""
from __future__ import annotations

from typing import Optional, Sequence, Tuple

from dynsal.caffe.schema import pb
from dynsal.errors import NetDefinitionError


def pooling_geometry(layer, bottom: Sequence[int]):
    """(kernel, stride, pad) per spatial axis (H, W) of a Pooling layer, after global_pooling
    (PoolingLayer::LayerSetUp, with its checks)."""
    p = layer.pooling_param
    pad = [p.pad_h, p.pad_w] if (p.HasField("pad_h") or p.HasField("pad_w")) else [p.pad] * 2
    stride = [p.stride_h, p.stride_w] if p.HasField("stride_h") else [p.stride] * 2
    if p.global_pooling:
        if p.HasField("kernel_size") or p.HasField("kernel_h"):
            raise NetDefinitionError(f"layer {layer.name!r}: global_pooling takes no kernel size")
        if any(pad) or stride != [1, 1]:
            raise NetDefinitionError(f"layer {layer.name!r}: global_pooling needs pad 0 and stride 1 (Caffe's "
                                     f"check), got pad {pad}, stride {stride}")
        return list(bottom[2:]), [1, 1], [0, 0]
    if p.HasField("kernel_size") == (p.HasField("kernel_h") or p.HasField("kernel_w")):
        raise NetDefinitionError(f"layer {layer.name!r}: give kernel_size or kernel_h + kernel_w")
    kernel = [p.kernel_h, p.kernel_w] if p.HasField("kernel_h") else [p.kernel_size] * 2
    if any(pd >= k for pd, k in zip(pad, kernel)):
        raise NetDefinitionError(f"layer {layer.name!r}: pad {pad} must be smaller than kernel {kernel}")
    return kernel, stride, pad


def pooled_size(size, kernel: int, stride: int, pad: int, ceil_mode: bool, clip: bool):
    """Caffe's pooling output along one axis (PoolingLayer::Reshape), for an int or a traced size.

    ceil (or floor) of (size + 2·pad − kernel) / stride, plus 1 — Caffe divides in float32, which equals
    this integer rounding for every size below 2^24. Then, when `clip` (Caffe: `pad_h || pad_w`, so also on
    an axis without padding), an axis whose last window would start at or beyond size + pad loses it.
    Without padding no window is removed, so a last window may lie wholly outside the input (Caffe then
    gives −FLT_MAX for MAX and 0/pool size for AVE).
    """
    out = (size + (2 * pad - kernel + (stride - 1 if ceil_mode else 0))) // stride + 1
    if clip:
        last_start = (out - 1) * stride
        out = out - (last_start.at_least(size + pad) if hasattr(last_start, "at_least")
                     else int(last_start >= size + pad))
    return out


def pooled_shape(hw: Sequence[int], kernel: Sequence[int], stride: Sequence[int], pad: Sequence[int],
                 ceil_mode: bool) -> Tuple[int, int]:
    """Caffe's pooling output (H, W): `pooled_size` on both axes, clipped on both when either is padded."""
    out_h, out_w = (pooled_size(s, k, st, p, ceil_mode, clip=any(pad)) for s, k, st, p in zip(hw, kernel, stride, pad))
    return out_h, out_w


def ave_pool_sizes(size: int, out: int, kernel: int, stride: int, pad: int) -> Tuple[int, ...]:
    """Caffe's AVE divisor along one axis for each of `out` windows (PoolingLayer::Forward_cpu's pool_size):
    the window [o·s − p, o·s − p + k) clipped at the end to size + pad, not at the start: it counts the
    leading padding, not the trailing cells a ceil-mode window hangs beyond size + pad. Plain ints, so that a
    compiled torch pass computes them at trace time."""
    return tuple(min(o * stride - pad + kernel, size + pad) - (o * stride - pad) for o in range(out))


def unpadded_plane_index(cell, padded_width, top: int, left: int, width):
    """Caffe's MAX mask index h·W + w in the unpadded input plane, from `cell`, the flat index of the same
    element in a plane padded by `top` rows and `left` columns to `padded_width` (arrays, tensors or ints)."""
    return (cell // padded_width - top) * width + cell % padded_width - left


def pooling_unsupported(layer) -> Optional[str]:
    """Why a Pooling layer cannot run on dynsal's back ends (None when it can): STOCHASTIC pooling draws random
    windows and has no CPU implementation in Caffe either; only MAX pooling has the mask top."""
    p = layer.pooling_param
    if p.pool not in (pb.PoolingParameter.MAX, pb.PoolingParameter.AVE):
        return "STOCHASTIC pooling is not supported (it draws random windows; Caffe has no CPU implementation " \
               "either): use MAX or AVE"
    if len(layer.top) > 1 and p.pool != pb.PoolingParameter.MAX:
        return "only MAX pooling has a second (mask) top"
    return None


def lrn_unsupported(layer) -> Optional[str]:
    """Why an LRN layer is invalid (None when it is valid): Caffe's LRNLayer::LayerSetUp needs an odd local_size."""
    size = layer.lrn_param.local_size
    return None if size % 2 else f"LRN local_size must be odd, got {size}"
