"""`dynsal train` with the torch engine: snapshots, logs, tests, resume, stop signals, NaN losses.
(Parity with real `caffe train` is in tests/oracle/test_solver_parity.py.)"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from types import SimpleNamespace

import pytest

from dynsal.caffe import io
from dynsal.cli import main
from tests.oracle.datasets import write_tiny_training_set

pytest.importorskip("torch", reason="the torch solver needs torch")


def tiny_solver(tmp_path, body: str = "", max_iter: int = 6) -> str:
    folder = SimpleNamespace(host=tmp_path, inside=lambda *parts: str(tmp_path.joinpath(*parts)))
    write_tiny_training_set(folder)
    text = (f'net: "tiny.prototxt" base_lr: 0.001 momentum: 0.9 lr_policy: "step" gamma: 0.5 stepsize: 3 '
            f'max_iter: {max_iter} snapshot: 4 snapshot_prefix: "snap/tiny" display: 1 random_seed: 3 {body}')
    (tmp_path / "solver.prototxt").write_text(text)
    return str(tmp_path / "solver.prototxt")


def records(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_train_writes_caffe_snapshots_and_a_log(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    solver = tiny_solver(tmp_path, "test_iter: 2 test_interval: 3")
    assert main(["train", solver, "--engine", "torch", "--no-progress"]) == 0
    snaps = sorted(p.name for p in (tmp_path / "snap").glob("tiny_iter_*"))
    assert snaps == ["tiny_iter_4.caffemodel", "tiny_iter_4.solverstate", "tiny_iter_6.caffemodel",
                     "tiny_iter_6.solverstate"]
    assert io.read_solverstate(tmp_path / "snap" / "tiny_iter_6.solverstate").current_step == 1
    log = records(tmp_path / "snap" / "tiny_log.jsonl")
    train = [r for r in log if r["phase"] == "train"]
    assert [r["iteration"] for r in train] == list(range(6))
    assert [r["lr"] for r in train] == pytest.approx([0.001] * 3 + [0.0005] * 3)
    assert [r["iteration"] for r in log if r["phase"] == "test"] == [0, 3, 6]
    assert (tmp_path / "snap" / "tiny_solver.resolved.prototxt").is_file()
    assert main(["plot-log", str(tmp_path / "snap" / "tiny_log.jsonl"), "-o", str(tmp_path / "curves.png")]) == 0


def test_resume_continues_the_schedule(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    solver = tiny_solver(tmp_path, max_iter=8)
    assert main(["train", solver, "--engine", "torch", "--no-progress",
                 "--resume", "snap/tiny_iter_4.solverstate"]) == 1  # nothing to resume from yet
    assert main(["train", solver, "--engine", "torch", "--no-progress"]) == 0
    straight = io.read_net(tmp_path / "snap" / "tiny_iter_8.caffemodel")
    (tmp_path / "snap" / "tiny_iter_8.caffemodel").unlink()
    assert main(["train", solver, "--engine", "torch", "--no-progress",
                 "--resume", "snap/tiny_iter_4.solverstate"]) == 0
    assert io.read_net(tmp_path / "snap" / "tiny_iter_8.caffemodel") == straight


def test_non_finite_loss_stops_with_the_last_good_snapshot(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    solver = tiny_solver(tmp_path, max_iter=40)
    (tmp_path / "solver.prototxt").write_text((tmp_path / "solver.prototxt").read_text().replace("0.001", "1e6"))
    assert main(["train", solver, "--engine", "torch", "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "the loss is" in err and "lower base_lr" in err


def test_sigint_snapshots_then_stops(tmp_path):
    solver = tiny_solver(tmp_path, max_iter=100000)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    process = subprocess.Popen([sys.executable, "-m", "dynsal", "train", solver, "--engine", "torch", "--no-progress"],
                               cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    log = tmp_path / "snap" / "tiny_log.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and (not log.exists() or len(log.read_text().splitlines()) < 3):
        time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    states = list((tmp_path / "snap").glob("tiny_iter_*.solverstate"))
    assert states and "last snapshot" in out
    last = max(int(p.stem.split("_")[-1]) for p in states)
    assert io.read_solverstate(tmp_path / "snap" / f"tiny_iter_{last}.solverstate").iter == last >= 3
