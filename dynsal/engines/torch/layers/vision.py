"""Convolution, Deconvolution, Pooling and LRN as Caffe computes them.

- Convolution: cross-correlation with weight (num_output, C/group, *kernel), groups in contiguous
  channel blocks, dilation, per-axis pad/stride (the `pad`/`kernel_size`/`stride` or `_h`/`_w`
  forms, read by `dynsal.caffe.shapes.conv_geometry`); 1 to 3 spatial axes after channel axis 1.
  2-D convolutions at CPU float32 inference run on the algorithm measured fastest for their shape
  (`convalgo`: direct, channels_last, tiled FFT, Winograd), except inside `torch.compile`d passes,
  which convolve directly.
- Deconvolution: the transposed convolution with weight (C_in, num_output/group, *kernel) and
  output size s(in − 1) + d(k − 1) + 1 − 2p (no output padding).
- Pooling: MAX / AVE with Caffe's rules from `dynsal.caffe.pooling` (output size: ceil or floor,
  then — when either axis is padded — the clip that keeps each axis's last window starting inside
  input + pad). The input is padded explicitly (−inf for MAX, so padding never wins; 0 for AVE) to
  exactly the extent the windows cover; AVE divides each window's sum by Caffe's pool size: the
  window clipped to [−pad, in + pad), i.e. counting padding cells but none beyond in + pad. A MAX
  window holding nothing greater than −FLT_MAX (one wholly outside the input) gives −FLT_MAX and mask
  −1, Caffe's initial values. global_pooling pools H×W. PyTorch's own pooling is used where it
  computes the same windows (see PoolingLayer). MAX's optional second top is Caffe's mask: the
  input-plane index h·W + w of each window's first maximum.
- LRN ACROSS_CHANNELS: x·(k + α/n·Σ_{n channels} x²)^−β; WITHIN_CHANNEL: x·(1 + α/n²·Σ_{n×n} x²)^−β
  (Caffe builds it from Power/Pooling/Eltwise layers and ignores `k`).
"""
from __future__ import annotations

from functools import lru_cache

import torch
import torch.nn.functional as F

from dynsal.caffe.fillers import blob_fillers
from dynsal.caffe.pooling import (
    ave_pool_sizes,
    lrn_unsupported,
    pooled_shape,
    pooling_geometry,
    pooling_unsupported,
    unpadded_plane_index,
)
from dynsal.caffe.schema import pb
from dynsal.caffe.shapes import conv_geometry
from dynsal.engines.torch import convalgo
from dynsal.engines.torch.registry import CaffeLayer, FunctionLayer, LayerContext, register
from dynsal.errors import NetDefinitionError

_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
_DECONV = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}


class ConvLayer(CaffeLayer):
    """Convolution or Deconvolution; blobs [weight, bias (if bias_term)]."""

    def __init__(self, ctx: LayerContext, transposed: bool):
        p = ctx.param.convolution_param
        super().__init__(ctx, blob_fillers(ctx.param))
        axis, _, stride, pad, dilation = conv_geometry(ctx.param, ctx.bottom_shapes[0])
        spatial = len(ctx.bottom_shapes[0]) - 2
        if axis != 1 or spatial not in _CONV:
            raise NetDefinitionError(f"layer {ctx.name!r}: the torch engine runs convolutions over 1 to 3 spatial "
                                     f"axes after channel axis 1 (got axis {axis}, {spatial} spatial axes)")
        self.op = (_DECONV if transposed else _CONV)[spatial]
        self.options = dict(stride=tuple(stride), padding=tuple(pad), dilation=tuple(dilation), groups=p.group)
        self.convolutions = (convalgo.Convolutions(ctx.param_shapes[0], self.options)
                             if not transposed and spatial == 2 else None)
        self.env_forced = convalgo.forced_from_env(ctx.name)  # None: measured per shape
        self.forced = self.env_forced
        self.algorithms = {}  # input shape -> algorithm

    def force_algorithm(self, algorithm: str | None) -> None:
        """Run every shape with `algorithm` (see `convalgo`; "measure": the fastest measured), or as at load
        ($DYNSAL_CONV_ALGO, else measured) for None."""
        if algorithm is None:
            self.forced = self.env_forced
        else:
            self.forced = None if convalgo.check_algorithm(algorithm) == "measure" else algorithm
        self.algorithms = {}
        if self.convolutions is not None:
            self.convolutions.forget()

    def _choosable(self, x) -> bool:
        """Whether x's convolution may run on another algorithm than direct: 2-D, CPU float32 inference."""
        return (self.convolutions is not None and x.device.type == "cpu" and x.dtype == torch.float32
                and not torch.is_autocast_enabled("cpu")
                and not torch.compiler.is_compiling()  # its kernel transforms are Python state, not graph code
                and not (torch.is_grad_enabled() and (x.requires_grad or self.blobs[0].requires_grad)))

    def forward(self, *bottoms):
        bias = self.blobs[1] if len(self.blobs) > 1 else None
        return tuple(self._convolve(x, bias) for x in bottoms)

    def _convolve(self, x, bias):
        weight = self.blobs[0]
        if not self._choosable(x):
            return self.op(x, weight, bias, **self.options)
        shape = tuple(x.shape)
        algorithm = self.algorithms.get(shape)
        if algorithm is None:
            algorithm = self.algorithms[shape] = (
                self.convolutions.resolve(self.forced) if self.forced
                else convalgo.choose(self.convolutions, shape, weight, bias, x.dtype))
        return self.convolutions.run(algorithm, x, weight, bias)


@register("Convolution")
def convolution(ctx: LayerContext) -> CaffeLayer:
    return ConvLayer(ctx, transposed=False)


@register("Deconvolution")
def deconvolution(ctx: LayerContext) -> CaffeLayer:
    return ConvLayer(ctx, transposed=True)



@lru_cache(maxsize=256)
def _pool_plan(size: int, kernel: int, stride: int, pad: int, out: int, ceil_mode: bool):
    """(right padding, Caffe's AVE pool sizes, torch's own rule agrees) along one axis of `out` windows."""
    right = max(0, (out - 1) * stride + kernel - size - pad)
    counts = ave_pool_sizes(size, out, kernel, stride, pad)
    native = 2 * pad <= kernel and _torch_pooled_size(size, kernel, stride, pad, ceil_mode) == out
    return right, counts, native


def _torch_pooled_size(size: int, kernel: int, stride: int, pad: int, ceil_mode: bool) -> int:
    """PyTorch's pooling output size: like Caffe's, but its clip applies without padding too."""
    out = (size + 2 * pad - kernel + (stride - 1 if ceil_mode else 0)) // stride + 1
    if ceil_mode and (out - 1) * stride >= size + pad:
        out -= 1
    return out


def _max_pool(x, *args, return_indices: bool = False, **kwargs):
    """F.max_pool2d; on the CPU without indices via channels_last data, 2.5–4× faster there (the same values:
    a maximum does not round) and returned in x's memory order."""
    if return_indices or x.device.type != "cpu" or x.dim() != 4 or x.is_contiguous(memory_format=torch.channels_last):
        return F.max_pool2d(x, *args, return_indices=return_indices, **kwargs)
    pooled = F.max_pool2d(x.contiguous(memory_format=torch.channels_last), *args, **kwargs)
    return pooled.contiguous()


class PoolingLayer(CaffeLayer):
    """MAX or AVE pooling over H×W with Caffe's geometry (see the module docstring).

    Where PyTorch's own pooling has the same output size and pad ≤ kernel/2, it computes exactly
    Caffe's windows and AVE divisors (count_include_pad) and is used directly; otherwise the input
    is padded explicitly.
    """

    def __init__(self, ctx: LayerContext):
        super().__init__(ctx)
        p = ctx.param.pooling_param
        problem = pooling_unsupported(ctx.param)
        if problem:
            raise NetDefinitionError(f"layer {ctx.name!r}: {problem}")
        self.is_max = p.pool == pb.PoolingParameter.MAX
        self.with_mask = len(ctx.param.top) > 1
        self.ceil_mode = p.round_mode == pb.PoolingParameter.CEIL
        # read from the LayerParameter once: forward stays free of protobuf access, which torch.compile cannot trace
        self.geometry = pooling_geometry(ctx.param, tuple(ctx.bottom_shapes[0]))
        self.global_pooling = p.global_pooling

    def forward(self, x):
        kernel, stride, pad = self.geometry
        if self.global_pooling:  # the window is the whole input plane, whatever its size now
            kernel = list(x.shape[2:])
        oh, ow = pooled_shape(tuple(x.shape[2:]), kernel, stride, pad, self.ceil_mode)
        (rh, ch, native_h), (rw, cw, native_w) = (_pool_plan(int(s), k, st, p, o, self.ceil_mode) for s, k, st, p, o
                                                  in zip(x.shape[2:], kernel, stride, pad, (oh, ow)))
        if native_h and native_w:
            if self.is_max:
                return self._max_tops(_max_pool(x, kernel, stride, pad, ceil_mode=self.ceil_mode,
                                                return_indices=self.with_mask), oh, ow)
            return (F.avg_pool2d(x, kernel, stride, pad, ceil_mode=self.ceil_mode, count_include_pad=True),)
        width = x.shape[-1]
        if any(pad) or rh or rw:
            x = F.pad(x, (pad[1], rw, pad[0], rh), value=float("-inf") if self.is_max else 0.0)
        if self.is_max:
            return self._max_tops(_max_pool(x, kernel, stride, return_indices=self.with_mask), oh, ow,
                                  padded=(x.shape[-1], pad[0], pad[1], width))
        sums = F.avg_pool2d(x, kernel, stride, divisor_override=1)[..., :oh, :ow]
        counts = torch.tensor(ch, dtype=x.dtype, device=x.device)[:, None] * torch.tensor(cw, dtype=x.dtype,
                                                                                           device=x.device)
        return (sums / counts,)


    def _max_tops(self, pooled, oh: int, ow: int, padded=None):
        """(values,) or, with a mask top, (values, mask): Caffe's mask is the index h·W + w of each window's
        first maximum (scan order) in the unpadded input plane, as a float blob. PyTorch picks the same
        element; its index counts padded columns when the input was padded here (`padded` = padded
        width, top and left padding, original width), so it is mapped back. Caffe starts each window
        at −FLT_MAX with mask −1 and takes only greater values, so a window without one keeps both."""
        if not self.with_mask:
            pooled = pooled[..., :oh, :ow]
            return (pooled.clamp_min(torch.finfo(pooled.dtype).min),)
        values, index = (t[..., :oh, :ow] for t in pooled)
        if padded is not None:
            index = unpadded_plane_index(index, *padded)
        start = torch.finfo(values.dtype).min  # -FLT_MAX in fp32, the lowest finite value in other precisions
        return values.clamp_min(start), index.to(values.dtype).masked_fill(values <= start, -1.0)


@register("Pooling")
def pooling(ctx: LayerContext) -> CaffeLayer:
    return PoolingLayer(ctx)


def _lrn_across(x, size: int, alpha: float, beta: float, k: float):
    half = (size - 1) // 2
    squares = F.pad(x * x, (0, 0, 0, 0, half, half))
    channels = x.shape[1]
    window = squares[:, :channels].clone()  # summed in place: no new tensor per step
    for i in range(1, size):
        window.add_(squares[:, i:i + channels])
    if torch.is_grad_enabled() and x.requires_grad:
        return x * torch.pow(k + (alpha / size) * window, -beta)
    return window.mul_(alpha / size).add_(k).pow_(-beta).mul_(x)


def _lrn_within(x, size: int, alpha: float, beta: float):
    pooled = F.avg_pool2d(x * x, size, stride=1, padding=(size - 1) // 2, count_include_pad=True)
    return x * torch.pow(1 + alpha * pooled, -beta)


@register("LRN")
def lrn(ctx: LayerContext) -> CaffeLayer:
    p = ctx.param.lrn_param
    size, alpha, beta, k = p.local_size, p.alpha, p.beta, p.k
    problem = lrn_unsupported(ctx.param)
    if problem:
        raise NetDefinitionError(f"layer {ctx.name!r}: {problem}")
    if p.norm_region == pb.LRNParameter.WITHIN_CHANNEL:
        return FunctionLayer(ctx, lambda x: _lrn_within(x, size, alpha, beta))
    return FunctionLayer(ctx, lambda x: _lrn_across(x, size, alpha, beta, k))
