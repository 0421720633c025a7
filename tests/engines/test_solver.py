"""`dynsal train` with the torch engine: snapshots, logs, tests, resume, stop signals, NaN losses.
(Parity with real `caffe train` is in tests/oracle/test_solver_parity.py.)"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from types import SimpleNamespace

import h5py
import numpy as np
import pytest

from dynsal.caffe import io
from dynsal.caffe.blobs import blob_to_array
from dynsal.cli import main
from tests.interrupting import SAFETY_NET_S, wait_for
from tests.oracle.datasets import write_tiny_training_set

pytest.importorskip("torch", reason="the torch solver needs torch")

#: max_iter of a run that is stopped or killed: it cannot end first, however fast the machine
ENDLESS = 10 ** 9


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


def test_train_in_python_is_the_command(tmp_path, monkeypatch):
    """`dynsal.train(solver, TrainOptions(...))` trains as `dynsal train` does and says how it ended."""
    import dynsal
    from dynsal.trainer import TrainOptions

    monkeypatch.chdir(tmp_path)
    solver = tiny_solver(tmp_path, max_iter=8)
    said = []
    result = dynsal.train(solver, TrainOptions(engine="torch", device="cpu", max_iter=5, resume="latest",
                                               progress=False), say=said.append)
    assert said == ["--resume latest: no snapshot snap/tiny_iter_*.solverstate yet; starting afresh"]
    assert (result.status, result.rank, result.iteration, result.stopped_by) == (0, 0, 5, None)
    assert result.snapshot.endswith("tiny_iter_5.caffemodel") and result.log.endswith("tiny_log.jsonl")
    log = records(tmp_path / "snap" / "tiny_log.jsonl")
    assert [r["iteration"] for r in log if r["phase"] == "train"] == list(range(5))


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


def test_test_state_stages_pick_the_test_nets_layers(tmp_path, monkeypatch):
    """test_state is merged into the test net's NetState (Solver::InitTestNets), train_state into the train net's."""
    monkeypatch.chdir(tmp_path)
    solver = tiny_solver(tmp_path, 'test_iter: 1 test_interval: 3 test_state { stage: "probe" }', max_iter=3)
    with open(tmp_path / "tiny.prototxt", "a") as net:
        net.write('layer { name: "probe" type: "Power" bottom: "conv2" top: "probe" include { stage: "probe" } }\n')
    assert main(["train", solver, "--engine", "torch", "--no-progress"]) == 0
    log = records(tmp_path / "snap" / "tiny_log.jsonl")
    assert all("probe" in r["outputs"] for r in log if r["phase"] == "test")
    assert not any("probe" in r["outputs"] for r in log if r["phase"] == "train")


def test_hdf5_snapshots_resume_like_binary_ones(tmp_path, monkeypatch):
    """snapshot_format HDF5: .caffemodel.h5 + .solverstate.h5 (diffs with snapshot_diff); resuming from the
    HDF5 state ends where the binary run ends."""
    monkeypatch.chdir(tmp_path)
    solver = tiny_solver(tmp_path, "snapshot_format: HDF5 snapshot_diff: true", max_iter=8)
    assert main(["train", solver, "--engine", "torch", "--no-progress"]) == 0
    assert sorted(p.name for p in (tmp_path / "snap").glob("tiny_iter_*")) == [
        "tiny_iter_4.caffemodel.h5", "tiny_iter_4.solverstate.h5", "tiny_iter_8.caffemodel.h5",
        "tiny_iter_8.solverstate.h5"]
    state = io.read_solverstate(tmp_path / "snap" / "tiny_iter_4.solverstate.h5")
    assert (state.iter, state.current_step, state.learned_net) == (4, 1, "snap/tiny_iter_4.caffemodel.h5")
    with h5py.File(tmp_path / "snap" / "tiny_iter_8.caffemodel.h5", "r") as handle:
        assert set(handle) == {"data", "diff"} and set(handle["data"]) == set(handle["diff"])
        assert handle["data"]["conv1"]["0"].dtype == np.float32 and np.abs(handle["diff"]["conv1"]["0"][()]).max() > 0
    straight = io.read_net(tmp_path / "snap" / "tiny_iter_8.caffemodel.h5")
    (tmp_path / "binary").mkdir()
    binary = tiny_solver(tmp_path / "binary", max_iter=8)
    monkeypatch.chdir(tmp_path / "binary")
    assert main(["train", binary, "--engine", "torch", "--no-progress"]) == 0
    reference = {layer.name: layer.blobs for layer in io.read_net("snap/tiny_iter_8.caffemodel").layer}
    assert all(layer.blobs == reference[layer.name] for layer in straight.layer if len(layer.blobs))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "snap" / "tiny_iter_8.caffemodel.h5").unlink()
    assert main(["train", solver, "--engine", "torch", "--no-progress", "--resume",
                 "snap/tiny_iter_4.solverstate.h5"]) == 0
    assert io.read_net(tmp_path / "snap" / "tiny_iter_8.caffemodel.h5") == straight


def test_non_finite_loss_stops_with_the_last_good_snapshot(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    solver = tiny_solver(tmp_path, max_iter=40)
    (tmp_path / "solver.prototxt").write_text((tmp_path / "solver.prototxt").read_text().replace("0.001", "1e6"))
    assert main(["train", solver, "--engine", "torch", "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "the loss is" in err and "lower base_lr" in err


@pytest.mark.timing_sensitive
def test_sigint_snapshots_then_stops(tmp_path):
    solver = tiny_solver(tmp_path, max_iter=ENDLESS)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    process = subprocess.Popen([sys.executable, "-m", "dynsal", "train", solver, "--engine", "torch", "--no-progress"],
                               cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    log = tmp_path / "snap" / "tiny_log.jsonl"
    wait_for(lambda: log.exists() and len(log.read_text().splitlines()) >= 3, "third logged iteration", process)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=SAFETY_NET_S)
    assert process.returncode == 130, err  # 128 + SIGINT: unlike caffe train's 0, scripts see the interruption
    states = list((tmp_path / "snap").glob("tiny_iter_*.solverstate"))
    assert states and "stopped by SIGINT" in out and "continue with --resume" in out
    last = max(int(p.stem.split("_")[-1]) for p in states)
    assert io.read_solverstate(tmp_path / "snap" / f"tiny_iter_{last}.solverstate").iter == last >= 3


def test_data_parallel_two_cpu_processes_equal_one_with_the_combined_batch(tmp_path):
    """torchrun with 2 gloo processes, batch 2 each = 1 process with batch 4 (Caffe's multi-GPU meaning)."""
    solver = tiny_solver(tmp_path, max_iter=5)
    (tmp_path / "solver.prototxt").write_text((tmp_path / "solver.prototxt").read_text()
                                              .replace('snapshot_prefix: "snap/tiny"', 'snapshot_prefix: "snap/ddp"'))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path), OMP_NUM_THREADS="1")
    ddp = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                          "-m", "dynsal", "train", solver, "--engine", "torch", "--no-progress"],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    net = (tmp_path / "tiny.prototxt").read_text()
    (tmp_path / "tiny.prototxt").write_text(net.replace("batch_size: 2", "batch_size: 4"))
    (tmp_path / "solver.prototxt").write_text((tmp_path / "solver.prototxt").read_text()
                                              .replace('snapshot_prefix: "snap/ddp"', 'snapshot_prefix: "snap/one"'))
    single = subprocess.run([sys.executable, "-m", "dynsal", "train", solver, "--engine", "torch", "--no-progress"],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert single.returncode == 0, single.stderr[-3000:]
    def params(name):
        model = io.read_net(tmp_path / "snap" / f"{name}_iter_5.caffemodel")
        return {(layer.name, i): blob_to_array(b) for layer in model.layer for i, b in enumerate(layer.blobs)}

    got, expected = params("ddp"), params("one")
    assert sorted(got) == sorted(expected)
    for key in expected:
        scale = abs(expected[key]).max()
        assert abs(got[key] - expected[key]).max() <= 1e-5 * scale, key
    assert not list((tmp_path / "snap").glob("ddp_iter_5.caffemodel.*"))  # written once (by rank 0)


@pytest.mark.timing_sensitive
def test_killed_training_resumes_to_the_uninterrupted_weights(tmp_path):
    """SIGKILL mid-run (a run that cannot have ended by its first snapshot), resume from the last snapshot to
    a few iterations past it: the same final weights as a run never killed (data position included)."""
    solver = tiny_solver(tmp_path, max_iter=ENDLESS)
    text = (tmp_path / "solver.prototxt").read_text().replace("snapshot: 4", "snapshot: 3")
    (tmp_path / "solver.prototxt").write_text(text)
    net = (tmp_path / "tiny.prototxt").read_text()  # 4 records, batch 3: snapshots fall mid-epoch
    (tmp_path / "tiny.prototxt").write_text(net.replace("batch_size: 2", "batch_size: 3"))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    command = [sys.executable, "-m", "dynsal", "train", solver, "--engine", "torch", "--no-progress"]
    process = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(lambda: list((tmp_path / "snap").glob("tiny_iter_*.solverstate")), "snapshot", process)
    process.kill()
    process.wait()
    states = sorted((tmp_path / "snap").glob("tiny_iter_*.solverstate"), key=lambda p: int(p.stem.split("_")[-1]))
    last = int(states[-1].stem.split("_")[-1])
    end = last + 7  # the run goes on past the snapshot it resumes from, to a mid-epoch end
    text = text.replace(f"max_iter: {ENDLESS}", f"max_iter: {end}")
    (tmp_path / "solver.prototxt").write_text(text)
    resumed = subprocess.run(command + ["--resume", str(states[-1])], cwd=tmp_path, env=env, capture_output=True,
                             text=True, timeout=SAFETY_NET_S)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    final = io.read_net(tmp_path / "snap" / f"tiny_iter_{end}.caffemodel")
    (tmp_path / "solver.prototxt").write_text(text.replace('"snap/tiny"', '"snap/straight"'))
    straight = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=SAFETY_NET_S)
    assert straight.returncode == 0, straight.stderr[-2000:]
    expected = io.read_net(tmp_path / "snap" / f"straight_iter_{end}.caffemodel")
    assert [(a.name, len(a.blobs)) for a in final.layer] == [(b.name, len(b.blobs)) for b in expected.layer]
    for a, b in zip(final.layer, expected.layer):
        for x, y in zip(a.blobs, b.blobs):
            np.testing.assert_array_equal(blob_to_array(x), blob_to_array(y), err_msg=a.name)
