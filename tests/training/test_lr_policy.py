"""Learning-rate policies: hand-computed values (the oracle test compares with `caffe train` logs)."""
from __future__ import annotations

import math

import pytest

from dynsal.caffe.schema import pb
from dynsal.errors import DynsalError
from dynsal.training.lr_policy import learning_rate


def solver(**fields):
    return pb.SolverParameter(base_lr=0.1, **fields)


@pytest.mark.parametrize("fields,iteration,expected", [
    (dict(lr_policy="fixed"), 50, 0.1),
    (dict(lr_policy="step", gamma=0.5, stepsize=10), 25, 0.025),
    (dict(lr_policy="exp", gamma=0.9), 2, 0.081),
    (dict(lr_policy="inv", gamma=0.5, power=2), 2, 0.025),
    (dict(lr_policy="poly", power=2, max_iter=10), 5, 0.025),
    (dict(lr_policy="sigmoid", gamma=1.0, stepsize=3), 3, 0.05),
    # Caffe: base_lr / (1 + exp(−gamma·(iter − stepsize))); away from stepsize the sign of gamma shows
    (dict(lr_policy="sigmoid", gamma=1.0, stepsize=3), 5, 0.1 / (1 + math.exp(-2.0))),
    (dict(lr_policy="sigmoid", gamma=1.0, stepsize=3), 1, 0.1 / (1 + math.exp(2.0))),
    (dict(lr_policy="sigmoid", gamma=0.5, stepsize=3), 7, 0.1 / (1 + math.exp(-2.0))),
])
def test_policies(fields, iteration, expected):
    assert learning_rate(solver(**fields), iteration).rate == pytest.approx(expected, rel=1e-6)


def test_step_sets_current_step():
    assert learning_rate(solver(lr_policy="step", gamma=0.1, stepsize=4), 9).current_step == 2


def test_multistep_advances_one_step_per_call():
    s = solver(lr_policy="multistep", gamma=0.5, stepvalue=[2, 3])
    step, rates = 0, []
    for it in range(5):
        lr = learning_rate(s, it, step)
        step = lr.current_step
        rates.append(lr.rate)
    assert rates == pytest.approx([0.1, 0.1, 0.05, 0.025, 0.025])
    resumed = learning_rate(s, 10, 0)  # resuming late: still only one step per call, as in Caffe
    assert resumed.current_step == 1 and resumed.rate == pytest.approx(0.05)


def test_unknown_policy():
    with pytest.raises(DynsalError, match="'cosine' is unknown"):
        learning_rate(solver(lr_policy="cosine"), 0)
    with pytest.raises(DynsalError, match="needs a positive stepsize"):
        learning_rate(solver(lr_policy="step"), 0)
    with pytest.raises(DynsalError, match="gamma >= 0"):
        learning_rate(solver(lr_policy="sigmoid", gamma=-1, stepsize=2), 0)
