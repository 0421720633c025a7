"""Caffe's parameter update rules (sgd_solvers), on torch tensors, one learnable blob at a time.

Given the blob's gradient g (already normalised by iter_size and regularised), the local rate
(rate · lr_mult) and the history blobs, each rule computes Caffe's update `diff`; the net then does
w ← w − diff. History layout and formulas (caffe-semantics.md §5):
- SGD:      h ← μh + lr·g;                      diff = h
- Nesterov: h' = h; h ← μh + lr·g;              diff = (1 + μ)h − μh'
- AdaGrad:  h ← h + g²;                         diff = lr·g / (√h + δ)
- RMSProp:  h ← ρh + (1 − ρ)g²;                 diff = lr·g / (√h + δ)
- AdaDelta: h1 ← μh1 + (1 − μ)g²; u = g·√((h2 + δ)/(h1 + δ)); h2 ← μh2 + (1 − μ)u²; diff = lr·u
- Adam:     m ← β1m + (1 − β1)g; v ← β2v + (1 − β2)g²; diff = lr·√(1 − β2^t)/(1 − β1^t)·m/(√v + δ), t = iter + 1
AdaDelta and Adam keep two history blobs per parameter; Caffe stores all first ones, then all second ones.
"""
from __future__ import annotations

import math
from typing import Callable, Dict, List

import torch

from dynsal.caffe.type_table import registrar
from dynsal.errors import DynsalError

Rule = Callable[..., torch.Tensor]
RULES: Dict[str, Rule] = {}
HISTORY_BLOBS = {"SGD": 1, "Nesterov": 1, "AdaGrad": 1, "RMSProp": 1, "AdaDelta": 2, "Adam": 2}


rule = registrar(RULES, "solver type")  # @rule(type): the update rule of one Caffe solver type


@rule("SGD")
def _sgd(g, history: List[torch.Tensor], lr: float, solver, iteration: int) -> torch.Tensor:
    history[0].mul_(solver.momentum).add_(g, alpha=lr)
    return history[0].clone()


@rule("Nesterov")
def _nesterov(g, history, lr, solver, iteration):
    previous = history[0].clone()
    history[0].mul_(solver.momentum).add_(g, alpha=lr)
    return (1 + solver.momentum) * history[0] - solver.momentum * previous


@rule("AdaGrad")
def _adagrad(g, history, lr, solver, iteration):
    history[0].add_(g * g)
    return lr * g / (history[0].sqrt() + solver.delta)


@rule("RMSProp")
def _rmsprop(g, history, lr, solver, iteration):
    history[0].mul_(solver.rms_decay).add_(g * g, alpha=1 - solver.rms_decay)
    return lr * g / (history[0].sqrt() + solver.delta)


@rule("AdaDelta")
def _adadelta(g, history, lr, solver, iteration):
    momentum, delta = solver.momentum, solver.delta
    history[0].mul_(momentum).add_(g * g, alpha=1 - momentum)
    update = g * ((history[1] + delta) / (history[0] + delta)).sqrt()
    history[1].mul_(momentum).add_(update * update, alpha=1 - momentum)
    return lr * update


@rule("Adam")
def _adam(g, history, lr, solver, iteration):
    beta1, beta2, t = solver.momentum, solver.momentum2, iteration + 1
    history[0].mul_(beta1).add_(g, alpha=1 - beta1)
    history[1].mul_(beta2).add_(g * g, alpha=1 - beta2)
    correction = math.sqrt(1 - beta2 ** t) / (1 - beta1 ** t)
    return lr * correction * history[0] / (history[1].sqrt() + solver.delta)


def check_solver_type(solver) -> str:
    """The solver's `type`, validated as Caffe does (AdaGrad/RMSProp need momentum 0)."""
    kind = solver.type
    if kind not in RULES:
        raise DynsalError(f"solver type {kind!r} is unknown; Caffe knows: {', '.join(RULES)}")
    if kind in ("AdaGrad", "RMSProp") and solver.momentum != 0:
        raise DynsalError(f"solver type {kind} needs momentum 0 (Caffe refuses {solver.momentum})")
    if kind == "RMSProp" and not 0 <= solver.rms_decay < 1:
        raise DynsalError(f"RMSProp needs 0 <= rms_decay < 1, got {solver.rms_decay}")
    return kind
