"""Convolution by tiled FFT (overlap-save) on CPU.

Direct convolution of the saliency nets' 5×5 … 13×13 layers with hundreds of channels is compute-bound;
in the frequency domain each output tile needs one complex matrix product per frequency, 3–12× fewer
operations. The output is cut into t×t tiles; each input tile (t + k − 1 = n)² is transformed with
rfft2, multiplied per frequency with the conjugated transform of the kernels (cross-correlation, as
Caffe), transformed back, and its first t×t values kept. Which n (if any) is fastest depends on the
shape and the machine: `convalgo` measures it. Relative deviation from direct convolution is ≈1e-6
(float32). 2-D, stride 1, no dilation, one group, square kernel.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

#: the transform sizes tried (products of small primes: pocketfft's fastest)
FFT_SIZES = (8, 12, 16, 18, 24, 32, 48, 64)


def fft_size(kernel: int) -> int:
    """The default FFT size of a kernel (`fft` forced without a size): ≈2.4·k rounded up to a size of FFT_SIZES."""
    return next((n for n in FFT_SIZES if n >= 2.4 * kernel), FFT_SIZES[-1])


def kernel_transform(weight: torch.Tensor, n: int) -> torch.Tensor:
    """(n·(n//2+1), O, C): the conjugated rfft2 of the kernels zero-padded to n×n.

    Computed as two real matrix products with the DFT's cosine and sine tables (frequency-major
    from the start, and faster than batched small FFTs for k ≤ 13).
    """
    out_channels, in_channels, k = weight.shape[:3]
    m = n // 2 + 1
    taps = torch.arange(k, dtype=torch.float64, device=weight.device)
    rows = torch.arange(n, dtype=torch.float64, device=weight.device)[:, None] * taps
    cols = torch.arange(m, dtype=torch.float64, device=weight.device)[:, None] * taps
    angle = (2 * torch.pi / n) * (rows[:, None, :, None] + cols[None, :, None, :])  # (n, m, k, k)
    flat = weight.reshape(out_channels * in_channels, k * k).t()
    real = torch.cos(angle).reshape(n * m, k * k).to(weight.dtype) @ flat
    imag = torch.sin(angle).reshape(n * m, k * k).to(weight.dtype) @ flat  # conj(e^{-iθ}) = cos θ + i sin θ
    return torch.complex(real, imag).reshape(n * m, out_channels, in_channels)


def fft_conv2d(x: torch.Tensor, spectrum: torch.Tensor, bias, kernel: int, pad, n: int) -> torch.Tensor:
    """Cross-correlate x (N, C, H, W) with the kernels whose `kernel_transform` is `spectrum`.

    Args:
        x: input, float32.
        spectrum: `kernel_transform(weight, n)`.
        bias: (O,) or None.
        kernel: kernel size k.
        pad: (pad_h, pad_w).
        n: FFT tile size; each tile yields t = n − k + 1 outputs per axis.

    Returns:
        (N, O, H + 2·pad_h − k + 1, W + 2·pad_w − k + 1), as F.conv2d with stride 1.
    """
    batch, channels, height, width = x.shape
    t = n - kernel + 1
    out_h, out_w = height + 2 * pad[0] - kernel + 1, width + 2 * pad[1] - kernel + 1
    tiles_h, tiles_w = -(-out_h // t), -(-out_w // t)
    padded = F.pad(x, (pad[1], tiles_w * t + kernel - 1 - width - pad[1],
                       pad[0], tiles_h * t + kernel - 1 - height - pad[0]))
    tiles = padded.unfold(2, n, t).unfold(3, n, t)  # N, C, th, tw, n, n
    freq = torch.fft.rfft2(tiles)
    m = freq.shape[-1]
    # one copy into frequency-major order (a strided view here would make bmm copy each frequency's matrix)
    freq = freq.permute(4, 5, 1, 0, 2, 3).contiguous().view(n * m, channels, batch * tiles_h * tiles_w)
    product = torch.matmul(spectrum, freq)  # (n·m, O, tiles)
    out_channels = product.shape[1]
    product = product.reshape(n, m, out_channels, batch, tiles_h, tiles_w).permute(3, 2, 4, 5, 0, 1)
    y = torch.fft.irfft2(product, s=(n, n))[..., :t, :t]  # N, O, th, tw, t, t
    y = y.permute(0, 1, 2, 4, 3, 5).reshape(batch, out_channels, tiles_h * t, tiles_w * t)[:, :, :out_h, :out_w]
    return y + bias.reshape(1, -1, 1, 1) if bias is not None else y
