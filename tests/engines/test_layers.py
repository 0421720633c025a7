"""Torch-engine layers against hand-written numpy references of Caffe's loops (caffe-semantics.md §3)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from tests.engines.layer_net import layer_net, tops

RNG = np.random.default_rng(0)


def _randn(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


FLT_MAX = float(np.finfo(np.float32).max)


def caffe_pooled_hw(h, w, kernel, stride, pad, ceil=True):
    """PoolingLayer::Reshape (BVLC 99bd997): ceil/floor of float (in + 2·pad − kernel) / stride, + 1; then
    `if (pad_h_ || pad_w_)` each of the two axes drops a last window starting at or beyond in + pad."""
    rounding = math.ceil if ceil else math.floor
    pooled = [int(rounding(float(np.float32(size + 2 * p - k) / np.float32(s)))) + 1
              for size, k, s, p in zip((h, w), kernel, stride, pad)]
    if pad[0] or pad[1]:
        for axis, size in enumerate((h, w)):
            if (pooled[axis] - 1) * stride[axis] >= size + pad[axis]:
                pooled[axis] -= 1
    return pooled


def caffe_pool(x, kernel, stride, pad, ave, ceil=True):
    """PoolingLayer::Forward_cpu's loops (MAX/AVE), transcribed: MAX starts at −FLT_MAX and takes strictly
    greater elements; AVE sums the clipped window and divides by the pool size counted before clipping to
    the input (hend = min(hstart + kernel, in + pad))."""
    n, c, h, w = x.shape
    oh, ow = caffe_pooled_hw(h, w, kernel, stride, pad, ceil)
    y = np.zeros((n, c, oh, ow), np.float64)
    for i in range(oh):
        for j in range(ow):
            hs, ws = i * stride[0] - pad[0], j * stride[1] - pad[1]
            he, we = min(hs + kernel[0], h + pad[0]), min(ws + kernel[1], w + pad[1])
            size = (he - hs) * (we - ws)
            window = x[:, :, max(hs, 0):min(he, h), max(ws, 0):min(we, w)].reshape(n, c, -1)
            if ave:
                y[:, :, i, j] = window.sum(axis=2) / size
            else:
                y[:, :, i, j] = np.maximum(window.max(axis=2, initial=-np.inf), -FLT_MAX)
    return y


POOL_CASES = [  # (H, W), kernel, stride, pad: the clip triggers in the first two; the last has pad > kernel / 2
    ((5, 7), (1, 3), (3, 2), (0, 1)),  # padding on W only: Caffe clips H's last window too -> 2×4 (3×4 per axis)
    ((7, 5), (3, 1), (2, 3), (1, 0)),  # the same transposed
    ((5, 7), (1, 3), (3, 2), (0, 0)),  # no padding, no clip: H's last window lies outside (MAX −FLT_MAX, AVE −0)
    ((5, 7), (2, 2), (2, 2), (1, 1)),
    ((21, 13), (3, 2), (2, 3), (1, 1)),
    ((9, 10), (3, 3), (2, 2), (0, 0)),
    ((8, 8), (4, 3), (3, 1), (2, 1)),
    ((6, 11), (5, 5), (4, 4), (2, 2)),
    ((7, 9), (3, 2), (2, 1), (2, 1)),
]


@pytest.mark.parametrize("pool", ["MAX", "AVE"])
@pytest.mark.parametrize("hw,kernel,stride,pad", POOL_CASES)
def test_pooling_matches_caffe_loops(pool, hw, kernel, stride, pad):
    x = _randn(2, 3, *hw)
    net = layer_net("Pooling", {"x": x}, pool=pool, kernel_h=kernel[0], kernel_w=kernel[1], stride_h=stride[0],
                    stride_w=stride[1], pad_h=pad[0], pad_w=pad[1])
    np.testing.assert_allclose(tops(net)[0], caffe_pool(x, kernel, stride, pad, pool == "AVE"), rtol=1e-5, atol=1e-6)


def caffe_max_mask(x, kernel, stride, pad):
    """PoolingLayer::Forward_cpu's mask: per window, h·W + w of the first element greater than all before it
    (starting from −FLT_MAX, mask −1)."""
    expected = caffe_pool(x, kernel, stride, pad, ave=False)
    n, c, h, w = x.shape
    mask = np.full(expected.shape, -1.0)
    for i in range(expected.shape[2]):
        for j in range(expected.shape[3]):
            hs, ws = i * stride[0] - pad[0], j * stride[1] - pad[1]
            for b in range(n):
                for ch in range(c):
                    best = -FLT_MAX
                    for y in range(max(hs, 0), min(hs + kernel[0], h)):
                        for xx in range(max(ws, 0), min(ws + kernel[1], w)):
                            if x[b, ch, y, xx] > best:
                                best, mask[b, ch, i, j] = x[b, ch, y, xx], y * w + xx
    return mask


@pytest.mark.parametrize("hw,kernel,stride,pad", POOL_CASES)
def test_max_pooling_mask_top_is_caffes(hw, kernel, stride, pad):
    """The optional second top of MAX pooling, on PyTorch's own pooling and on the explicitly padded path;
    ties (a constant block) go to the first element in scan order, as in Caffe."""
    x = _randn(2, 3, *hw)
    x[:, 0, :3, :3] = 0.5  # ties
    net = layer_net("Pooling", {"x": x}, ntop=2, pool="MAX", kernel_h=kernel[0], kernel_w=kernel[1],
                    stride_h=stride[0], stride_w=stride[1], pad_h=pad[0], pad_w=pad[1])
    values, mask = tops(net, 2)
    np.testing.assert_allclose(values, caffe_pool(x, kernel, stride, pad, False), rtol=1e-6)
    np.testing.assert_array_equal(mask, caffe_max_mask(x, kernel, stride, pad))
    with pytest.raises(Exception, match="only MAX pooling has a second"):
        layer_net("Pooling", {"x": x}, ntop=2, pool="AVE", kernel_size=2)


def test_pooling_floor_mode_and_global():
    x = _randn(1, 2, 9, 8)
    floor = layer_net("Pooling", {"x": x}, pool="MAX", kernel_size=3, stride=2, round_mode="FLOOR")
    np.testing.assert_allclose(tops(floor)[0], caffe_pool(x, (3, 3), (2, 2), (0, 0), False, ceil=False))
    glob = layer_net("Pooling", {"x": x}, pool="AVE", global_pooling=True)
    np.testing.assert_allclose(tops(glob)[0], x.mean(axis=(2, 3), keepdims=True), rtol=1e-5)


def test_lrn_across_and_within_channels():
    x = _randn(2, 5, 6, 7)
    across = layer_net("LRN", {"x": x}, local_size=3, alpha=0.5, beta=0.6, k=2)
    sq = np.pad(x.astype(np.float64) ** 2, ((0, 0), (1, 1), (0, 0), (0, 0)))
    window = sq[:, :-2] + sq[:, 1:-1] + sq[:, 2:]
    np.testing.assert_allclose(tops(across)[0], x * (2 + 0.5 / 3 * window) ** -0.6, rtol=1e-5)
    within = layer_net("LRN", {"x": x}, local_size=3, alpha=0.3, beta=0.7, k=5, norm_region="WITHIN_CHANNEL")
    sq = np.pad(x.astype(np.float64) ** 2, ((0, 0), (0, 0), (1, 1), (1, 1)))
    window = sum(sq[:, :, i:i + 6, j:j + 7] for i in range(3) for j in range(3))
    np.testing.assert_allclose(tops(within)[0], x * (1 + 0.3 / 9 * window) ** -0.7, rtol=1e-5)  # k ignored


def _conv_reference(x, w, b, stride, pad, dilation, group):
    n, c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (pad[0], pad[0]), (pad[1], pad[1])))
    oh = (h + 2 * pad[0] - (dilation[0] * (kh - 1) + 1)) // stride[0] + 1
    ow = (wd + 2 * pad[1] - (dilation[1] * (kw - 1) + 1)) // stride[1] + 1
    y = np.zeros((n, o, oh, ow))
    per_group = o // group
    for f in range(o):
        g = f // per_group
        for i in range(kh):
            for j in range(kw):
                patch = xp[:, g * cg:(g + 1) * cg, i * dilation[0]:, j * dilation[1]:]
                patch = patch[:, :, :oh * stride[0]:stride[0], :ow * stride[1]:stride[1]][:, :, :oh, :ow]
                y[:, f] += np.einsum("nchw,c->nhw", patch, w[f, :, i, j])
        y[:, f] += b[f]
    return y


def test_convolution_group_dilation_pad_stride_forms():
    x, w, b = _randn(2, 4, 9, 11), _randn(6, 2, 3, 2), _randn(6)
    net = layer_net("Convolution", {"x": x}, params=[w, b], num_output=6, group=2, kernel_h=3, kernel_w=2,
                    stride_h=2, stride_w=1, pad_h=2, pad_w=1, dilation=2)
    np.testing.assert_allclose(tops(net)[0], _conv_reference(x, w, b, (2, 1), (2, 1), (2, 2), 2), rtol=1e-4,
                               atol=1e-5)


def test_deconvolution_is_the_scatter_of_each_input_value():
    x, w = _randn(1, 4, 3, 4), _randn(4, 3, 3, 3)  # group 2: weight (C_in, num_output / group, k, k)
    net = layer_net("Deconvolution", {"x": x}, params=[w], num_output=6, group=2, kernel_size=3, stride=2, pad=1,
                    bias_term=False)
    full = np.zeros((1, 6, 2 * 2 + 3, 2 * 3 + 3))
    for c in range(4):
        g = c // 2
        for i in range(3):
            for j in range(4):
                full[0, g * 3:(g + 1) * 3, 2 * i:2 * i + 3, 2 * j:2 * j + 3] += x[0, c, i, j] * w[c]
    np.testing.assert_allclose(tops(net)[0], full[:, :, 1:-1, 1:-1], rtol=1e-4, atol=1e-5)


def test_eltwise_sum_prod_max():
    a, b, c = _randn(2, 3, 4), _randn(2, 3, 4), _randn(2, 3, 4)
    feed = {"a": a, "b": b, "c": c}
    np.testing.assert_allclose(tops(layer_net("Eltwise", feed, coeff=[0.5, -2, 3]))[0], 0.5 * a - 2 * b + 3 * c,
                               rtol=1e-5)
    np.testing.assert_allclose(tops(layer_net("Eltwise", feed, operation="PROD"))[0], a * b * c, rtol=1e-5)
    np.testing.assert_array_equal(tops(layer_net("Eltwise", feed, operation="MAX"))[0], np.maximum(np.maximum(a, b), c))


def test_eltwise_max_routes_ties_like_caffe():
    """Ties between bottoms 0 and 1 go to bottom 1; a later bottom must be strictly greater."""
    x = np.ones((1, 4), np.float32)
    net = layer_net("Eltwise", {"a": x, "b": x, "c": x}, operation="MAX", force_backward=True)
    net.backward({"t0": np.ones((1, 4))})
    assert [net.blob_diff(b).sum() for b in "abc"] == [0, 4, 0]


def test_crop_slice_concat_flatten_reshape():
    x, ref = _randn(2, 3, 7, 8), _randn(2, 1, 4, 5)
    np.testing.assert_array_equal(tops(layer_net("Crop", {"x": x, "r": ref}, axis=2, offset=[2, 1]))[0],
                                  x[:, :, 2:6, 1:6])
    np.testing.assert_array_equal(tops(layer_net("Crop", {"x": x, "r": ref}, axis=1, offset=[1]))[0],
                                  x[:, 1:2, 1:5, 1:6])
    parts = tops(layer_net("Slice", {"x": x}, ntop=3, axis=3, slice_point=[1, 5]), 3)
    assert [p.shape[3] for p in parts] == [1, 4, 3]
    np.testing.assert_array_equal(np.concatenate(parts, axis=3), x)
    np.testing.assert_array_equal(tops(layer_net("Concat", {"x": x, "y": x[:, :2]}, axis=1))[0],
                                  np.concatenate([x, x[:, :2]], axis=1))
    assert tops(layer_net("Flatten", {"x": x}, axis=2))[0].shape == (2, 3, 56)
    reshaped = tops(layer_net("Reshape", {"x": x}, shape=dict(dim=[0, -1, 4])))[0]
    np.testing.assert_array_equal(reshaped, x.reshape(2, 42, 4))


def test_neurons():
    x = _randn(2, 3, 4, 5)
    np.testing.assert_allclose(tops(layer_net("ReLU", {"x": x}, negative_slope=0.2))[0], np.where(x > 0, x, 0.2 * x),
                               rtol=1e-6)
    slopes = np.array([0.1, -0.5, 2.0], np.float32)
    np.testing.assert_allclose(tops(layer_net("PReLU", {"x": x}, params=[slopes]))[0],
                               np.where(x > 0, x, slopes[None, :, None, None] * x), rtol=1e-6)
    np.testing.assert_allclose(tops(layer_net("Sigmoid", {"x": x}))[0], 1 / (1 + np.exp(-x)), rtol=1e-5)
    np.testing.assert_allclose(tops(layer_net("TanH", {"x": x}))[0], np.tanh(x), rtol=1e-5, atol=1e-7)
    np.testing.assert_array_equal(tops(layer_net("AbsVal", {"x": x}))[0], np.abs(x))
    np.testing.assert_allclose(tops(layer_net("Power", {"x": x}, power=3, scale=0.5, shift=1))[0], (1 + 0.5 * x) ** 3,
                               rtol=1e-5)
    np.testing.assert_array_equal(tops(layer_net("Power", {"x": x}, power=2, scale=0, shift=3))[0], np.full_like(x, 9))
    np.testing.assert_array_equal(tops(layer_net("Dropout", {"x": x}, dropout_ratio=0.3))[0], x)  # TEST: identity


def test_dropout_in_train_scales_the_kept_values():
    x = np.ones((1, 20000), np.float32)
    y = tops(layer_net("Dropout", {"x": x}, phase="train", dropout_ratio=0.25))[0]
    kept = y != 0
    np.testing.assert_allclose(y[kept], 1 / 0.75, rtol=1e-6)
    assert abs(kept.mean() - 0.75) < 0.02


def test_inner_product_both_layouts():
    x, w, b = _randn(3, 2, 2, 2), _randn(5, 8), _randn(5)
    np.testing.assert_allclose(tops(layer_net("InnerProduct", {"x": x}, params=[w, b], num_output=5))[0],
                               x.reshape(3, 8) @ w.T + b, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(tops(layer_net("InnerProduct", {"x": x}, params=[w.T.copy()], num_output=5,
                                              transpose=True, bias_term=False))[0], x.reshape(3, 8) @ w.T, rtol=1e-5,
                               atol=1e-6)


def test_batch_norm_stored_statistics_and_zero_factor():
    x = _randn(2, 3, 4, 5)
    mean, var = np.array([1.0, -2.0, 0.5], np.float32), np.array([4.0, 1.0, 9.0], np.float32)
    net = layer_net("BatchNorm", {"x": x}, params=[mean * 2, var * 2, np.array([2.0], np.float32)], eps=1e-3)
    expected = (x - mean[None, :, None, None]) / np.sqrt(var[None, :, None, None] + 1e-3)
    np.testing.assert_allclose(tops(net)[0], expected, rtol=1e-5, atol=1e-6)
    zero = layer_net("BatchNorm", {"x": x}, params=[mean, var, np.array([0.0], np.float32)])
    np.testing.assert_allclose(tops(zero)[0], x / np.sqrt(1e-5), rtol=1e-5)  # factor 0: mean = var = 0


def test_batch_norm_batch_statistics_update_the_blobs():
    x = _randn(4, 2, 3, 3)
    net = layer_net("BatchNorm", {"x": x}, phase="train", moving_average_fraction=0.5,
                    params=[np.ones(2, np.float32), np.ones(2, np.float32), np.array([1.0], np.float32)])
    m = x.mean(axis=(0, 2, 3))
    v = x.var(axis=(0, 2, 3))
    np.testing.assert_allclose(tops(net)[0], (x - m[None, :, None, None]) / np.sqrt(v[None, :, None, None] + 1e-5),
                               rtol=1e-4, atol=1e-5)
    blobs = net.params()["layer"]
    np.testing.assert_allclose(blobs[0], 0.5 + m, rtol=1e-5)
    np.testing.assert_allclose(blobs[1], 0.5 + v * 36 / 35, rtol=1e-5)
    np.testing.assert_allclose(blobs[2], [1.5])


def test_scale_and_bias_broadcast():
    x = _randn(2, 3, 4, 5)
    gamma, beta = _randn(3, 4), _randn(3, 4)
    net = layer_net("Scale", {"x": x}, params=[gamma, beta], num_axes=2, bias_term=True)
    np.testing.assert_allclose(tops(net)[0], x * gamma[None, :, :, None] + beta[None, :, :, None], rtol=1e-5)
    fresh = layer_net("Scale", {"x": x})  # γ filled with 1
    np.testing.assert_array_equal(tops(fresh)[0], x)
    factor = _randn(2, 3)
    two = layer_net("Scale", {"x": x, "f": factor}, axis=0)
    np.testing.assert_allclose(tops(two)[0], x * factor[:, :, None, None], rtol=1e-6)
    bias = _randn(5)
    np.testing.assert_allclose(tops(layer_net("Bias", {"x": x}, params=[bias], axis=-1))[0], x + bias, rtol=1e-6)


def test_softmax_axis():
    x = _randn(2, 3, 4)
    e = np.exp(x - x.max(axis=2, keepdims=True))
    np.testing.assert_allclose(tops(layer_net("Softmax", {"x": x}, axis=2))[0], e / e.sum(axis=2, keepdims=True),
                               rtol=1e-5)


def test_euclidean_loss():
    a, b = _randn(3, 4, 2), _randn(3, 8)
    net = layer_net("EuclideanLoss", {"a": a, "b": b})
    np.testing.assert_allclose(tops(net)[0], ((a.reshape(3, 8) - b) ** 2).sum() / 6, rtol=1e-5)


@pytest.mark.parametrize("normalization,divisor", [(None, "batch"), ("VALID", "valid"), ("FULL", "full"),
                                                   ("NONE", "none")])
def test_sigmoid_cross_entropy_normalisation_and_ignore(normalization, divisor):
    x, t = _randn(2, 3, 4), RNG.uniform(0, 1, (2, 3, 4)).astype(np.float32)
    t[0, 0, :2] = -1
    extra = {"normalization": normalization} if normalization else {}
    net = layer_net("SigmoidCrossEntropyLoss", {"x": x, "t": t}, loss_param=dict(ignore_label=-1, **extra))
    valid = t != -1
    per = np.maximum(x, 0) - x * t + np.log1p(np.exp(-np.abs(x)))
    norm = {"batch": 2, "valid": valid.sum(), "full": 24, "none": 1}[divisor]
    np.testing.assert_allclose(tops(net)[0], per[valid].sum() / norm, rtol=1e-5)


@pytest.mark.parametrize("loss_param,norm", [({}, "valid"), ({"normalize": False}, "batch"),
                                             ({"normalization": "FULL"}, "full")])
def test_softmax_with_loss_normalisation_ignore_and_prob_top(loss_param, norm):
    x = _randn(2, 4, 3)
    label = RNG.integers(0, 4, (2, 3)).astype(np.float32)
    label[0, 0] = 2
    net = layer_net("SoftmaxWithLoss", {"x": x, "label": label}, ntop=2, loss_weight=[1, 0],
                    loss_param=dict(ignore_label=2, **loss_param))
    e = np.exp(x - x.max(axis=1, keepdims=True))
    prob = e / e.sum(axis=1, keepdims=True)
    valid = label != 2
    picked = np.take_along_axis(prob, label.astype(int)[:, None, :], axis=1)[:, 0]
    divisor = {"valid": valid.sum(), "batch": 2, "full": 6}[norm]
    loss, probs = tops(net, 2)
    np.testing.assert_allclose(loss, -np.log(picked[valid]).sum() / divisor, rtol=1e-5)
    np.testing.assert_allclose(probs, prob, rtol=1e-5)


def test_softmax_with_loss_gradient_under_the_flt_min_clamp():
    """p_label underflows: the loss is −log(FLT_MIN)/N and the diff still (p − 1{label})/N, as Caffe."""
    x = np.array([[0.0, 300.0]], np.float32)
    net = layer_net("SoftmaxWithLoss", {"x": x, "label": np.zeros(1, np.float32)}, force_backward=True)
    np.testing.assert_allclose(tops(net)[0], -np.log(np.finfo(np.float32).tiny), rtol=1e-6)
    net.backward()
    np.testing.assert_allclose(net.blob_diff("x"), [[-1.0, 1.0]], atol=1e-6)
