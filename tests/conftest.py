"""Shared fixtures: the real-Caffe oracle, and the rule that CI never skips it.

Outside CI the oracle tests skip with the reason (no root, no chroot). With CI=true, an oracle
that cannot be built fails its tests, and a run in which any oracle test was skipped, or none ran,
exits non-zero.

"""
from __future__ import annotations

import os
import shutil

import pytest

from dynsal.errors import OracleUnavailable
from dynsal.oracle import Oracle

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
_oracle_outcomes = {"passed": 0, "skipped": 0, "failed": 0}


@pytest.fixture(scope="session")
def oracle() -> Oracle:
    try:
        return Oracle.ensure(build=True)
    except OracleUnavailable as exc:
        if IN_CI:
            pytest.fail(f"real-Caffe oracle unavailable in CI: {exc}")
        pytest.skip(f"real-Caffe oracle unavailable: {exc}")


@pytest.fixture()
def workdir(oracle):
    """A folder shared with the chroot (see dynsal.oracle.Workdir), removed afterwards."""
    wd = oracle.workdir()
    yield wd
    shutil.rmtree(wd.host, ignore_errors=True)


def pytest_collection_modifyitems(items):
    for item in items:
        if "oracle" in item.fixturenames:
            item.add_marker(pytest.mark.oracle)


def pytest_runtest_logreport(report):
    if "oracle" not in report.keywords:
        return
    if report.when == "call" or (report.when == "setup" and not report.passed):
        key = "skipped" if report.skipped else ("passed" if report.passed else "failed")
        _oracle_outcomes[key] += 1


def pytest_terminal_summary(terminalreporter):
    counts = ", ".join(f"{v} {k}" for k, v in _oracle_outcomes.items())
    terminalreporter.write_line(f"oracle tests (real Caffe): {counts}")


def pytest_sessionfinish(session, exitstatus):
    if IN_CI and (_oracle_outcomes["skipped"] or not _oracle_outcomes["passed"]):
        session.exitstatus = 1
        print(f"\nCI=true: oracle tests must run, got {_oracle_outcomes}")
