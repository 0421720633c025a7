"""Caffe's solver semantics against `caffe train`: learning-rate policies, read from its own log."""
from __future__ import annotations

import pytest
from google.protobuf import text_format

from dynsal.caffe.schema import pb
from dynsal.training.lr_policy import learning_rate
from dynsal.training.training_log import parse_caffe_log
from tests.oracle.datasets import write_tiny_training_set

POLICIES = {
    "fixed": "",
    "step": "gamma: 0.5 stepsize: 3",
    "exp": "gamma: 0.9",
    "inv": "gamma: 0.3 power: 0.75",
    "multistep": "gamma: 0.5 stepvalue: 2 stepvalue: 3 stepvalue: 7",
    "poly": "power: 1.5",
    "sigmoid": "gamma: 0.4 stepsize: 5",
}
ITERATIONS = 10


@pytest.mark.parametrize("policy", sorted(POLICIES))
@pytest.mark.caffe_parity
def test_lr_policy_matches_caffe_train_log(oracle, workdir, policy):
    write_tiny_training_set(workdir)
    solver_text = (f'net: "tiny.prototxt" base_lr: 0.02 lr_policy: "{policy}" {POLICIES[policy]} '
                   f'max_iter: {ITERATIONS} display: 1 momentum: 0.9 solver_mode: CPU snapshot_after_train: false '
                   'snapshot_prefix: "snap"')
    (workdir.host / "solver.prototxt").write_text(solver_text)
    result = oracle.run(["caffe", "train", "--solver=solver.prototxt"], workdir,
                        env={"GLOG_minloglevel": "0", "GLOG_logtostderr": "1"})
    records = parse_caffe_log(result.stderr.splitlines())
    caffe_rates = {r["iteration"]: r["lr"] for r in records if r["lr"] is not None}
    assert sorted(caffe_rates) == list(range(ITERATIONS))
    assert all(r["loss"] is not None and "loss" in r["outputs"] for r in records if r["lr"] is not None)
    solver = text_format.Parse(solver_text, pb.SolverParameter())
    step = 0
    for iteration in range(ITERATIONS):
        lr = learning_rate(solver, iteration, step)
        step = lr.current_step
        assert lr.rate == pytest.approx(caffe_rates[iteration], rel=2e-5), f"iteration {iteration}"


def test_train_command_runs_real_caffe_in_the_oracle(oracle, workdir):
    """`dynsal train --engine caffe` (as in the CPU Docker image) runs caffe train, --max-iter applied."""
    write_tiny_training_set(workdir)
    (workdir.host / "solver.prototxt").write_text('net: "tiny.prototxt" base_lr: 0.001 lr_policy: "fixed" '
                                                  'max_iter: 1000 solver_mode: CPU snapshot_prefix: "snap/tiny"')
    result = oracle.run(["python3", "-m", "dynsal", "train", "solver.prototxt", "--engine", "caffe",
                         "--max-iter", "3"], workdir, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    assert (workdir.host / "snap" / "tiny_iter_3.caffemodel").is_file()
    assert (workdir.host / "snap" / "tiny_iter_3.solverstate").is_file()
