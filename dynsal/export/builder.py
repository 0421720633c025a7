"""`GraphBuilder`: ONNX nodes, initializers and unique value names for one exported net, and `Size`:
an integer known at export time or computed in the graph from input shapes.

Sizes let one layer lowering serve fixed and dynamic shapes: arithmetic on two known sizes folds to
a Python int (the graph gets constants only), arithmetic involving a shape read from the graph emits
int64 nodes (`Shape`, `Add`, `Div`, ...), so Caffe's size rules (pooling's ceil-and-clip, Crop and
Slice bounds, Reshape dims) are computed at run time for sizes the export never saw. A dynamic size
is a 1-element int64 tensor. Integer division is ONNX's `Div`, which truncates: it is used on
non-negative operands only (Caffe's size formulas), where truncation is floor division.

Ops whose signature changed across the supported opsets (13 and newer) are built by helpers here:
`reduce` (axes input from opset 18 for ReduceMean/ReduceMax, 13 for ReduceSum) and `shape_dim`
(Shape's start/end from opset 15).
"""
from __future__ import annotations

from typing import Dict, List, Sequence, Tuple, Union

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

FLOAT_TYPES = {"fp32": (TensorProto.FLOAT, np.float32), "fp16": (TensorProto.FLOAT16, np.float16)}
_REDUCE_AXES_INPUT = {"ReduceSum": 13, "ReduceMean": 18, "ReduceMax": 18}


class Size:
    """A non-negative integer: `static` (known at export) or `value` (a 1-element int64 graph tensor)."""

    def __init__(self, builder: GraphBuilder, static: int | None = None, value: str | None = None):
        self.builder, self.static, self.value = builder, static, value

    def __repr__(self) -> str:
        return f"Size({self.static if self.value is None else self.value})"

    @property
    def known(self) -> bool:
        return self.value is None

    def tensor(self) -> str:
        """The size as a 1-element int64 tensor (a constant when known)."""
        return self.builder.ints([self.static]) if self.known else self.value

    def _combine(self, other, op: str, fold) -> Size:
        other = other if isinstance(other, Size) else Size(self.builder, int(other))
        if self.known and other.known:
            return Size(self.builder, int(fold(self.static, other.static)))
        return Size(self.builder, value=self.builder.op(op, [self.tensor(), other.tensor()], hint="size"))

    def __add__(self, other) -> Size:
        return self if _is(other, 0) else self._combine(other, "Add", lambda a, b: a + b)

    __radd__ = __add__

    def __sub__(self, other) -> Size:
        return self if _is(other, 0) else self._combine(other, "Sub", lambda a, b: a - b)

    def __rsub__(self, other) -> Size:
        return Size(self.builder, int(other))._combine(self, "Sub", lambda a, b: a - b)

    def __mul__(self, other) -> Size:
        if _is(other, 0):
            return Size(self.builder, 0)
        return self if _is(other, 1) else self._combine(other, "Mul", lambda a, b: a * b)

    __rmul__ = __mul__

    def __floordiv__(self, other) -> Size:
        """Floor division of non-negative operands (ONNX Div truncates, which is the same there)."""
        return self if _is(other, 1) else self._combine(other, "Div", lambda a, b: a // b)

    def minimum(self, other) -> Size:
        return self._combine(other, "Min", min)

    def maximum(self, other) -> Size:
        return self._combine(other, "Max", max)

    def at_least(self, other) -> Size:
        """1 where self ≥ other, else 0."""
        other = other if isinstance(other, Size) else Size(self.builder, int(other))
        if self.known and other.known:
            return Size(self.builder, int(self.static >= other.static))
        flag = self.builder.op("GreaterOrEqual", [self.tensor(), other.tensor()], hint="size")
        return Size(self.builder, value=self.builder.op("Cast", [flag], to=TensorProto.INT64, hint="size"))


SizeLike = Union[Size, int]


def _is(value: SizeLike, number: int) -> bool:
    """Whether `value` is known to equal `number` (arithmetic with it can be skipped)."""
    return value.known and value.static == number if isinstance(value, Size) else int(value) == number


class GraphBuilder:
    """Collects the nodes and initializers of one ONNX graph.

    Args:
        opset: the default-domain opset the graph targets (≥ 13).
        precision: "fp32" or "fp16": the element type of float constants (`floats`).
    """

    def __init__(self, opset: int, precision: str = "fp32"):
        self.opset = opset
        self.float_type, self.float_dtype = FLOAT_TYPES[precision]
        self.nodes: List[onnx.NodeProto] = []
        self.initializers: List[onnx.TensorProto] = []
        self._used: set = set()
        self._ints: Dict[Tuple[int, ...], str] = {}
        self._dims: Dict[Tuple[str, int], str] = {}

    # ------------------------------------------------------------------------------- names
    def reserve(self, name: str) -> str:
        """Mark `name` as taken (graph inputs, Caffe blob names); returns it."""
        self._used.add(name)
        return name

    def fresh(self, hint: str) -> str:
        """A value name not used yet: `hint`, else `hint_1`, `hint_2`, ..."""
        name, index = hint, 0
        while name in self._used:
            index += 1
            name = f"{hint}_{index}"
        return self.reserve(name)

    # ------------------------------------------------------------------------------- nodes
    def op(self, op_type: str, inputs: Sequence[str], out: str | None = None, hint: str | None = None,
           **attrs) -> str:
        """Add a one-output node; returns its output name (`out`, or a fresh name from `hint`)."""
        return self.ops(op_type, inputs, [out] if out else 1, hint=hint, **attrs)[0]

    def ops(self, op_type: str, inputs: Sequence[str], outs: Union[int, Sequence[str]], hint: str | None = None,
            **attrs) -> List[str]:
        """Add a node with several outputs: `outs` names them, or gives their count (fresh names)."""
        if isinstance(outs, int):
            outs = [self.fresh(f"{hint or op_type}") for _ in range(outs)]
        else:
            outs = [self.reserve(o) for o in outs]  # names the caller chose (Caffe blobs): reserved already
        self.nodes.append(helper.make_node(op_type, list(inputs), list(outs), name=self.fresh(f"{outs[0]}/{op_type}"),
                                           **attrs))
        return list(outs)

    # ------------------------------------------------------------------------------- constants
    def initializer(self, array: np.ndarray, hint: str) -> str:
        """An initializer holding `array` as it is (dtype included); returns its name."""
        name = self.fresh(hint)
        self.initializers.append(numpy_helper.from_array(np.array(array, order="C"), name))
        return name

    def floats(self, array, hint: str) -> str:
        """An initializer of the graph's float type (fp32 or fp16)."""
        return self.initializer(np.asarray(array, dtype=np.float32).astype(self.float_dtype), hint)

    def ints(self, values: Sequence[SizeLike]) -> str:
        """A 1-D int64 tensor of `values` (ints or Sizes): a shared constant when all are known, else a
        Concat of the parts."""
        sizes = [v if isinstance(v, Size) else Size(self, int(v)) for v in values]
        if all(s.known for s in sizes):
            key = tuple(s.static for s in sizes)
            if key not in self._ints:
                self._ints[key] = self.initializer(np.array(key, np.int64), "ints")
            return self._ints[key]
        return self.op("Concat", [s.tensor() for s in sizes], axis=0, hint="ints")

    def size(self, value: int) -> Size:
        return Size(self, int(value))

    def shape_dim(self, x: str, axis: int, static: int, dynamic: bool) -> Size:
        """Axis `axis` of value `x`: `static` when the axis is fixed, else read from the graph (cached)."""
        if not dynamic:
            return Size(self, int(static))
        key = (x, axis)
        if key not in self._dims:
            if self.opset >= 15:
                self._dims[key] = self.op("Shape", [x], start=axis, end=axis + 1, hint=f"{x}/dim{axis}")
            else:
                shape = self.op("Shape", [x], hint=f"{x}/shape")
                self._dims[key] = self.op("Gather", [shape, self.ints([axis])], axis=0, hint=f"{x}/dim{axis}")
        return Size(self, value=self._dims[key])

    def scalar(self, size: Size) -> str:
        """A Size as a 0-d int64 tensor (for Range)."""
        if size.known:
            return self.initializer(np.array(size.static, np.int64), "int")
        return self.op("Squeeze", [size.value, self.ints([0])], hint="int")

    def reduce(self, op_type: str, x: str, axes: Sequence[int], keepdims: bool, out: str | None = None,
               hint: str | None = None) -> str:
        """ReduceSum / ReduceMean / ReduceMax over `axes`, in the form the opset takes."""
        if self.opset >= _REDUCE_AXES_INPUT[op_type]:
            return self.op(op_type, [x, self.ints(axes)], out=out, hint=hint, keepdims=int(keepdims))
        return self.op(op_type, [x], out=out, hint=hint, axes=list(axes), keepdims=int(keepdims))
