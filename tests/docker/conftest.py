"""The CPU Docker image (docker/Dockerfile.cpu) as a fixture: built by scripts/build_image.sh (docker, else
buildah; cached) and run by scripts/run_image.sh, `docker run --rm` semantics, in a folder of the test's.

In CI (.ci/run builds the image first) the fixture builds it again, from cache, so the image holds this
checkout's dynsal, and fails when it cannot. Elsewhere it rebuilds an image already built (a cached build)
and skips, saying why, where there is none or no buildah/Docker to build one.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional

import pytest

from tests.conftest import IN_CI, _unavailable

REPO = Path(__file__).resolve().parents[2]
CPU_IMAGE = "localhost/dynsal:cpu"


def docker_daemon() -> bool:
    """Whether a Docker daemon answers (`docker info`): then docker builds and runs the image, else buildah."""
    return shutil.which("docker") is not None and subprocess.run(["docker", "info"],
                                                                 capture_output=True).returncode == 0


def image_exists(name: str) -> bool:
    command = (["docker", "image", "inspect", name] if docker_daemon()
               else ["buildah", "--storage-driver", "overlay", "inspect", "--type", "image", name])
    return shutil.which(command[0]) is not None and subprocess.run(command, capture_output=True).returncode == 0


@dataclass
class Image:
    """A built image and how to run it: `run(args, folder)` is `scripts/run_image.sh IMAGE ARGS` in `folder`
    (mounted at /data, WORKDIR), with `folder/models` as the models folder (/models)."""

    name: str

    def run(self, args: List[str], folder: Path, entrypoint: Optional[str] = None, check: bool = True,
            timeout: float = 1800) -> subprocess.CompletedProcess:
        command = ["bash", str(REPO / "scripts" / "run_image.sh")]
        command += ["--entrypoint", entrypoint] if entrypoint else []
        env = dict(os.environ, DYNSAL_MODELS=str(folder / "models"))
        result = subprocess.run(command + [self.name, *args], cwd=folder, env=env, capture_output=True, text=True,
                                timeout=timeout)
        if check and result.returncode != 0:
            raise AssertionError(f"{' '.join(args)} in {self.name} exited {result.returncode}:\n"
                                 f"{result.stdout[-2000:]}\n{result.stderr[-3000:]}")
        return result


def _problem() -> Optional[str]:
    """Why the image cannot be built and run here (None: it can)."""
    if docker_daemon():
        return None
    if os.geteuid() != 0:
        return "without a Docker daemon, buildah builds and runs the image here, as root"
    if not IN_CI and not image_exists(CPU_IMAGE):
        return (f"no image {CPU_IMAGE} yet: bash scripts/build_image.sh cpu builds it (a few minutes from scratch; "
                "CI does it first)")
    return None


@pytest.fixture(scope="session")
def cpu_image() -> Image:
    problem = _problem()
    if problem is not None:
        _unavailable("the CPU Docker image", problem)
    result = subprocess.run(["bash", str(REPO / "scripts" / "build_image.sh"), "cpu"], cwd=REPO, capture_output=True,
                            text=True, timeout=3600)
    if result.returncode != 0:
        _unavailable("the CPU Docker image", "bash scripts/build_image.sh cpu failed: " + result.stderr[-1500:])
    return Image(CPU_IMAGE)


@pytest.fixture()
def image_folder(tmp_path) -> Path:
    """A folder for a run in the image (its /data): writable by the image's user (uid 1000)."""
    folder = tmp_path / "data"
    folder.mkdir()
    folder.chmod(0o777)
    return folder
