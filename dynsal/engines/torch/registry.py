"""The layer registry: Caffe type string -> builder of a `CaffeLayer` module (one builder per type).

A builder receives a `LayerContext` (the LayerParameter after filtering and split insertion, the
bottom shapes and learnable-blob shapes that `dynsal.caffe.shapes` computes, the phase) and returns
a `CaffeLayer`: an nn.Module whose `blobs` are the layer's learnable blobs in Caffe's order and
shapes, and whose `forward(*bottoms)` returns its tops as a tuple.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, List, Sequence, Tuple

import torch
from torch import nn

from dynsal.caffe.schema import pb
from dynsal.caffe.type_table import registrar
from dynsal.errors import NetDefinitionError

Shape = Tuple[int, ...]


@dataclass
class LayerContext:
    """What a builder needs to know about one layer of a constructed net."""

    param: object  # pb.LayerParameter
    bottom_shapes: List[Shape]
    param_shapes: List[Shape]
    phase: int  # pb.TRAIN or pb.TEST

    @property
    def name(self) -> str:
        return self.param.name

    @property
    def train(self) -> bool:
        return self.phase == pb.TRAIN


class CaffeLayer(nn.Module):
    """One Caffe layer: learnable blobs (Caffe order and shapes) and how to fill them fresh.

    Args:
        ctx: the layer's context.
        fillers: one `pb.FillerParameter` per learnable blob (Caffe's defaults applied by the builder).
        learnable: False for blobs that never get gradients (BatchNorm's statistics).
    """

    def __init__(self, ctx: LayerContext, fillers: Sequence = (), learnable: bool = True):
        super().__init__()
        self.layer_name, self.layer_type = ctx.name, ctx.param.type
        if len(fillers) != len(ctx.param_shapes):
            raise NetDefinitionError(f"layer {ctx.name!r}: {len(fillers)} fillers for {len(ctx.param_shapes)} blobs")
        self.fillers = list(fillers)
        self.blobs = nn.ParameterList(
            [nn.Parameter(torch.zeros(shape), requires_grad=learnable) for shape in ctx.param_shapes])

    def extra_repr(self) -> str:
        return f"{self.layer_type} {self.layer_name!r}"


class FunctionLayer(CaffeLayer):
    """A layer without learnable blobs computing `fn(*bottoms)` (a tensor or a tuple of tensors)."""

    def __init__(self, ctx: LayerContext, fn: Callable):
        super().__init__(ctx)
        self.fn = fn

    def forward(self, *bottoms):
        out = self.fn(*bottoms)
        return out if isinstance(out, tuple) else (out,)


Builder = Callable[[LayerContext], CaffeLayer]
LAYERS: Dict[str, Builder] = {}


#: `@register("Type", ...)` registers a builder for one or more exact Caffe layer type strings.
register = registrar(LAYERS)


def supported_types() -> List[str]:
    """The Caffe layer types the torch engine runs, sorted."""
    return sorted(LAYERS)


def check_supported(layer) -> None:
    """Refuse a `pb.LayerParameter` whose type has no builder.

    Raises:
        NetDefinitionError: names the layer, its type and the supported types.
    """
    if layer.type not in LAYERS:
        raise NetDefinitionError(f"layer {layer.name!r}: the torch engine does not support layer type "
                                 f"{layer.type!r}; supported: {', '.join(supported_types())}")


def build_layer(ctx: LayerContext) -> CaffeLayer:
    """The module for one layer.

    Raises:
        NetDefinitionError: the type is not registered (names layer, type and the supported list).
    """
    check_supported(ctx.param)
    return LAYERS[ctx.param.type](ctx)
