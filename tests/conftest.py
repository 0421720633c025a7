"""Shared fixtures: the real-Caffe oracle (and bullseye's stack), the CUDA + cuDNN Caffe build, the
torchvision environment; the CI guard's hooks (tests/ci_guard.py: with CI=true a skipped oracle, parity
or RAFT test, or a module skipped at collection, fails the run).

Outside CI their tests skip with the reason (no root, no chroot, no torchvision pair). With CI=true,
an environment that cannot be built fails its tests.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from dynsal.errors import OracleUnavailable
from dynsal.oracle import Oracle, oracle_root, selected_oracle
from tests.ci_guard import (  # noqa: F401  (pytest finds the hooks here by name)
    IN_CI,
    pytest_collection_modifyitems,
    pytest_collectreport,
    pytest_runtest_logreport,
    pytest_sessionfinish,
    pytest_terminal_summary,
)

REPO = Path(__file__).resolve().parents[1]

# The tests run as in an activated environment: the console scripts installed beside the interpreter that runs
# them (dynsal, hadolint, ruff) come first on PATH, also when it is started as `.venv/bin/python -m pytest`.
os.environ["PATH"] = os.pathsep.join([sysconfig.get_path("scripts"), os.environ.get("PATH", "")])


@pytest.fixture(autouse=True, scope="session")
def conv_algorithm_cache(tmp_path_factory):
    """The convolution algorithm choices of the tests' nets (dynsal.engines.torch.convalgo) in a folder of
    the session, never the user's cache; and, unless the environment names one, direct convolution
    (each algorithm's parity is tested with it forced; timing-based choices would make runs differ)."""
    os.environ["DYNSAL_CONV_CACHE"] = str(tmp_path_factory.mktemp("conv-cache") / "conv-algorithms.json")
    os.environ.setdefault("DYNSAL_CONV_ALGO", "direct")


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
    """BVLC Caffe built from source with CUDA + cuDNN: the GPU Docker image's file system (docker/Dockerfile,
    mounted by scripts/mount_image.sh gpu), run in CPU mode: the trixie oracle, whichever oracle DYNSAL_ORACLE
    selects. Built and mounted here only in CI or when DYNSAL_ORACLE=trixie selects it (docker/README.md gives
    the build time; .ci/run builds and mounts it first); elsewhere its tests skip until
    scripts/mount_image.sh gpu has mounted it."""
    try:
        return Oracle.ensure(build=IN_CI or selected_oracle() == "trixie", name="trixie")
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


@pytest.fixture(scope="module")
def module_workdir(oracle):
    """A folder shared with the oracle's chroot for a whole test module, removed afterwards — also when
    the module's fixture that fills it fails (Caffe results take gigabytes)."""
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
                            text=True, env=dict(os.environ, PYTHON=sys.executable))
    if result.returncode != 0:
        _unavailable("torchvision environment", result.stderr.strip().splitlines()[-1] if result.stderr else "")
    return result.stdout.strip().splitlines()[-1]


def _tool(what: str, names, install: str) -> str:
    """The path of the first of `names` on PATH; skips (fails in CI) naming how to install it."""
    for name in names:
        path = shutil.which(name)
        if path:
            return path
    _unavailable(what, f"no {' or '.join(names)} on PATH: {install} (CI: .ci/report_tools.sh)")


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's Chromium, run headless to open `dynsal eval --html` reports."""
    return _tool("Chromium", ("chromium", "chromium-browser"), "apt-get install chromium")


@pytest.fixture(scope="session")
def pdflatex() -> str:
    """pdflatex with booktabs, to compile `dynsal eval --latex` tables."""
    return _tool("pdflatex", ("pdflatex",), "apt-get install texlive-latex-base texlive-latex-recommended")
