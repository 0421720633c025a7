"""InnerProduct, BatchNorm, Scale, Bias and Softmax as Caffe computes them.

- InnerProduct: flattens axes ≥ `axis`; y = x·Wᵀ + b with W (num_output, K), or y = x·W with
  W (K, num_output) when `transpose`.
- BatchNorm (no affine part; Caffe pairs it with Scale): blobs [mean accumulator, variance
  accumulator, scale factor s]; with stored statistics (use_global_stats, default in TEST) the
  mean is b0/s and the variance b1/s (factor 0 when s = 0); y = (x − mean)/√(var + eps) per
  channel (axis 1). With batch statistics (TRAIN default) the biased batch variance is used and
  the blobs are updated as Caffe does: s ← maf·s + 1, b0 ← maf·b0 + mean,
  b1 ← maf·b1 + m/(m − 1)·var (m = values per channel). The blobs never get gradients.
- Scale: y = x·γ (+ β with bias_term), γ of shape bottom.shape[axis:axis + num_axes] (or the
  second bottom), broadcast; fresh γ = 1 unless a filler is given, β = 0. Bias: y = x + b alike.
- Softmax: along `axis`.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from dynsal.caffe.fillers import blob_fillers
from dynsal.caffe.shapes import canonical_axis
from dynsal.engines.torch.registry import CaffeLayer, FunctionLayer, LayerContext, register


class InnerProductLayer(CaffeLayer):
    """Fully connected layer; blobs [weight, bias (if bias_term)]."""

    def __init__(self, ctx: LayerContext):
        p = ctx.param.inner_product_param
        super().__init__(ctx, blob_fillers(ctx.param))
        self.axis = canonical_axis(p.axis, len(ctx.bottom_shapes[0]), ctx.param)
        self.transpose = p.transpose

    def forward(self, x):
        flat = x.reshape(tuple(x.shape[:self.axis]) + (-1,))
        weight = self.blobs[0].t() if self.transpose else self.blobs[0]
        return (F.linear(flat, weight, self.blobs[1] if len(self.blobs) > 1 else None),)


@register("InnerProduct")
def inner_product(ctx: LayerContext) -> CaffeLayer:
    return InnerProductLayer(ctx)


class BatchNormLayer(CaffeLayer):
    """Caffe's BatchNorm; blobs [mean accumulator, variance accumulator, scale factor]."""

    def __init__(self, ctx: LayerContext):
        super().__init__(ctx, blob_fillers(ctx.param), learnable=False)
        p = ctx.param.batch_norm_param
        self.global_stats = p.use_global_stats if p.HasField("use_global_stats") else not ctx.train
        self.eps, self.fraction = p.eps, p.moving_average_fraction

    def _channel_view(self, values, x):
        return values.reshape((1, -1) + (1,) * (x.dim() - 2))

    def forward(self, x):
        axes = [0] + list(range(2, x.dim()))
        if self.global_stats:
            factor = self.blobs[2].detach()[0]
            factor = torch.where(factor == 0, torch.zeros_like(factor), 1 / factor)
            mean, var = self.blobs[0].detach() * factor, self.blobs[1].detach() * factor
        else:
            mean, var = x.mean(dim=axes), x.var(dim=axes, unbiased=False)
            self._update(mean.detach(), var.detach(), x.numel() // x.shape[1])
        centred = x - self._channel_view(mean, x)
        return (centred / torch.sqrt(self._channel_view(var, x) + self.eps),)

    @torch.no_grad()
    def _update(self, mean, var, m: int):
        self.blobs[2].mul_(self.fraction).add_(1)
        self.blobs[0].mul_(self.fraction).add_(mean)
        self.blobs[1].mul_(self.fraction).add_(var * (m / (m - 1) if m > 1 else 1))


@register("BatchNorm")
def batch_norm(ctx: LayerContext) -> CaffeLayer:
    return BatchNormLayer(ctx)


def _broadcast(values, x, axis: int):
    """`values` (shape x.shape[axis:axis + k]) viewed to broadcast against x."""
    return values.reshape((1,) * axis + tuple(values.shape) + (1,) * (x.dim() - axis - values.dim()))


class AffineLayer(CaffeLayer):
    """Scale (x·γ [+ β]) or Bias (x + b); γ or b from the second bottom when there is one."""

    def __init__(self, ctx: LayerContext, scale: bool):
        p = ctx.param.scale_param if scale else ctx.param.bias_param
        learned = len(ctx.param.bottom) == 1
        super().__init__(ctx, blob_fillers(ctx.param))
        self.scale, self.learned = scale, learned
        self.axis = canonical_axis(p.axis, len(ctx.bottom_shapes[0]), ctx.param)

    def forward(self, x, *operand):
        factor = operand[0] if operand else self.blobs[0]
        if not self.scale:
            return (x + _broadcast(factor, x, self.axis),)
        y = x * _broadcast(factor, x, self.axis)
        if len(self.blobs) > int(self.learned):
            y = y + _broadcast(self.blobs[-1], x, self.axis)
        return (y,)


@register("Scale")
def scale(ctx: LayerContext) -> CaffeLayer:
    return AffineLayer(ctx, scale=True)


@register("Bias")
def bias(ctx: LayerContext) -> CaffeLayer:
    return AffineLayer(ctx, scale=False)


@register("Softmax")
def softmax(ctx: LayerContext) -> CaffeLayer:
    axis = canonical_axis(ctx.param.softmax_param.axis, len(ctx.bottom_shapes[0]), ctx.param)
    return FunctionLayer(ctx, lambda x: torch.softmax(x, dim=axis))


