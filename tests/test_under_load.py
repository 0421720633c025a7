"""The CI step that runs the `timing_sensitive` tests again under CPU load (scripts/ci_under_load.sh): it
selects the interrupt, kill and concurrency tests (not nothing), and its load ends however the run ends."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.interrupting import SAFETY_NET_S

REPO = Path(__file__).resolve().parents[1]
#: tests that failed on a busy machine when they waited for fixed times (issue 22), and their kin
MUST_BE_SELECTED = [
    "tests/predict/test_interrupt.py::test_ctrl_c_is_one_line_and_leaves_no_process",
    "tests/reliability/test_small_faults.py::test_ctrl_c_with_two_workers_is_one_line[make-lmdb]",
    "tests/reliability/test_small_faults.py::test_ctrl_c_with_two_workers_is_one_line[flow]",
    "tests/engines/test_solver.py::test_sigint_snapshots_then_stops",
    "tests/engines/test_solver.py::test_killed_training_resumes_to_the_uninterrupted_weights",
    "tests/reliability/test_training_nonfinite.py::test_killed_and_resumed_training_logs_every_iteration_once",
    "tests/reliability/test_predict_destinations.py::test_kill_9_mid_run_then_rerun_gives_the_uninterrupted_maps",
    "tests/reliability/test_predict_lock.py::test_concurrent_runs_into_one_folder_never_corrupt",
    "tests/reliability/test_parent_killed.py::test_kill_9_leaves_no_worker[predict]",
]


def test_the_marker_selects_the_interrupt_and_concurrency_tests():
    """The selection of scripts/ci_under_load.sh (`-m timing_sensitive`), in the files of the tests it must hold
    (collecting the whole suite here would double the import time for nothing more)."""
    files = sorted({name.split("::")[0] for name in MUST_BE_SELECTED})
    collected = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-m", "timing_sensitive",
                                "-p", "no:cacheprovider", *files], cwd=REPO, capture_output=True, text=True,
                               env=dict(os.environ, CI=""), timeout=SAFETY_NET_S)
    assert collected.returncode == 0, collected.stdout[-3000:] + collected.stderr[-3000:]
    selected = {line for line in collected.stdout.splitlines() if "::" in line}
    assert set(MUST_BE_SELECTED) <= selected, sorted(set(MUST_BE_SELECTED) - selected)


@pytest.mark.parametrize("pytest_status", [0, 1])
def test_the_load_ends_with_the_run(tmp_path, pytest_status):
    """With a stand-in stress-ng (it records its process id) and Python (it records its arguments and exits
    with `pytest_status`): the script passes its arguments to `$PYTHON -m pytest -m timing_sensitive`,
    ends with pytest's status, and no load process is left."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "stress-ng").write_text(f'#!/bin/sh\necho "$*" > {tmp_path}/load.args\necho $$ > {tmp_path}/load.pid\n'
                                       "exec sleep 1000 </dev/null >/dev/null 2>&1\n")
    (bin_dir / "python").write_text(f'#!/bin/sh\nwhile [ ! -s {tmp_path}/load.pid ]; do sleep 0.05; done\n'
                                    f'echo "CI=$CI $*" > {tmp_path}/python.args\nexit {pytest_status}\n')
    for tool in bin_dir.iterdir():
        tool.chmod(0o755)
    env = dict(os.environ, PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}", PYTHON=str(bin_dir / "python"),
               LOAD_CPUS="2", CI="true")
    done = subprocess.run(["bash", str(REPO / "scripts" / "ci_under_load.sh"), "tests/x.py"], env=env,
                          capture_output=True, text=True, timeout=SAFETY_NET_S)
    assert done.returncode == pytest_status, done.stderr
    assert (tmp_path / "python.args").read_text() == "CI= -m pytest -q -m timing_sensitive tests/x.py\n"
    assert (tmp_path / "load.args").read_text() == "--cpu 2 --timeout 30m --quiet\n"
    load = int((tmp_path / "load.pid").read_text())
    try:
        os.kill(load, 0)
    except ProcessLookupError:
        return  # the script waited for the load it stopped: it is gone
    os.kill(load, signal.SIGKILL)
    raise AssertionError("the load process outlived the script")
