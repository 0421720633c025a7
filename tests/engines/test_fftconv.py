"""The tiled-FFT convolution equals direct convolution (to float32 rounding) and is used only where allowed."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from dynsal.engines.torch import fftconv
from tests.engines.layer_net import layer_net


@pytest.mark.parametrize("kernel,pad,hw,batch", [(5, (2, 2), (13, 17), 2), (7, (3, 1), (9, 30), 1),
                                                 (11, (5, 5), (12, 16), 1), (5, (0, 0), (5, 5), 3)])
def test_fft_conv_equals_direct(kernel, pad, hw, batch):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn((batch, 6) + hw, generator=gen)
    w, b = torch.randn(4, 6, kernel, kernel, generator=gen), torch.randn(4, generator=gen)
    n = fftconv.fft_size(kernel)
    y = fftconv.fft_conv2d(x, fftconv.kernel_transform(w, n), b, kernel, pad, n)
    ref = F.conv2d(x, w, b, padding=pad)
    assert y.shape == ref.shape
    assert (y - ref).abs().max() <= 1e-5 * ref.abs().max()


def test_kernel_transform_is_the_conjugated_rfft2():
    w = torch.randn(3, 4, 7, 7, generator=torch.Generator().manual_seed(1))
    ref = torch.fft.rfft2(w, s=(18, 18)).conj().permute(2, 3, 0, 1).reshape(-1, 3, 4)
    assert (fftconv.kernel_transform(w, 18) - ref).abs().max() <= 1e-5 * ref.abs().max()


def test_eligibility():
    assert fftconv.eligible((256, 512, 7, 7), (1, 1), (1, 1), 1)
    assert not fftconv.eligible((256, 512, 3, 3), (1, 1), (1, 1), 1)  # small kernel
    assert not fftconv.eligible((256, 512, 7, 7), (2, 2), (1, 1), 1)  # stride
    assert not fftconv.eligible((256, 512, 7, 7), (1, 1), (2, 2), 1)  # dilation
    assert not fftconv.eligible((256, 512, 7, 7), (1, 1), (1, 1), 2)  # groups
    assert not fftconv.eligible((256, 96, 5, 5), (1, 1), (1, 1), 1)  # few input channels
    assert fftconv.worthwhile(16, 16, 5) and not fftconv.worthwhile(15, 40, 5)  # two 8×8 tiles per axis


def test_convolution_layer_uses_fft_at_inference_and_follows_weight_changes():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 256, 17, 19)).astype(np.float32)
    w = (rng.standard_normal((64, 256, 5, 5)) / 80).astype(np.float32)
    net = layer_net("Convolution", {"x": x}, params=[w, np.zeros(64, np.float32)], num_output=64, kernel_size=5,
                    pad=2)
    layer = net.module.layers[1]
    assert layer.fft_ok and layer.spectra.spectrum is not None  # the forward went through the FFT path
    ref = F.conv2d(torch.from_numpy(x), torch.from_numpy(w), padding=2).numpy()
    np.testing.assert_allclose(net.blob("t0"), ref, atol=1e-5 * np.abs(ref).max())
    net.set_params({"layer": [2 * w, np.ones(64, np.float32)]})
    np.testing.assert_allclose(net.forward(x=x)["t0"], 2 * ref + 1, atol=1e-5 * np.abs(ref).max())
