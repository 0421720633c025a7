"""Interrupting and killing dynsal at a state the test observes, whatever the machine's speed.

A test that signals after a fixed wait, or gives a command a fixed time, fails on a busy machine: the work
is over before the signal comes, or the command is still stopping when its allowance ends. The tests
instead signal when they see a state (a file written, a line logged), on inputs that cannot be finished by
then (`long_frame_folder`), and wait for an outcome (a line, the end of a process or of a whole process
group). `SAFETY_NET_S` only bounds a hang; no result depends on it.

Tests that interrupt, kill or race processes are marked `timing_sensitive`: CI runs them once more with
the machine kept busy (scripts/ci_under_load.sh).
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Dict, Optional, Sequence

import cv2
import numpy as np

#: the longest a test waits for an outcome; reaching it means a hang, not a slow machine
SAFETY_NET_S = 600.0
_POLL_S = 0.05


def wait_for(predicate: Callable[[], bool], what: str, process: Optional[subprocess.Popen] = None) -> None:
    """Return once `predicate()` holds. Fails naming `what` when `process` ends first, or when
    `SAFETY_NET_S` pass (a hang)."""
    deadline = time.monotonic() + SAFETY_NET_S
    while not predicate():
        if process is not None and process.poll() is not None:
            raise AssertionError(f"the process ended (status {process.returncode}) before {what}")
        assert time.monotonic() < deadline, f"still no {what} after {SAFETY_NET_S:.0f} s: a hang"
        time.sleep(_POLL_S)


def wait_until_gone(group: int) -> None:
    """Return once no process of the process group `group` is left (workers included)."""
    def gone() -> bool:
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            return True
        return False

    wait_for(gone, f"end of every process of group {group} (a process of the interrupted command is left)")


def start_dynsal(args: Sequence[str], env: Optional[Dict[str, str]] = None, **popen) -> subprocess.Popen:
    """`python -m dynsal ARGS` as the leader of a new process group (a terminal's foreground job), with
    text pipes for stdout and stderr unless `popen` says otherwise."""
    options = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True, **popen}
    return subprocess.Popen([sys.executable, "-m", "dynsal", *map(str, args)], env=env, start_new_session=True,
                            **options)


def ctrl_c(process: subprocess.Popen) -> None:
    """SIGINT to the whole process group of `process`: what a terminal's Ctrl-C does."""
    os.killpg(process.pid, signal.SIGINT)


def long_frame_folder(folder: Path, frames: Sequence[np.ndarray], count: int) -> Path:
    """A frame folder of `count` frames repeating `frames` in a cycle: one PNG each, the rest symbolic links
    to them. It takes a fraction of a second to make and is decoded frame by frame, so a job on it runs for
    many minutes on any machine: one interrupted after its first output cannot have finished."""
    folder.mkdir(parents=True)
    for index, frame in enumerate(frames):
        assert cv2.imwrite(str(folder / f"{index:06d}.png"), frame)
    for index in range(len(frames), count):
        os.symlink(f"{index % len(frames):06d}.png", folder / f"{index:06d}.png")
    return folder
