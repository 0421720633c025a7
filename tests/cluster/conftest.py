"""The `slurm` fixture: a real SLURM cluster (tests/cluster/local_slurm.py) for this folder's tests.

Outside CI, where SLURM's programs are missing, its tests skip saying so; with CI=true a cluster that
cannot start fails them (tests/ci_guard.py counts them as the kind "slurm").
"""
from __future__ import annotations

import os

import pytest

from tests.cluster.local_slurm import ClusterUnavailable, LocalSlurm
from tests.conftest import REPO, _unavailable


@pytest.fixture(scope="session")
def slurm(tmp_path_factory):
    """A started cluster whose jobs import this checkout's dynsal; stopped by PID afterwards, also on failure."""
    python_path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    cluster = LocalSlurm(tmp_path_factory.mktemp("slurm"), {"PYTHONPATH": python_path})
    try:
        try:
            cluster.start()
        except ClusterUnavailable as exc:
            _unavailable("SLURM cluster", str(exc))
        yield cluster
    finally:
        cluster.stop()
