"""Shared fixtures: the real-Caffe oracle, the CUDA + cuDNN Caffe build, the torchvision environment,
and the rule that CI skips none of them.

Outside CI their tests skip with the reason (no root, no chroot, no torchvision pair). With CI=true,
an environment that cannot be built fails its tests, and a run in which any of their tests was
skipped, or none ran, exits non-zero.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from dynsal.errors import OracleUnavailable
from dynsal.oracle import Oracle, oracle_root

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
REPO = Path(__file__).resolve().parents[1]
#: fixture -> what its tests run against (CI must run them all)
GUARDED = {"oracle": "oracle tests (real Caffe)", "bullseye_oracle": "Debian bullseye stack tests (Caffe, Python 3.9)",
           "caffe_cuda": "CUDA + cuDNN Caffe build tests (CPU mode)", "torchvision_python": "RAFT tests (torchvision)"}
_outcomes = {name: {"passed": 0, "skipped": 0, "failed": 0} for name in GUARDED}


def _unavailable(what: str, reason: str):
    if IN_CI:
        pytest.fail(f"{what} unavailable in CI: {reason}")
    pytest.skip(f"{what} unavailable: {reason}")


@pytest.fixture(scope="session")
def oracle() -> Oracle:
    try:
        return Oracle.ensure(build=True)
    except OracleUnavailable as exc:
        _unavailable("real-Caffe oracle", str(exc))


@pytest.fixture(scope="session")
def bullseye_oracle() -> Oracle:
    """Debian bullseye's packaged Caffe with its Python 3.9 / numpy 1.19 / protobuf 3.12, whichever oracle
    DYNSAL_ORACLE selects (for the tests of that stack)."""
    try:
        chroot = Oracle.ensure(build=True, name="bullseye")
    except OracleUnavailable as exc:
        _unavailable("Debian bullseye's Caffe", str(exc))
    if chroot.root == oracle_root("trixie"):
        _unavailable("Debian bullseye's Caffe", "bullseye could not be fetched; its build fell back to trixie")
    return chroot


@pytest.fixture(scope="session")
def caffe_cuda() -> Oracle:
    """BVLC Caffe built from source with CUDA + cuDNN (scripts/build_caffe_chroot.sh), run in CPU mode:
    the trixie oracle, whichever oracle DYNSAL_ORACLE selects."""
    try:
        return Oracle.ensure(build=True, name="trixie")
    except OracleUnavailable as exc:
        _unavailable("CUDA + cuDNN Caffe build", str(exc))


def _workdir(chroot: Oracle):
    wd = chroot.workdir()
    yield wd
    shutil.rmtree(wd.host, ignore_errors=True)


@pytest.fixture()
def workdir(oracle):
    """A folder shared with the oracle's chroot (see dynsal.oracle.Workdir), removed afterwards."""
    yield from _workdir(oracle)


@pytest.fixture()
def bullseye_workdir(bullseye_oracle):
    """A folder shared with bullseye's chroot, removed afterwards."""
    yield from _workdir(bullseye_oracle)


@pytest.fixture()
def cuda_workdir(caffe_cuda):
    """A folder shared with the CUDA Caffe build's chroot, removed afterwards."""
    yield from _workdir(caffe_cuda)


@pytest.fixture(scope="session")
def torchvision_python() -> str:
    """The python of a venv with torch + torchvision + dynsal (scripts/build_torchvision_env.sh)."""
    result = subprocess.run(["bash", str(REPO / "scripts" / "build_torchvision_env.sh")], capture_output=True,
                            text=True)
    if result.returncode != 0:
        _unavailable("torchvision environment", result.stderr.strip().splitlines()[-1] if result.stderr else "")
    return result.stdout.strip().splitlines()[-1]


def pytest_collection_modifyitems(items):
    for item in items:
        for name in GUARDED:
            if name in item.fixturenames:
                item.add_marker(getattr(pytest.mark, name))


def pytest_runtest_logreport(report):
    for name in GUARDED:
        if name not in report.keywords:
            continue
        if report.when == "call" or (report.when == "setup" and not report.passed):
            key = "skipped" if report.skipped else ("passed" if report.passed else "failed")
            _outcomes[name][key] += 1


def pytest_terminal_summary(terminalreporter):
    for name, label in GUARDED.items():
        counts = ", ".join(f"{v} {k}" for k, v in _outcomes[name].items())
        terminalreporter.write_line(f"{label}: {counts}")


def pytest_sessionfinish(session, exitstatus):
    for name, label in GUARDED.items():
        if IN_CI and (_outcomes[name]["skipped"] or not _outcomes[name]["passed"]):
            session.exitstatus = 1
            print(f"\nCI=true: {label} must run, got {_outcomes[name]}")
