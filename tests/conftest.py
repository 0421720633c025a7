"""Shared fixtures: the real-Caffe oracle and the torchvision environment; the CI guard's hooks
(tests/ci_guard.py: with CI=true a skipped oracle, parity or RAFT test, or a module skipped at
collection, fails the run).

Outside CI their tests skip with the reason (no root, no chroot, no torchvision pair). With CI=true,
an environment that cannot be built fails its tests.
"""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from dynsal.errors import OracleUnavailable
from dynsal.oracle import Oracle
from tests.ci_guard import (  # noqa: F401  (pytest finds the hooks here by name)
    IN_CI,
    pytest_collection_modifyitems,
    pytest_collectreport,
    pytest_runtest_logreport,
    pytest_sessionfinish,
    pytest_terminal_summary,
)

REPO = Path(__file__).resolve().parents[1]


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


@pytest.fixture()
def workdir(oracle):
    """A folder shared with the chroot (see dynsal.oracle.Workdir), removed afterwards."""
    wd = oracle.workdir()
    yield wd
    shutil.rmtree(wd.host, ignore_errors=True)


@pytest.fixture(scope="module")
def module_workdir(oracle):
    """A folder shared with the chroot for a whole test module, removed afterwards — also when the
    module's fixture that fills it fails (Caffe results take gigabytes)."""
    wd = oracle.workdir()
    yield wd
    shutil.rmtree(wd.host, ignore_errors=True)


@pytest.fixture(scope="session")
def torchvision_python() -> str:
    """The python of a venv with torch + torchvision + dynsal (scripts/build_torchvision_env.sh)."""
    result = subprocess.run(["bash", str(REPO / "scripts" / "build_torchvision_env.sh")], capture_output=True,
                            text=True)
    if result.returncode != 0:
        _unavailable("torchvision environment", result.stderr.strip().splitlines()[-1] if result.stderr else "")
    return result.stdout.strip().splitlines()[-1]
