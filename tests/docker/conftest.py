"""dynsal's Docker images as fixtures: `cpu_image` (docker/Dockerfile.cpu), `gpu_image` (docker/Dockerfile) and
`image` (each of the two in turn), built by scripts/build_image.sh (docker, else buildah; cached) and run by
scripts/run_image.sh, `docker run --rm` semantics, in a folder of the test's.

In CI (.ci/run builds both images first) a fixture builds its image again, from cache, so the image holds
this checkout's dynsal, and fails when it cannot. Elsewhere it rebuilds an image already built (a cached build)
and skips, saying why, where there is none or no buildah/Docker to build one. The GPU image is rebuilt for
the CUDA architectures it was built for (its labels), so that the rebuild comes from cache.
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
IMAGES = {"cpu": "localhost/dynsal:cpu", "gpu": "localhost/dynsal:gpu"}
#: the GPU image's build arguments recorded as its labels (docker/Dockerfile)
ARCH_LABELS = {"CUDA_ARCH_BIN": "dynsal.cuda-arch-bin", "CUDA_ARCH_PTX": "dynsal.cuda-arch-ptx"}


def docker_daemon() -> bool:
    """Whether a Docker daemon answers (`docker info`): then docker builds and runs the image, else buildah."""
    return shutil.which("docker") is not None and subprocess.run(["docker", "info"],
                                                                 capture_output=True).returncode == 0


def _inspect(name: str, template: str) -> Optional[str]:
    """`docker image inspect` / `buildah inspect` of an image with a Go template; None where there is no image."""
    command = (["docker", "image", "inspect", "--format", template, name] if docker_daemon()
               else ["buildah", "--storage-driver", "overlay", "inspect", "--type", "image", "--format", template,
                     name])
    if shutil.which(command[0]) is None:
        return None
    result = subprocess.run(command, capture_output=True, text=True)
    return result.stdout.strip() if result.returncode == 0 else None


def image_exists(name: str) -> bool:
    return _inspect(name, "{{.Id}}" if docker_daemon() else "{{.FromImageID}}") is not None


def image_label(name: str, label: str) -> Optional[str]:
    """A label of the image (None: no image or no such label)."""
    labels = ".Config.Labels" if docker_daemon() else ".OCIv1.Config.Labels"
    value = _inspect(name, f'{{{{index {labels} "{label}"}}}}')
    return value if value and value != "<no value>" else None


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


def _problem(kind: str) -> Optional[str]:
    """Why the image cannot be built and run here (None: it can)."""
    if docker_daemon():
        return None
    if os.geteuid() != 0:
        return "without a Docker daemon, buildah builds and runs the image here, as root"
    if not IN_CI and not image_exists(IMAGES[kind]):
        return (f"no image {IMAGES[kind]} yet: bash scripts/build_image.sh {kind} builds it (docker/README.md gives "
                "the time; CI does it first)")
    return None


def built_image(kind: str) -> Image:
    """The image of `kind` ("cpu", "gpu") rebuilt from this checkout (a cached build), or unavailable."""
    what = f"the {kind.upper()} Docker image"
    problem = _problem(kind)
    if problem is not None:
        _unavailable(what, problem)
    env = dict(os.environ)
    for arg, label in ARCH_LABELS.items():
        value = image_label(IMAGES[kind], label) if kind == "gpu" else None
        if value is not None and arg not in env:
            env[arg] = value
    result = subprocess.run(["bash", str(REPO / "scripts" / "build_image.sh"), kind], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=3600)
    if result.returncode != 0:
        _unavailable(what, f"bash scripts/build_image.sh {kind} failed: " + result.stderr[-1500:])
    return Image(IMAGES[kind])


@pytest.fixture(scope="session")
def cpu_image() -> Image:
    return built_image("cpu")


@pytest.fixture(scope="session")
def gpu_image() -> Image:
    return built_image("gpu")


@pytest.fixture(scope="session", params=["cpu", "gpu"])
def image(request) -> Image:
    """Each image in turn: the checks both must pass."""
    return request.getfixturevalue(f"{request.param}_image")


@pytest.fixture()
def image_folder(tmp_path) -> Path:
    """A folder for a run in the image (its /data): writable by the image's user (uid 1000)."""
    folder = tmp_path / "data"
    folder.mkdir()
    folder.chmod(0o777)
    return folder
