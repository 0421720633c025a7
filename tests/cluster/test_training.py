"""`dynsal train` on several SLURM nodes: ranks from SLURM's variables, USR1/SIGTERM stops, requeue, resume.

`srun -N2 -n2 dynsal train` (gloo on CPU) ends with the weights `torchrun --nproc_per_node 2` gives on
one host, one set of snapshots, one log. recipes/slurm/train.sbatch on two nodes: USR1 to the batch
script (what `--signal=B:USR1@120` sends before the time limit) snapshots and stops every rank, the job
requeues itself and resumes from that snapshot (`--resume latest`); scancel (SIGTERM) then snapshots once
and stops every rank; a new job resuming from there ends with the weights of an uninterrupted run.
"""
from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from dynsal.caffe import io
from dynsal.caffe.blobs import blob_to_array
from tests.conftest import REPO
from tests.engines.test_solver import tiny_solver

TRAIN = [sys.executable, "-m", "dynsal", "train", "solver.prototxt", "--engine", "torch", "--device", "cpu",
         "--quiet"]


def weights(path: Path):
    return {(layer.name, i): blob_to_array(b) for layer in io.read_net(path).layer for i, b in enumerate(layer.blobs)}


def assert_same_weights(got: Path, expected: Path):
    a, b = weights(got), weights(expected)
    assert sorted(a) == sorted(b) and a
    for key in b:
        np.testing.assert_allclose(a[key], b[key], rtol=0, atol=1e-6 * max(1.0, float(np.abs(b[key]).max())),
                                   err_msg=str(key))


def train_records(log: Path):
    return [r for r in map(json.loads, log.read_text().splitlines()) if r["phase"] == "train"]


def wait_for(condition, what: str, timeout: float = 300):
    """Poll `condition` (a safety-net timeout, not a timing assumption)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


@pytest.fixture()
def solver(tmp_path):
    tiny_solver(tmp_path, max_iter=6)
    return tmp_path


def with_prefix(folder: Path, prefix: str, max_iter: int = 6):
    text = (folder / "solver.prototxt").read_text()
    text = re.sub(r'snapshot_prefix: "[^"]*"', f'snapshot_prefix: "snap/{prefix}"', text)
    (folder / "solver.prototxt").write_text(re.sub(r"max_iter: \d+", f"max_iter: {max_iter}", text))


def test_srun_on_two_nodes_equals_torchrun_on_one_host(slurm, solver):
    with_prefix(solver, "srun")
    run = slurm.run("srun", "-N2", "-n2", "--export=ALL,OMP_NUM_THREADS=1", *TRAIN, cwd=solver)
    assert run.stdout.count("finished at iteration 6") == 1  # rank 0 alone reports
    with_prefix(solver, "torchrun")
    env = dict(slurm.env, OMP_NUM_THREADS="1")
    torchrun = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                               "-m", "dynsal", *TRAIN[3:]], cwd=solver, env=env, capture_output=True, text=True,
                              timeout=600)
    assert torchrun.returncode == 0, torchrun.stderr[-3000:]
    assert_same_weights(solver / "snap" / "srun_iter_6.caffemodel", solver / "snap" / "torchrun_iter_6.caffemodel")
    srun_files = sorted(p.name for p in (solver / "snap").glob("srun*"))
    assert srun_files == ["srun_iter_4.caffemodel", "srun_iter_4.solverstate", "srun_iter_6.caffemodel",
                          "srun_iter_6.solverstate", "srun_log.jsonl", "srun_solver.resolved.prototxt"]
    assert [r["iteration"] for r in train_records(solver / "snap" / "srun_log.jsonl")] == list(range(6))


def test_time_limit_requeue_scancel_and_resume(slurm, solver):
    with_prefix(solver, "job", max_iter=1000000)
    (solver / "solver.prototxt").write_text((solver / "solver.prototxt").read_text().replace("snapshot: 4", ""))
    log, out = solver / "snap" / "job_log.jsonl", solver / "train.out"
    env = {"SOLVER": "solver.prototxt", "DEVICE": "cpu", "DYNSAL": f"{sys.executable} -m dynsal",
           "OMP_NUM_THREADS": "1"}
    submitted = slurm.run("sbatch", "--parsable", f"--output={out}", "--export=ALL," + ",".join(
        f"{k}={v}" for k, v in env.items()), str(REPO / "recipes" / "slurm" / "train.sbatch"), cwd=solver)
    job = submitted.stdout.strip()
    try:
        wait_for(lambda: log.exists() and len(train_records(log)) >= 3, "the first iterations")
        slurm.run("scancel", "--batch", "--signal=USR1", job)  # what --signal=B:USR1@120 does at the limit
        wait_for(lambda: "--resume latest: snap/job_iter_" in (out.read_text() if out.exists() else ""),
                 "the requeued run")
        first = int(re.search(r"--resume latest: snap/job_iter_(\d+)\.solverstate", out.read_text()).group(1))
        wait_for(lambda: train_records(log)[-1]["iteration"] >= first + 2, "the requeued run's iterations")
        slurm.run("scancel", job)  # SIGTERM to every task
        wait_for(lambda: "stopped by SIGTERM" in out.read_text(), "the scancelled run's last line")
        wait_for(lambda: job not in slurm.run("squeue", "-h", "-o", "%i").stdout.split(), "the job to end")
    finally:
        slurm.run("scancel", job, check=False)
    text = out.read_text()
    assert text.count("stopped by SIGUSR1") == 1 and "requeueing job" in text and "restart 1" in text
    second = int(re.search(r"stopped by SIGTERM at iteration (\d+)", text).group(1))
    assert text.count("stopped by SIGTERM") == 1 and second >= first + 2
    states = sorted(p.name for p in (solver / "snap").glob("job_iter_*"))
    assert states == sorted(f"job_iter_{i}.{kind}" for i in (first, second) for kind in ("caffemodel", "solverstate"))
    iterations = [r["iteration"] for r in train_records(log)]
    assert iterations == list(range(second))  # one log, each iteration once
    end = second + 3
    resumed = slurm.run("srun", "-N2", "-n2", "--export=ALL,OMP_NUM_THREADS=1", *TRAIN, "--resume", "latest",
                        "--max-iter", str(end), cwd=solver)
    assert f"--resume latest: snap/job_iter_{second}.solverstate" in resumed.stdout
    with_prefix(solver, "straight", max_iter=end)
    slurm.run("srun", "-N2", "-n2", "--export=ALL,OMP_NUM_THREADS=1", *TRAIN, cwd=solver)
    assert_same_weights(solver / "snap" / f"job_iter_{end}.caffemodel",
                        solver / "snap" / f"straight_iter_{end}.caffemodel")
