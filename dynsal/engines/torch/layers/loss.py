"""Loss layers: EuclideanLoss, SigmoidCrossEntropyLoss, SoftmaxWithLoss (their top 0 is a scalar).

- EuclideanLoss: Σ(a − b)² / (2N), N = a.shape[0]; b only needs a's count per item; both bottoms
  get diffs.
- SigmoidCrossEntropyLoss: per element max(x, 0) − x·t + log(1 + e^−|x|) (Caffe's stable form),
  summed over targets ≠ ignore_label and divided by the normaliser (default BATCH_SIZE); the
  targets get no diff.
- SoftmaxWithLoss: −Σ log(max(p_label, FLT_MIN)) over positions whose label ≠ ignore_label, softmax
  along `softmax_param.axis`, divided by the normaliser (default VALID); optional top 1 = the
  probabilities; the diff is (p − 1{label}) / normaliser even where the FLT_MIN clamp is active
  (Caffe's analytic gradient); the labels get no diff.
Normalisers (LossLayer::GetNormalizer): FULL = all positions, VALID = non-ignored positions,
BATCH_SIZE = the product of the axes before the softmax axis (N), NONE = 1; at least 1. The
`normalization` field wins; else the deprecated `normalize` (true: VALID, false: BATCH_SIZE).
"""
from __future__ import annotations

import math

import numpy as np
import torch

from dynsal.caffe.losses import MODES as _MODES
from dynsal.caffe.losses import normalization_mode
from dynsal.caffe.plain import PlainMessage
from dynsal.caffe.shapes import canonical_axis
from dynsal.engines.torch.registry import CaffeLayer, FunctionLayer, LayerContext, register
from dynsal.errors import NetDefinitionError

FLT_MIN = float(np.finfo(np.float32).tiny)


def normalizer(mode: int, outer: int, inner: int, valid):
    """LossLayer::GetNormalizer: the divisor of a summed loss, at least 1."""
    if mode == _MODES.FULL:
        value = outer * inner
    elif mode == _MODES.VALID:
        value = valid
    elif mode == _MODES.BATCH_SIZE:
        value = outer
    else:
        value = 1
    return torch.clamp(torch.as_tensor(value, dtype=torch.float32), min=1.0)


def _euclidean(a, b):
    diff = a - b.reshape(a.shape)
    return (diff * diff).sum() / (2 * a.shape[0])


@register("EuclideanLoss")
def euclidean_loss(ctx: LayerContext) -> CaffeLayer:
    return FunctionLayer(ctx, _euclidean)


def _ignored(target, loss_param):
    if loss_param.HasField("ignore_label"):
        return target == loss_param.ignore_label
    return torch.zeros_like(target, dtype=torch.bool)


def _sigmoid_cross_entropy(x, target, loss_param, mode: int):
    target = target.detach().reshape(x.shape)
    ignored = _ignored(target, loss_param)
    per_element = torch.clamp(x, min=0) - x * target + torch.log1p(torch.exp(-torch.abs(x)))
    per_element = torch.where(ignored, torch.zeros_like(per_element), per_element)
    outer = x.shape[0]
    norm = normalizer(mode, outer, x.numel() // outer, (~ignored).sum()).to(x.device)
    return per_element.sum() / norm


@register("SigmoidCrossEntropyLoss")
def sigmoid_cross_entropy_loss(ctx: LayerContext) -> CaffeLayer:
    loss_param = PlainMessage(ctx.param.loss_param)  # read in forward: plain values trace under torch.compile
    mode = normalization_mode(loss_param, _MODES.BATCH_SIZE)
    return FunctionLayer(ctx, lambda x, t: _sigmoid_cross_entropy(x, t, loss_param, mode))


def _softmax_loss(x, label, axis: int, loss_param, mode: int, with_prob: bool):
    outer, channels = math.prod(x.shape[:axis]), x.shape[axis]
    inner = x.numel() // (outer * channels)
    if label.numel() != outer * inner:
        raise NetDefinitionError(f"SoftmaxWithLoss: {label.numel()} labels for {outer * inner} positions "
                                 f"(prediction {tuple(x.shape)}, softmax axis {axis})")
    prob = torch.softmax(x, dim=axis)
    label = label.detach().reshape(outer, 1, inner)
    ignored = _ignored(label, loss_param)
    index = torch.where(ignored, torch.zeros_like(label), label).long()
    picked = torch.gather(prob.reshape(outer, channels, inner), 1, index)
    log_p = torch.log(torch.clamp(picked, min=FLT_MIN)).detach()  # the value Caffe reports
    log_p_grad = torch.gather(torch.log_softmax(x, dim=axis).reshape(outer, channels, inner), 1, index)
    log_p = log_p + (log_p_grad - log_p_grad.detach())  # Caffe's gradient prob − 1{label}, also under the clamp
    loss = -torch.where(ignored, torch.zeros_like(log_p), log_p).sum()
    loss = loss / normalizer(mode, outer, inner, (~ignored).sum()).to(x.device)
    return (loss, prob) if with_prob else loss


@register("SoftmaxWithLoss")
def softmax_with_loss(ctx: LayerContext) -> CaffeLayer:
    axis = canonical_axis(ctx.param.softmax_param.axis, len(ctx.bottom_shapes[0]), ctx.param)
    loss_param = PlainMessage(ctx.param.loss_param)
    mode = normalization_mode(loss_param, _MODES.VALID)
    with_prob = len(ctx.param.top) > 1
    return FunctionLayer(ctx, lambda x, label: _softmax_loss(x, label, axis, loss_param, mode, with_prob))
