"""The ONNX operators of dynsal's exports as TorchScript-compilable torch functions (ONNX semantics).

`dynsal.export.torchscript` turns an exported ONNX graph into a module whose forward calls these,
one call per node, so the TorchScript file computes exactly what the ONNX file computes (and is
checked against Caffe the same way). Shape arguments that ONNX passes as int64 tensors (pads, axes,
starts, shapes) are tensors here too and read at run time, so sizes computed in the graph stay
dynamic. Only the operator forms dynsal emits are covered: 2-D pooling with explicit pads and floor
rounding, AveragePool counting pads (every window inside the padded input), constant Pad.
"""
from __future__ import annotations

from typing import List, Optional, Tuple

import torch
import torch.nn.functional as F


def _ints(values: torch.Tensor) -> List[int]:
    out: List[int] = values.reshape(-1).tolist()
    return out


def _torch_pads(pads: List[int]) -> List[int]:
    """ONNX pads [x1_begin, x2_begin, ..., x1_end, ...] -> F.pad's [xn_begin, xn_end, ..., x1_begin, x1_end]."""
    n = len(pads) // 2
    out: List[int] = []
    for axis in range(n - 1, -1, -1):
        out.append(pads[axis])
        out.append(pads[axis + n])
    return out


def conv(x: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor], strides: List[int], pads: List[int],
         dilations: List[int], group: int) -> torch.Tensor:
    n = len(strides)
    if pads[:n] != pads[n:]:
        x = F.pad(x, _torch_pads(pads))
        pads = [0] * (2 * n)
    if n == 1:
        return F.conv1d(x, weight, bias, strides, pads[:n], dilations, group)
    if n == 2:
        return F.conv2d(x, weight, bias, strides, pads[:n], dilations, group)
    return F.conv3d(x, weight, bias, strides, pads[:n], dilations, group)


def conv_transpose(x: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor], strides: List[int],
                   pads: List[int], dilations: List[int], group: int) -> torch.Tensor:
    """ConvTranspose with its default output size: the full transposed convolution cut by the pads."""
    n = len(strides)
    common = [min(pads[i], pads[i + n]) for i in range(n)]
    if n == 1:
        y = F.conv_transpose1d(x, weight, bias, strides, common, 0, group, dilations)
    elif n == 2:
        y = F.conv_transpose2d(x, weight, bias, strides, common, 0, group, dilations)
    else:
        y = F.conv_transpose3d(x, weight, bias, strides, common, 0, group, dilations)
    for i in range(n):
        begin, end = pads[i] - common[i], pads[i + n] - common[i]
        if begin or end:
            y = y.narrow(2 + i, begin, y.shape[2 + i] - begin - end)
    return y


def max_pool(x: torch.Tensor, kernel: List[int], strides: List[int], pads: List[int]) -> torch.Tensor:
    return F.max_pool2d(F.pad(x, _torch_pads(pads), value=float("-inf")), kernel, strides)


def max_pool_with_indices(x: torch.Tensor, kernel: List[int], strides: List[int], pads: List[int]
                          ) -> Tuple[torch.Tensor, torch.Tensor]:
    """MaxPool and its Indices: the flat index ((n·C + c)·H + h)·W + w of each window's maximum."""
    batch, channels, height, width = x.shape
    padded = F.pad(x, _torch_pads(pads), value=float("-inf"))
    values, cell = F.max_pool2d(padded, kernel, strides, return_indices=True)
    padded_width = padded.shape[3]
    row = torch.div(cell, padded_width, rounding_mode="floor") - pads[0]
    col = torch.remainder(cell, padded_width) - pads[1]
    plane = torch.arange(batch * channels, device=x.device, dtype=torch.long).reshape(batch, channels, 1, 1)
    return values, (plane * height + row) * width + col


def average_pool(x: torch.Tensor, kernel: List[int], strides: List[int], pads: List[int]) -> torch.Tensor:
    """AveragePool counting pads, every window inside the padded input: the window sum / k_h·k_w."""
    return F.avg_pool2d(F.pad(x, _torch_pads(pads)), kernel, strides)


def global_max_pool(x: torch.Tensor) -> torch.Tensor:
    return torch.amax(x, dim=list(range(2, x.dim())), keepdim=True)


def global_average_pool(x: torch.Tensor) -> torch.Tensor:
    return torch.mean(x, dim=list(range(2, x.dim())), keepdim=True)


def pad(x: torch.Tensor, pads: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
    return F.pad(x, _torch_pads(_ints(pads)), value=float(value.item()))


def lrn(x: torch.Tensor, size: int, alpha: float, beta: float, bias: float) -> torch.Tensor:
    """x / (bias + α/size·Σ x²)^β, the sum over channels c − ⌊(size−1)/2⌋ … c + ⌈(size−1)/2⌉ (any float type)."""
    before = (size - 1) // 2
    squares = F.pad(x * x, [0, 0] * (x.dim() - 2) + [before, size - 1 - before])
    channels = x.shape[1]
    window = squares.narrow(1, 0, channels)
    for i in range(1, size):
        window = window + squares.narrow(1, i, channels)
    return x / torch.pow(bias + (alpha / size) * window, beta)


def div(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """ONNX Div: true division of floats, truncating division of integers."""
    if a.is_floating_point():
        return a / b
    return torch.div(a, b, rounding_mode="trunc")


def maximum(values: List[torch.Tensor]) -> torch.Tensor:
    out = values[0]
    for value in values[1:]:
        out = torch.maximum(out, value)
    return out


def prelu(x: torch.Tensor, slope: torch.Tensor) -> torch.Tensor:
    return torch.where(x < 0, x * slope, x)


def constant_of_shape(shape: torch.Tensor, value: float, dtype: torch.dtype) -> torch.Tensor:
    return torch.full(_ints(shape), value, dtype=dtype, device=shape.device)


def shape(x: torch.Tensor, start: int, end: Optional[int]) -> torch.Tensor:
    dims: List[int] = list(x.shape)
    stop = len(dims) if end is None else end
    return torch.tensor(dims[start:stop], dtype=torch.long, device=x.device)


def gather(data: torch.Tensor, indices: torch.Tensor, axis: int) -> torch.Tensor:
    picked = torch.index_select(data, axis, indices.reshape(-1))
    dims: List[int] = list(data.shape)
    return picked.reshape(dims[:axis] + list(indices.shape) + dims[axis + 1:])


def slice_(x: torch.Tensor, starts: torch.Tensor, ends: torch.Tensor, axes: torch.Tensor) -> torch.Tensor:
    """Slice with step 1; negative bounds count from the end, bounds are clamped to the axis."""
    for start, end, axis in zip(_ints(starts), _ints(ends), _ints(axes)):
        axis = axis % x.dim()
        size = x.shape[axis]
        start = min(max(start + size if start < 0 else start, 0), size)
        end = min(max(end + size if end < 0 else end, 0), size)
        x = x.narrow(axis, start, max(end - start, 0))
    return x


def reshape(x: torch.Tensor, shape_: torch.Tensor) -> torch.Tensor:
    """ONNX Reshape: 0 copies the input's axis at the same position, −1 is inferred."""
    dims = _ints(shape_)
    for i, d in enumerate(dims):
        if d == 0:
            dims[i] = x.shape[i]
    return x.reshape(dims)


def gemm(a: torch.Tensor, b: torch.Tensor, c: Optional[torch.Tensor], trans_b: int) -> torch.Tensor:
    y = torch.matmul(a, b.t() if trans_b else b)
    return y if c is None else y + c


def batch_norm(x: torch.Tensor, scale: torch.Tensor, bias: torch.Tensor, mean: torch.Tensor, var: torch.Tensor,
               epsilon: float) -> torch.Tensor:
    return F.batch_norm(x, mean, var, scale, bias, False, 0.0, epsilon)


def reduce_mean(x: torch.Tensor, axes: torch.Tensor, keepdims: int) -> torch.Tensor:
    return torch.mean(x, dim=_ints(axes), keepdim=bool(keepdims))


def reduce_sum(x: torch.Tensor, axes: torch.Tensor, keepdims: int) -> torch.Tensor:
    return torch.sum(x, dim=_ints(axes), keepdim=bool(keepdims))


def squeeze(x: torch.Tensor, axes: torch.Tensor) -> torch.Tensor:
    order = [a % x.dim() for a in _ints(axes)]
    order.sort(reverse=True)
    for axis in order:
        x = x.squeeze(axis)
    return x


def unsqueeze(x: torch.Tensor, axes: torch.Tensor) -> torch.Tensor:
    rank = x.dim() + axes.numel()
    order = [a % rank for a in _ints(axes)]
    order.sort()
    for axis in order:
        x = x.unsqueeze(axis)
    return x


def range_(start: torch.Tensor, limit: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
    return torch.arange(int(start.item()), int(limit.item()), int(delta.item()), dtype=torch.long,
                        device=start.device)
