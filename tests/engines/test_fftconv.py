"""The tiled-FFT convolution equals direct convolution (to float32 rounding)."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from dynsal.engines.torch import fftconv


@pytest.mark.parametrize("kernel,pad,hw,batch,n", [(5, (2, 2), (13, 17), 2, 12), (7, (3, 1), (9, 30), 1, 18),
                                                   (11, (5, 5), (12, 16), 1, 32), (5, (0, 0), (5, 5), 3, 12),
                                                   (3, (1, 1), (20, 9), 1, 8), (13, (6, 6), (30, 40), 1, 64),
                                                   (7, (3, 3), (31, 45), 2, 48), (2, (0, 1), (6, 7), 1, 16)])
def test_fft_conv_equals_direct(kernel, pad, hw, batch, n):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn((batch, 6) + hw, generator=gen)
    w, b = torch.randn(4, 6, kernel, kernel, generator=gen), torch.randn(4, generator=gen)
    y = fftconv.fft_conv2d(x, fftconv.kernel_transform(w, n), b, kernel, pad, n)
    ref = F.conv2d(x, w, b, padding=pad)
    assert y.shape == ref.shape
    assert (y - ref).abs().max() <= 1e-5 * ref.abs().max()


def test_kernel_transform_is_the_conjugated_rfft2():
    w = torch.randn(3, 4, 7, 7, generator=torch.Generator().manual_seed(1))
    ref = torch.fft.rfft2(w, s=(18, 18)).conj().permute(2, 3, 0, 1).reshape(-1, 3, 4)
    assert (fftconv.kernel_transform(w, 18) - ref).abs().max() <= 1e-5 * ref.abs().max()
