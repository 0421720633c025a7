"""3×3 stride-1 convolution by Winograd's minimal filtering F(4×4, 3×3) (Lavin & Gray 2016) on CPU.

Each 4×4 output tile comes from a 6×6 input tile d and a 3×3 kernel g as Aᵀ[(G g Gᵀ) ⊙ (Bᵀ d B)]A,
which is cross-correlation (Caffe's convolution): 36 multiplications per tile and channel pair
instead of 144. Over channels the ⊙ becomes one real matrix product per each of the 36 transform
points, (O, C)·(C, tiles). The transforms run as one matrix product with kron(Bᵀ, Bᵀ) (36×36) and
kron(Aᵀ, Aᵀ) (16×36). Points 0, ±1, ±2 keep float32 rounding within 1e-5 of the output's largest
value (1e-6 to 7.5e-6 measured with random data; F(6×6, 3×3), which adds ±1/2, is not implemented).
`convalgo` caches the kernels' transform per weight tensor and recomputes it when the weight changes.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

TILE, KERNEL = 4, 3
WINDOW = TILE + KERNEL - 1  # 6

_BT = ((4, 0, -5, 0, 1, 0), (0, -4, -4, 1, 1, 0), (0, 4, -4, -1, 1, 0),
       (0, -2, -1, 2, 1, 0), (0, 2, -1, -2, 1, 0), (0, 4, 0, -5, 0, 1))
_G = ((1 / 4, 0, 0), (-1 / 6, -1 / 6, -1 / 6), (-1 / 6, 1 / 6, -1 / 6),
      (1 / 24, 1 / 12, 1 / 6), (1 / 24, -1 / 12, 1 / 6), (0, 0, 1))
_AT = ((1, 1, 1, 1, 1, 0), (0, 1, -1, 2, -2, 0), (0, 1, 1, 4, 4, 0), (0, 1, -1, 8, -8, 1))


def _kron(matrix, dtype, device) -> torch.Tensor:
    m = torch.tensor(matrix, dtype=torch.float64)
    return torch.kron(m, m).to(dtype=dtype, device=device)


def kernel_transform(weight: torch.Tensor) -> torch.Tensor:
    """(36, O, C): G g Gᵀ of each 3×3 kernel, transform-point-major (computed in float64)."""
    out_channels, in_channels = weight.shape[:2]
    flat = weight.reshape(out_channels * in_channels, KERNEL * KERNEL).to(torch.float64).t()
    transformed = _kron(_G, torch.float64, weight.device) @ flat  # (36, O·C)
    return transformed.to(weight.dtype).reshape(WINDOW * WINDOW, out_channels, in_channels)


def winograd_conv2d(x: torch.Tensor, transformed: torch.Tensor, bias, pad) -> torch.Tensor:
    """Cross-correlate x (N, C, H, W) with 3×3 kernels given as `kernel_transform(weight)`, stride 1.

    Returns:
        (N, O, H + 2·pad_h − 2, W + 2·pad_w − 2), as F.conv2d with stride 1.
    """
    batch, channels, height, width = x.shape
    out_h, out_w = height + 2 * pad[0] - KERNEL + 1, width + 2 * pad[1] - KERNEL + 1
    tiles_h, tiles_w = -(-out_h // TILE), -(-out_w // TILE)
    padded = F.pad(x, (pad[1], tiles_w * TILE + KERNEL - 1 - width - pad[1],
                       pad[0], tiles_h * TILE + KERNEL - 1 - height - pad[0]))
    tiles = padded.unfold(2, WINDOW, TILE).unfold(3, WINDOW, TILE)  # N, C, th, tw, 6, 6
    count = batch * tiles_h * tiles_w
    tiles = tiles.permute(4, 5, 1, 0, 2, 3).reshape(WINDOW * WINDOW, channels * count)
    spectrum = (_kron(_BT, x.dtype, x.device) @ tiles).reshape(WINDOW * WINDOW, channels, count)
    product = torch.bmm(transformed, spectrum)  # (36, O, tiles)
    out_channels = product.shape[1]
    y = _kron(_AT, x.dtype, x.device) @ product.reshape(WINDOW * WINDOW, out_channels * count)  # (16, O·tiles)
    y = y.reshape(TILE, TILE, out_channels, batch, tiles_h, tiles_w).permute(3, 2, 4, 0, 5, 1)
    y = y.reshape(batch, out_channels, tiles_h * TILE, tiles_w * TILE)[:, :, :out_h, :out_w]
    return y + bias.reshape(1, -1, 1, 1) if bias is not None else y
