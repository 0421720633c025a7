"""Learning-rate policies exactly as Caffe's SGDSolver::GetLearningRate computes them.

`iteration` is Caffe's `iter_`: the number of completed updates (0 at the first step). The rate is
computed in double precision and stored as float32, like Caffe's `Dtype rate`.

| policy | rate |
|---|---|
| fixed | base_lr |
| step | base_lr · gamma^floor(iter / stepsize)  (current_step = floor(iter / stepsize)) |
| exp | base_lr · gamma^iter |
| inv | base_lr · (1 + gamma · iter)^(−power) |
| multistep | base_lr · gamma^step; step += 1 (at most once per call) when iter ≥ stepvalue[step] |
| poly | base_lr · (1 − iter / max_iter)^power |
| sigmoid | base_lr · 1 / (1 + exp(−gamma · (iter − stepsize))) |
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from dynsal.errors import DynsalError

POLICIES = ("fixed", "step", "exp", "inv", "multistep", "poly", "sigmoid")


@dataclass
class LearningRate:
    """The rate for one iteration and the (possibly advanced) `current_step` of the solver state."""

    rate: float
    current_step: int


def learning_rate(solver, iteration: int, current_step: int = 0) -> LearningRate:
    """Caffe's learning rate for `iteration` (= completed updates).

    Args:
        solver: a `pb.SolverParameter` (base_lr, lr_policy, gamma, power, stepsize, stepvalue, max_iter).
        iteration: Caffe's `iter_`.
        current_step: the solver state's `current_step` before this call (multistep advances it).

    Raises:
        DynsalError: no or an unknown lr_policy, or a policy missing its parameters.
    """
    policy, base = solver.lr_policy, float(solver.base_lr)
    if policy not in POLICIES:
        raise DynsalError(f"solver lr_policy {policy!r} is unknown; Caffe knows: {', '.join(POLICIES)}")
    if policy == "fixed":
        rate = base
    elif policy == "step":
        _need(solver, "stepsize", policy)
        current_step = iteration // solver.stepsize
        rate = base * math.pow(solver.gamma, current_step)
    elif policy == "exp":
        rate = base * math.pow(solver.gamma, iteration)
    elif policy == "inv":
        rate = base * math.pow(1.0 + solver.gamma * iteration, -solver.power)
    elif policy == "multistep":
        if current_step < len(solver.stepvalue) and iteration >= solver.stepvalue[current_step]:
            current_step += 1
        rate = base * math.pow(solver.gamma, current_step)
    elif policy == "poly":
        _need(solver, "max_iter", policy)
        rate = base * math.pow(1.0 - float(iteration) / solver.max_iter, solver.power)
    else:  # sigmoid: Caffe checks gamma >= 0 and stepsize > 0
        _need(solver, "stepsize", policy)
        if solver.gamma < 0:
            raise DynsalError(f"lr_policy 'sigmoid' needs gamma >= 0 (Caffe refuses {solver.gamma})")
        rate = base * (1.0 / (1.0 + math.exp(-solver.gamma * (iteration - solver.stepsize))))
    return LearningRate(float(np.float32(rate)), current_step)


def _need(solver, field: str, policy: str) -> None:
    if getattr(solver, field) <= 0:
        raise DynsalError(f"lr_policy {policy!r} needs a positive {field} in the solver")
