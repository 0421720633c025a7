"""Element-wise layers (Caffe's "neuron" layers): ReLU, PReLU, Sigmoid, TanH, AbsVal, Power, Dropout.

- ReLU: max(x, 0) + negative_slope·min(x, 0); gradient 0 (or the slope) at x = 0, as Caffe.
- PReLU: max(x, 0) + a_c·min(x, 0), one slope per channel (axis 1) or one shared; fresh slopes 0.25
  unless a filler is given.
- Power: (shift + scale·x)^power; when power·scale = 0 the output is the constant 1 (power 0) or
  shift^power, with zero gradient.
- Dropout: TRAIN keeps each value with probability 1 − p and scales it by 1/(1 − p); TEST is the
  identity (Caffe does not rescale at test time).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from dynsal.caffe.fillers import blob_fillers
from dynsal.engines.torch.registry import CaffeLayer, FunctionLayer, LayerContext, register


@register("ReLU")
def relu(ctx: LayerContext) -> CaffeLayer:
    slope = ctx.param.relu_param.negative_slope
    return FunctionLayer(ctx, (lambda x: F.leaky_relu(x, slope)) if slope else F.relu)


class PReLULayer(CaffeLayer):
    """Parametric ReLU; blob [slopes (C,) or (1,) when channel_shared]."""

    def __init__(self, ctx: LayerContext):
        super().__init__(ctx, blob_fillers(ctx.param))

    def forward(self, x):
        slope = self.blobs[0].reshape((1, -1) + (1,) * (x.dim() - 2))
        return (torch.where(x > 0, x, x * slope),)


@register("PReLU")
def prelu(ctx: LayerContext) -> CaffeLayer:
    return PReLULayer(ctx)


@register("Sigmoid")
def sigmoid(ctx: LayerContext) -> CaffeLayer:
    return FunctionLayer(ctx, torch.sigmoid)


@register("TanH")
def tanh(ctx: LayerContext) -> CaffeLayer:
    return FunctionLayer(ctx, torch.tanh)


@register("AbsVal")
def absval(ctx: LayerContext) -> CaffeLayer:
    return FunctionLayer(ctx, torch.abs)


def _power(x, power: float, scale: float, shift: float):
    if power * scale == 0:
        return torch.full_like(x, 1.0 if power == 0 else shift ** power)
    y = x * scale + shift if (scale != 1 or shift != 0) else x
    return y if power == 1 else torch.pow(y, power)


@register("Power")
def power(ctx: LayerContext) -> CaffeLayer:
    p = ctx.param.power_param
    values = (p.power, p.scale, p.shift)
    return FunctionLayer(ctx, lambda x: _power(x, *values))


@register("Dropout")
def dropout(ctx: LayerContext) -> CaffeLayer:
    ratio = ctx.param.dropout_param.dropout_ratio
    if ctx.train:
        return FunctionLayer(ctx, lambda x: F.dropout(x, ratio, training=True))
    return FunctionLayer(ctx, lambda x: x)
