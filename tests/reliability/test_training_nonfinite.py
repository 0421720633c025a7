"""Defect 4 (training half): training stops on non-finite numbers and names the last snapshot whose weights
AND loss are all finite; defect 11: a killed and resumed run's log has every iteration once; Ctrl-C and
SIGTERM exit 128 + the signal after writing a snapshot."""
from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path
from typing import List

import numpy as np
import pytest

from dynsal.caffe import io
from dynsal.caffe.blobs import blob_to_array
from tests.engines.test_solver import ENDLESS, tiny_solver
from tests.interrupting import SAFETY_NET_S, start_dynsal, wait_for
from tests.reliability.faults import REPO, changed, run_dynsal, tree

TRAIN = ["--engine", "torch", "--no-progress"]


def _solver(tmp_path: Path, base_lr: str, snapshot: int = 1, max_iter: int = 200) -> str:
    path = Path(tiny_solver(tmp_path, max_iter=max_iter))
    text = path.read_text().replace("base_lr: 0.001", f"base_lr: {base_lr}").replace("snapshot: 4",
                                                                                       f"snapshot: {snapshot}")
    path.write_text(text)
    return path.name


def _log(tmp_path: Path):
    return [json.loads(line) for line in (tmp_path / "snap" / "tiny_log.jsonl").read_text().splitlines()]


def _finite(model: Path) -> bool:
    return all(np.isfinite(blob_to_array(b)).all() for layer in io.read_net(model).layer for b in layer.blobs)


def test_weights_that_overflow_are_never_snapshot(tmp_path):
    """base_lr 1e38: the first update makes conv1's weights infinite. Before, the snapshot of iteration 1 was
    written with them and named as the last good one; now no snapshot is written and none is named."""
    solver = _solver(tmp_path, "1e38")
    before = tree(tmp_path)
    result = run_dynsal(["train", solver, *TRAIN], cwd=tmp_path)
    assert result.returncode == 1
    assert result.error_line() == ("dynsal train: error: iteration 1: 9 values of layer 'conv1' blob 0 are not finite; "
                                   "training stopped without writing snap/tiny_iter_1.caffemodel; no snapshot with "
                                   "finite weights and loss was written — lower base_lr or check the data")
    assert not list((tmp_path / "snap").glob("*.caffemodel"))
    assert [p for p in changed(before, tree(tmp_path)) if not p.startswith("snap")] == []


def test_slow_divergence_names_the_snapshot_before_the_one_that_gave_the_inf_loss(tmp_path):
    """base_lr 2: the loss grows 47 → 9e7 → 1e27 → inf. The snapshot of iteration 3 has finite weights but is
    the one whose forward pass gave the inf loss; the named snapshot is iteration 2's, whose weights and loss
    (iteration 2 of the log) are finite."""
    solver = _solver(tmp_path, "2")
    result = run_dynsal(["train", solver, *TRAIN], cwd=tmp_path)
    assert result.returncode == 1
    line = result.error_line()
    assert line == ("dynsal train: error: iteration 3: the loss is inf; training stopped; the last snapshot with "
                    "finite weights and loss is snap/tiny_iter_2.caffemodel; snap/tiny_iter_3.caffemodel gives this "
                    "loss (do not use it) — lower base_lr or check the data")
    losses = {r["iteration"]: r["raw_loss"] for r in _log(tmp_path) if r["phase"] == "train"}
    assert np.isfinite(losses[2]) and losses[2] > 1e20  # diverging, but finite
    assert _finite(tmp_path / "snap" / "tiny_iter_2.caffemodel")
    assert _finite(tmp_path / "snap" / "tiny_iter_3.caffemodel")  # finite weights, infinite loss: not good


def test_a_sparser_snapshot_interval_names_the_last_confirmed_one(tmp_path):
    """snapshot every 2 iterations: iteration 2's snapshot gave a finite loss, so it is the one named."""
    solver = _solver(tmp_path, "2", snapshot=2)
    result = run_dynsal(["train", solver, *TRAIN], cwd=tmp_path)
    assert result.returncode == 1
    assert "the last snapshot with finite weights and loss is snap/tiny_iter_2.caffemodel" in result.error_line()


def test_a_learning_rate_beyond_float32_is_one_line(tmp_path):
    """3e38 × lr_mult 2 overflows float32 (Caffe's rate type): a torch RuntimeError traceback before."""
    solver = _solver(tmp_path, "3e38")
    result = run_dynsal(["train", solver, *TRAIN], cwd=tmp_path)
    assert result.returncode == 1
    assert "the learning rate of layer 'conv1' blob 1 is 6e+38" in result.error_line()


def _start(tmp_path: Path, solver: str, **popen) -> subprocess.Popen:
    return start_dynsal(["train", solver, *TRAIN], env=dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1"),
                        cwd=tmp_path, **popen)


def _logged_iterations(tmp_path: Path) -> List[int]:
    """The training iterations of the log's complete lines (a stopped run may be writing the next one)."""
    text = (tmp_path / "snap" / "tiny_log.jsonl").read_text()
    records = [json.loads(line) for line in text.split("\n")[:-1]]
    return [r["iteration"] for r in records if r["phase"] == "train"]


def _last_snapshot(tmp_path: Path) -> int:
    states = (tmp_path / "snap").glob("tiny_iter_*.solverstate")
    return max((int(p.stem.split("_")[-1]) for p in states), default=-1)


def _stop_past_a_snapshot(process: subprocess.Popen, tmp_path: Path) -> int:
    """Freeze `process` (SIGSTOP) once its log holds an iteration past its last snapshot; that snapshot's
    iteration. The log is checked while the process is frozen, so what was seen is what is left."""
    while True:
        count = len(_logged_iterations(tmp_path))
        process.send_signal(signal.SIGSTOP)
        last = _last_snapshot(tmp_path)
        if last > 0 and max(_logged_iterations(tmp_path)) > last:
            return last
        process.send_signal(signal.SIGCONT)
        wait_for(lambda seen=count: len(_logged_iterations(tmp_path)) > seen, "new logged iteration", process)


@pytest.mark.timing_sensitive
def test_killed_and_resumed_training_logs_every_iteration_once(tmp_path):
    """kill -9 a few iterations after a snapshot (of a run that cannot have ended), resume from it 100
    iterations further: the log is truncated to the snapshot's iteration, so it holds every iteration once
    (and each test once)."""
    solver = tmp_path / _solver(tmp_path, "0.001", snapshot=50, max_iter=ENDLESS)
    solver.write_text(solver.read_text() + " test_iter: 1 test_interval: 25")
    process = _start(tmp_path, solver.name, stdout=subprocess.DEVNULL)
    wait_for(lambda: _last_snapshot(tmp_path) > 0, "snapshot", process)
    last = _stop_past_a_snapshot(process, tmp_path)
    process.kill()
    process.communicate()
    assert max(_logged_iterations(tmp_path)) > last  # the log ran past the snapshot: those iterations are redone
    end = last + 100
    solver.write_text(solver.read_text().replace(f"max_iter: {ENDLESS}", f"max_iter: {end}"))
    resumed = run_dynsal(["train", solver.name, *TRAIN, "--resume", f"snap/tiny_iter_{last}.solverstate"],
                         cwd=tmp_path, timeout=SAFETY_NET_S)
    assert resumed.returncode == 0, resumed.stderr
    records = _log(tmp_path)
    assert [r["iteration"] for r in records if r["phase"] == "train"] == list(range(end))
    assert [r["iteration"] for r in records if r["phase"] == "test"] == list(range(0, end + 1, 25))


@pytest.mark.timing_sensitive
@pytest.mark.parametrize("sig, status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_stop_signals_snapshot_and_exit_non_zero(tmp_path, sig, status):
    """Ctrl-C / SIGTERM: a snapshot is written, then exit 128 + signal (caffe train exits 0), so a script
    with `set -e` stops instead of going on with an interrupted model."""
    solver = _solver(tmp_path, "0.001", snapshot=0, max_iter=ENDLESS)
    process = _start(tmp_path, solver)
    log = tmp_path / "snap" / "tiny_log.jsonl"
    wait_for(lambda: log.exists() and len(log.read_text().splitlines()) >= 3, "third logged iteration", process)
    process.send_signal(sig)
    out, err = process.communicate(timeout=SAFETY_NET_S)
    assert process.returncode == status, err
    assert err == ""
    (state,) = (tmp_path / "snap").glob("tiny_iter_*.solverstate")
    assert f"stopped by {sig.name} at iteration" in out
    assert f"continue with --resume {state.relative_to(tmp_path)}" in out
    assert io.read_solverstate(state).iter == int(state.stem.split("_")[-1]) >= 3


def test_train_help_says_how_it_differs_from_caffe():
    result = run_dynsal(["train", "--help"])
    assert "exit status 130 / 143" in result.stdout and "caffe train` exits 0" in result.stdout
