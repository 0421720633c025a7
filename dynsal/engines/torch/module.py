"""A constructed Caffe net as one torch.nn.Module.

`CaffeModule(graph, blob_shapes, param_shapes)` builds one `CaffeLayer` per layer of a
`dynsal.caffe.graph.NetGraph` (phase filtered, implicit splits inserted) through the layer registry,
and runs them in Caffe's order. Blob names are resolved per call, so in-place layers simply produce
a new version of their blob: `Blobs.data` holds the last version (what Caffe's blob holds after
forward), `Blobs.origin` the first one (the one whose gradient Caffe's blob diff holds after
backward, in-place layers having overwritten it on the way down). Named `param` specs share one
nn.Parameter between layers (Caffe's shared params); lr_mult 0 turns its gradient off. The tops of
layers without bottoms (Input and data layers) get diffs only under `force_backward`, as in Caffe.
Those layers (`sources`) run before the others (`compute`): they only read inputs and files (their
random fillers have their own generators), so the order changes no value, and `compute` is what
`torch.compile` compiles (`dynsal.engines.torch.compiled`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Tuple

import torch
from torch import nn

import dynsal.engines.torch.layers  # noqa: F401  (registers the builders)
from dynsal.caffe.graph import loss_weight
from dynsal.engines.torch.layers.structure import InputLayer
from dynsal.engines.torch.registry import LayerContext, build_layer
from dynsal.errors import DynsalError, NetDefinitionError


@dataclass
class Blobs:
    """The blobs of one forward pass."""

    data: Dict[str, torch.Tensor] = field(default_factory=dict)  # last version of each blob
    origin: Dict[str, torch.Tensor] = field(default_factory=dict)  # first version of each blob
    losses: List[Tuple[torch.Tensor, float]] = field(default_factory=list)  # (weighted top, loss weight)

    def first(self, count: int) -> Blobs:
        """The blobs of the first `count` samples (the real ones of a padded batch), without losses."""
        return Blobs({n: t[:count] for n, t in self.data.items()}, {n: t[:count] for n, t in self.origin.items()})

    def objective(self) -> torch.Tensor | None:
        """Σ weight·Σ top over the weighted tops (Caffe's net loss), or None without any."""
        terms = [w * t.float().sum() for t, w in self.losses]
        return sum(terms[1:], terms[0]) if terms else None


class CaffeModule(nn.Module):
    """The layers of a NetGraph, run in order on a dict of input tensors."""

    def __init__(self, graph, blob_shapes, param_shapes):
        super().__init__()
        self.graph = graph
        self.layer_names = [g.name for g in graph.layers]
        self.tops = [list(g.param.top) for g in graph.layers]
        self.bottoms = [list(g.param.bottom) for g in graph.layers]
        self.weights = [[loss_weight(g.param, i) for i in range(len(g.param.top))] for g in graph.layers]
        self.layers = nn.ModuleList()
        for g in graph.layers:
            ctx = LayerContext(g.param, [blob_shapes[b] for b in g.param.bottom], param_shapes[g.name],
                               graph.state.phase)
            self.layers.append(build_layer(ctx))
        self._share_and_freeze()

    def _share_and_freeze(self) -> None:
        owners: Dict[str, nn.Parameter] = {}
        for g, layer in zip(self.graph.layers, self.layers):
            for i, spec in enumerate(list(g.param.param)[:len(layer.blobs)]):
                if spec.name and spec.name in owners:
                    owner = owners[spec.name]
                    strict = spec.share_mode == spec.STRICT
                    fits = owner.shape == layer.blobs[i].shape if strict else owner.numel() == layer.blobs[i].numel()
                    if not fits:
                        raise NetDefinitionError(f"layer {g.name!r}: shared param {spec.name!r} has shape "
                                                 f"{tuple(layer.blobs[i].shape)}, its owner {tuple(owner.shape)}")
                    layer.blobs[i] = owner
                    continue
                if spec.name:
                    owners[spec.name] = layer.blobs[i]
                if spec.lr_mult == 0:
                    layer.blobs[i].requires_grad_(False)

    def named_layers(self):
        """(layer name, CaffeLayer) for every layer with learnable blobs, in net order."""
        return [(name, layer) for name, layer in zip(self.layer_names, self.layers) if len(layer.blobs)]

    def forward(self, inputs: Dict[str, torch.Tensor]) -> Blobs:
        """Every layer in Caffe's order: `sources` then `compute`."""
        return self.compute(self.sources(inputs))

    def sources(self, inputs: Dict[str, torch.Tensor]) -> Blobs:
        """The layers without bottoms: Input tops from `inputs`, data layers' next batch (file reading,
        which stays outside `torch.compile`)."""
        blobs = Blobs()
        for layer, _, tops, weights in self._steps(sources=True):
            outs = tuple(inputs[t] for t in tops) if isinstance(layer, InputLayer) else layer()
            if self.graph.force_backward and torch.is_grad_enabled():
                outs = tuple(o.detach().requires_grad_() for o in outs)  # data tops get diffs only then
            self._store(blobs, layer, tops, outs, weights)
        return blobs

    def compute(self, blobs: Blobs) -> Blobs:
        """The layers with bottoms, in order, on the blobs of `sources`; returns `blobs`, completed."""
        for layer, bottoms, tops, weights in self._steps(sources=False):
            self._store(blobs, layer, tops, layer(*(blobs.data[b] for b in bottoms)), weights)
        return blobs

    def _steps(self, sources: bool):
        return [step for step in zip(self.layers, self.bottoms, self.tops, self.weights) if (not step[1]) == sources]

    @staticmethod
    def _store(blobs: Blobs, layer, tops, outs, weights) -> None:
        if len(outs) != len(tops):
            raise DynsalError(f"layer {layer.layer_name!r} produced {len(outs)} tops, expected {len(tops)}")
        for name, value, weight in zip(tops, outs, weights):
            blobs.data[name] = value
            blobs.origin.setdefault(name, value)
            if weight:
                blobs.losses.append((value, weight))
