"""`kill -9` of a command running worker processes leaves no process behind (`dynsal.workers.exit_with`).

Before, the workers waited for work forever, and with them multiprocessing's fork server and resource
tracker (predict: four processes, about 200 MB, still there minutes later). Each test kills the command
once its worker processes exist (an observed state, not a time), on inputs that take far longer than
that to finish, and then waits, with a generous safety net, until no process of its group is left.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import List

import pytest

from tests.data.synthetic import panning_video, steady_gaze
from tests.predict.helpers import zoo_weights
from tests.reliability.faults import REPO

SAFETY_SECONDS = 180  # a net for a machine under load, not an expected time

#: processes of the group once the workers run: the command, the resource tracker, 2 workers (predict:
#: and multiprocessing's fork server)
GROUP_SIZE = {"predict": 5, "flow": 4, "make-lmdb": 4, "make-hdf5": 4}


def _group(pgid: int) -> List[int]:
    """The processes of process group `pgid` (from /proc), zombies left out."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # ended meanwhile
            continue
        state, _, group = stat[stat.rindex(")") + 2:].split()[:3]
        if int(group) == pgid and state != "Z":
            members.append(int(entry.name))
    return members


def _argv(command: str, tmp_path: Path) -> List[str]:
    """A command with two workers on inputs that take minutes (TV-L1 flow, STSConvNet on a long clip)."""
    if command == "predict":
        pytest.importorskip("torch", reason="prediction runs the torch engine")
        weights = zoo_weights("stsconv", tmp_path)
        video = panning_video(tmp_path / "long.avi", 200, 192, 256)
        return ["predict", "--net", "stsconv", "--weights", str(weights), "--engine", "torch", "--device", "cpu",
                str(video), "-o", str(tmp_path / "out"), "--workers", "2", "--quiet"]
    videos = tmp_path / "video"
    videos.mkdir()
    for seed, name in enumerate(("a_256x192", "b_256x192")):  # DIEM names: the screen size
        panning_video(videos / f"{name}.avi", 60, 192, 256, seed=seed)
        steady_gaze(tmp_path / "gaze", name, 60, (256, 192))
    if command == "flow":
        return ["flow", *map(str, sorted(videos.iterdir())), "-o", str(tmp_path / "out"), "--method", "tvl1",
                "--jobs", "2", "--quiet"]
    return [command, "--videos", str(videos), "--gaze", str(tmp_path / "gaze"), "-o", str(tmp_path / "out"),
            "--resize", "native", "--method", "tvl1", "--no-progress", "--jobs", "2"]


@pytest.mark.timing_sensitive
@pytest.mark.parametrize("command", sorted(GROUP_SIZE))
def test_kill_9_leaves_no_worker(tmp_path, command):
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    argv = _argv(command, tmp_path)
    errors = tmp_path / "stderr.txt"
    with errors.open("w") as stderr:
        process = subprocess.Popen([sys.executable, "-m", "dynsal", *argv], env=env, stdout=subprocess.DEVNULL,
                                   stderr=stderr, start_new_session=True)
    try:
        deadline = time.time() + SAFETY_SECONDS
        while len(_group(process.pid)) < GROUP_SIZE[command]:  # the workers exist
            assert process.poll() is None, f"dynsal {command} ended before its workers ran: {errors.read_text()}"
            assert time.time() < deadline, f"no workers after {SAFETY_SECONDS} s: {_group(process.pid)}"
            time.sleep(0.05)
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        deadline = time.time() + SAFETY_SECONDS
        while _group(process.pid) and time.time() < deadline:
            time.sleep(0.1)
        left = _group(process.pid)
        assert not left, f"dynsal {command} killed: processes {left} of its group still run {SAFETY_SECONDS} s later"
    finally:
        for pid in _group(process.pid):  # whatever the outcome, nothing of the test outlives it
            os.kill(pid, signal.SIGKILL)
