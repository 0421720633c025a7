"""Element-wise layers lowered to ONNX: ReLU, PReLU, Sigmoid, TanH, AbsVal, Power, Dropout.

- ReLU → Relu, or LeakyRelu(negative_slope); PReLU → PRelu with the slopes shaped (C, 1, ...) to
  broadcast along axis 1 (one slope when channel_shared).
- Power: (shift + scale·x)^power; when power·scale = 0, the constant 1 (power 0) or shift^power.
- Dropout: the identity (an exported net runs in the TEST phase, where Caffe does not rescale).
"""
from __future__ import annotations

import numpy as np
from onnx import helper

from dynsal.export.registry import LayerExport, lowering


@lowering("ReLU")
def relu(ctx: LayerExport) -> None:
    slope = float(ctx.param.relu_param.negative_slope)
    if slope:
        ctx.builder.op("LeakyRelu", ctx.bottoms, out=ctx.tops[0], alpha=slope)
    else:
        ctx.builder.op("Relu", ctx.bottoms, out=ctx.tops[0])


@lowering("PReLU")
def prelu(ctx: LayerExport) -> None:
    slopes = ctx.blobs[0]
    if len(slopes) > 1:
        slopes = slopes.reshape((-1,) + (1,) * (len(ctx.shapes[0]) - 2))
    ctx.builder.op("PRelu", [ctx.bottoms[0], ctx.builder.floats(slopes, f"{ctx.name}/slope")], out=ctx.tops[0])


def _unary(op_type: str):
    def lower(ctx: LayerExport) -> None:
        ctx.builder.op(op_type, ctx.bottoms, out=ctx.tops[0])
    return lower


lowering("Sigmoid")(_unary("Sigmoid"))
lowering("TanH")(_unary("Tanh"))
lowering("AbsVal")(_unary("Abs"))
lowering("Dropout")(_unary("Identity"))


@lowering("Power")
def power(ctx: LayerExport) -> None:
    b, p = ctx.builder, ctx.param.power_param
    x = ctx.bottoms[0]
    if p.power * p.scale == 0:
        value = np.array([1.0 if p.power == 0 else p.shift ** p.power], dtype=b.float_dtype)
        b.op("ConstantOfShape", [b.op("Shape", [x])], out=ctx.tops[0],
             value=helper.make_tensor("value", b.float_type, [1], value.tobytes(), raw=True))
        return
    steps = []
    if p.scale != 1:
        steps.append(("Mul", p.scale, "scale"))
    if p.shift != 0:
        steps.append(("Add", p.shift, "shift"))
    if p.power != 1:
        steps.append(("Pow", p.power, "power"))
    if not steps:
        b.op("Identity", [x], out=ctx.tops[0])
    for i, (op_type, value, what) in enumerate(steps):
        x = b.op(op_type, [x, b.floats(np.array(value), f"{ctx.name}/{what}")],
                 out=ctx.tops[0] if i == len(steps) - 1 else None)
