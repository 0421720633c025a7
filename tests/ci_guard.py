"""The rule that CI runs what it must: pytest hooks, imported by tests/conftest.py.

Three kinds of test run against something outside this Python: real-Caffe parity (marker
`caffe_parity`: dynsal's results compared with real Caffe's), other checks inside the oracle chroot
(fixture `oracle` or `bullseye_oracle` without that marker: dynsal on bullseye's platform, Caffe's
tools driven by dynsal), dynsal's CUDA + cuDNN Caffe build in CPU mode (fixture `caffe_cuda`: the GPU
image's file system), and RAFT
through torchvision (fixture `torchvision_python`); and two tools CI installs (.ci/report_tools.sh):
Debian's headless Chromium, which opens `dynsal eval --html` reports (fixture `chromium`), and pdflatex,
which compiles `--latex` tables (fixture `pdflatex`); and the Docker images built from
docker/Dockerfile.cpu and docker/Dockerfile (fixtures `cpu_image`, `gpu_image`, `image`); and jobs on a real
local SLURM cluster (fixture `slurm`, tests/cluster). With CI=true the run fails when

- any module was skipped at collection (a module-level `pytest.importorskip` or `skip`, which reports
  no test at all and so would hide whole oracle modules),
- any test of the three kinds was skipped, or
- no real-Caffe parity test, no CUDA Caffe build test, no RAFT test, no Chromium, no pdflatex, no Docker image
  test or no SLURM test passed.

Outside CI such tests skip with their reason. A `caffe_parity` test must use the `oracle` fixture.
"""
from __future__ import annotations

import os

import pytest

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
#: marker -> what its tests run against
KINDS = {"caffe_parity": "real-Caffe parity tests", "oracle": "tests in the Caffe chroot",
         "torchvision_python": "RAFT tests (torchvision)",
         "caffe_cuda": "CUDA + cuDNN Caffe build tests (CPU mode)",
         "chromium": "report tests in headless Chromium", "pdflatex": "LaTeX table tests (pdflatex)",
         "docker_image": "tests in the Docker images", "slurm": "tests on the local SLURM cluster"}
#: kinds of which at least one test must pass in CI
REQUIRED = ("caffe_parity", "caffe_cuda", "torchvision_python", "chromium", "pdflatex", "docker_image", "slurm")
#: fixture -> the kind (marker) of the tests that use it
FIXTURE_KINDS = {"oracle": "oracle", "bullseye_oracle": "oracle", "torchvision_python": "torchvision_python",
                 "caffe_cuda": "caffe_cuda", "chromium": "chromium", "pdflatex": "pdflatex",
                 "cpu_image": "docker_image", "gpu_image": "docker_image", "image": "docker_image",
                 "slurm": "slurm"}

_outcomes = {kind: {"passed": 0, "skipped": 0, "failed": 0} for kind in KINDS}
_collection_skips: list = []


def pytest_collection_modifyitems(items):
    for item in items:
        for fixture, kind in FIXTURE_KINDS.items():
            if fixture in item.fixturenames:
                item.add_marker(getattr(pytest.mark, kind))
        if item.get_closest_marker("caffe_parity") and "oracle" not in item.fixturenames:
            raise pytest.UsageError(f"{item.nodeid} is marked caffe_parity but does not use the oracle fixture")


def pytest_collectreport(report):
    if report.skipped:
        reason = report.longrepr[-1] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        _collection_skips.append(f"{report.nodeid}: {reason}")


def pytest_runtest_logreport(report):
    for kind in KINDS:
        if kind not in report.keywords:
            continue
        if report.when == "call" or (report.when == "setup" and not report.passed):
            key = "skipped" if report.skipped else ("passed" if report.passed else "failed")
            _outcomes[kind][key] += 1


def pytest_terminal_summary(terminalreporter):
    for kind, label in KINDS.items():
        counts = ", ".join(f"{v} {k}" for k, v in _outcomes[kind].items())
        terminalreporter.write_line(f"{label}: {counts}")
    for line in _collection_skips:
        terminalreporter.write_line(f"skipped at collection: {line}")


def ci_failures() -> list:
    """Why this run must fail in CI (empty when it may pass)."""
    failures = [f"module skipped at collection: {line}" for line in _collection_skips]
    for kind, label in KINDS.items():
        if _outcomes[kind]["skipped"]:
            failures.append(f"{label} must run, got {_outcomes[kind]}")
    for kind in REQUIRED:
        if not _outcomes[kind]["passed"]:
            failures.append(f"no {KINDS[kind]} passed: {_outcomes[kind]}")
    return failures


def pytest_sessionfinish(session, exitstatus):
    if not IN_CI:
        return
    failures = ci_failures()
    if failures:
        session.exitstatus = 1
        print("\nCI=true: " + "\nCI=true: ".join(failures))
