"""The CUDA + cuDNN Caffe dynsal builds from BVLC source, as the GPU Docker image ships it (docker/Dockerfile;
its file system mounted by scripts/mount_image.sh gpu: the trixie oracle), on a machine without a GPU: it links
cuDNN, cuBLAS, cuRAND and the CUDA runtime of the image's venv (torch's own wheels), runs in CPU mode with
every cuDNN layer type, passes the caffe engine's tests, and computes what Debian bullseye's packaged Caffe
computes."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from dynsal import oracle as oracle_module
from dynsal import zoo
from dynsal.caffe import io
from dynsal.caffe.graph import build_graph
from dynsal.errors import OracleUnavailable
from tests.engines.nets import zoo_loss_net
from tests.engines.parity import CaffeCase, deviations, load_caffe, random_weights, run_caffe, write_net
from tests.oracle.test_engines import ENGINE_PARITY_NETS, check_engines_agree, check_interface_tests

REPO = Path(__file__).resolve().parents[2]
CUDA_LIBRARIES = ("libcudnn.so.9", "libcublas.so.13", "libcublasLt.so.13", "libcudart.so.13", "libcurand.so.10")
VENV = "/opt/venv/lib/"  # the image's venv: torch's nvidia-* wheels
SAME_AS_BULLSEYE = 1e-6  # max|Δ| ≤ 1e-6·max|bullseye's value|, every blob, parameter and diff (fp32)
OWN_BLAS = 1e-5  # the same with another OpenBLAS version's summation order
SMALL = (48, 64)
BACKWARD_RUNS = 3

CPU_MODE = """
import caffe
caffe.set_mode_cpu()
net = caffe.Net("net.prototxt", caffe.TEST)
net.blobs["data"].data[...] = 1.0
out = net.forward()["prob"]
print("sum", float(out.sum()))
"""

DEFAULT_ENGINE_NET = """
name: "default_engines"
layer { name: "in" type: "Input" top: "data" input_param { shape { dim: 2 dim: 3 dim: 8 dim: 8 } } }
layer { name: "conv" type: "Convolution" bottom: "data" top: "conv"
  convolution_param { num_output: 4 kernel_size: 3 weight_filler { type: "xavier" } } }
layer { name: "relu" type: "ReLU" bottom: "conv" top: "conv" }
layer { name: "lrn" type: "LRN" bottom: "conv" top: "lrn" }
layer { name: "lcn" type: "LRN" bottom: "lrn" top: "lcn" lrn_param { norm_region: WITHIN_CHANNEL } }
layer { name: "pool" type: "Pooling" bottom: "lcn" top: "pool" pooling_param { pool: AVE kernel_size: 2 } }
layer { name: "deconv" type: "Deconvolution" bottom: "pool" top: "deconv"
  convolution_param { num_output: 2 kernel_size: 2 } }
layer { name: "sig" type: "Sigmoid" bottom: "deconv" top: "sig" }
layer { name: "tanh" type: "TanH" bottom: "sig" top: "tanh" }
layer { name: "prob" type: "Softmax" bottom: "tanh" top: "prob" }
"""


@pytest.mark.parametrize("library", ["/opt/caffe/lib/libcaffe.so", "/opt/caffe/python/caffe/_caffe.so",
                                     "/opt/caffe/bin/caffe"])
def test_caffe_links_cudnn_cublas_and_the_cuda_runtime_of_the_venv(caffe_cuda, cuda_workdir, library):
    result = caffe_cuda.run(["ldd", library], cuda_workdir)
    resolved = dict(re.findall(r"^\s*(\S+) => (\S+)", result.stdout, re.MULTILINE))
    assert "not found" not in result.stdout, result.stdout
    for name in CUDA_LIBRARIES:
        assert resolved.get(name, "").startswith(VENV), (name, result.stdout)


def test_cuda_build_runs_cpu_mode_without_a_gpu(caffe_cuda, cuda_workdir):
    """Every layer type whose DEFAULT engine is cuDNN in a cuDNN build (Convolution, Deconvolution, Pooling, LRN
    across and within channels, ReLU, Sigmoid, TanH, Softmax) constructs and runs in CPU mode (dynsal's patch
    03), while the CUDA libraries find no GPU."""
    (cuda_workdir.host / "net.prototxt").write_text(DEFAULT_ENGINE_NET)
    (cuda_workdir.host / "cpu_mode.py").write_text(CPU_MODE)
    result = caffe_cuda.run(["python3", "cpu_mode.py"], cuda_workdir)
    assert "Cannot create Cublas handle" in result.stderr  # Caffe's singleton: CUDA present, no GPU
    assert abs(float(result.stdout.split()[-1]) - 2 * 6 * 6) < 1e-3  # channel softmax of 2×2×6×6 sums to N·H·W


def test_cuda_build_passes_the_caffe_engine_interface_tests(caffe_cuda, cuda_workdir):
    check_interface_tests(caffe_cuda, cuda_workdir)


@pytest.mark.parametrize("name", ENGINE_PARITY_NETS)
def test_cuda_build_and_torch_engine_agree(caffe_cuda, cuda_workdir, name):
    check_engines_agree(caffe_cuda, cuda_workdir, name)


def _inputs(name: str, hw, seed: int):
    rng = np.random.default_rng(seed)
    return {blob: rng.standard_normal((1, 3) + hw).astype(np.float32) for blob in zoo.input_names(zoo.get(name))}


# in bullseye's chroot: libopenblas.so.0 (0.3.13), libblas.so.3, liblapack.so.3
BULLSEYE_OPENBLAS = "usr/lib/x86_64-linux-gnu/openblas-pthread"
#: the from-source build's BLAS -> max|Δ| / max|bullseye's value| allowed
BLAS_TOLERANCE = {"bullseye's OpenBLAS 0.3.13": SAME_AS_BULLSEYE, "its own OpenBLAS": OWN_BLAS}


@pytest.fixture(scope="module")
def zoo_runs(bullseye_oracle, caffe_cuda):
    """Every zoo net forward (deploy, 48×64) and backward (+ EuclideanLoss, 3 input sets),
    random weights, the same files run by bullseye's Caffe and by the from-source build twice: with
    bullseye's OpenBLAS library (LD_LIBRARY_PATH), then with its own.
    Returns {blas: {run npz: (from-source npz, bullseye npz, net, backward)}}."""
    theirs = bullseye_oracle.workdir()
    ours = {blas: caffe_cuda.workdir() for blas in BLAS_TOLERANCE}
    try:
        yield _run_zoo(bullseye_oracle, caffe_cuda, theirs, ours)
    finally:
        for wd in [theirs, *ours.values()]:
            shutil.rmtree(wd.host, ignore_errors=True)


def _run_zoo(bullseye, caffe_cuda, theirs, ours):
    cases, runs = [], []
    for index, name in enumerate(zoo.NETS):
        deploy = zoo.deploy(name, (1, 3) + SMALL)
        prototxt, caffemodel = write_net(theirs.host, name, deploy, random_weights(deploy, seed=index))
        case = CaffeCase(name, prototxt, caffemodel)
        runs.append((case.add_run(f"{name}_forward", _inputs(name, SMALL, index)).name, name, False))
        loss = CaffeCase(f"{name}_loss", theirs.host / f"{name}_loss.prototxt", caffemodel)
        io.write_text(zoo_loss_net(name, (1, 3) + SMALL), loss.prototxt)
        for run in range(BACKWARD_RUNS):
            seed = 100 * (run + 1) + index
            feed = dict(_inputs(name, SMALL, seed), label=np.random.default_rng(seed).standard_normal((1, 1) + SMALL))
            runs.append((loss.add_run(f"{name}_loss{run}", feed, backward=True).name, f"{name}_loss", True))
        cases += [case, loss]
    for wd in ours.values():
        shutil.copytree(theirs.host, wd.host, dirs_exist_ok=True, ignore=shutil.ignore_patterns("src"))
    same_blas = ours["bullseye's OpenBLAS 0.3.13"]
    shutil.copytree(Path(bullseye.root, BULLSEYE_OPENBLAS), same_blas.host / "openblas")  # symlinks followed
    run_caffe(bullseye, theirs, cases)
    run_caffe(caffe_cuda, same_blas, cases, env={"LD_LIBRARY_PATH": same_blas.inside("openblas")})
    run_caffe(caffe_cuda, ours["its own OpenBLAS"], cases)
    return {blas: {npz: (wd.host / npz, theirs.host / npz, net, backward) for npz, net, backward in runs}
            for blas, wd in ours.items()}


def _relu_flips(ours, theirs, prototxt) -> int:
    layers = build_graph(io.read_net(prototxt)).layers
    tops = {top for layer in layers if layer.type == "ReLU" for top in layer.param.top}
    return sum(int(((ours["data/" + t] == 0) != (theirs["data/" + t] == 0)).sum()) for t in tops)


def _differences(ours_npz, theirs_npz, backward: bool, tolerance: float):
    ours, theirs = load_caffe(ours_npz), load_caffe(theirs_npz)
    problems = []
    for prefix in ("data", "param") + (("diff", "pdiff") if backward else ()):
        mine = {k[len(prefix) + 1:]: v for k, v in ours.items() if k.startswith(prefix + "/")}
        problems += deviations(mine, theirs, prefix, tolerance=tolerance)
    return problems


@pytest.mark.parametrize("blas", list(BLAS_TOLERANCE))
@pytest.mark.parametrize("name", list(zoo.NETS))
def test_forward_and_backward_equal_bullseyes_caffe(zoo_runs, name, blas):
    """The from-source build (GCC 14, dynsal's patches, a CUDA build in CPU mode, numpy 2) gives the packaged
    2018 build's results (GCC 10, numpy 1.19): within 1e-6 (in fact bit for bit) when both multiply with
    the same OpenBLAS, within 1e-5 with trixie's OpenBLAS 0.3.29, whose sgemm sums in another order (up to
    2.8e-6 measured). Forward; backward on the first of three input sets where no ReLU gate
    is flipped by rounding (diffs below a flipped gate differ by design)."""
    runs = zoo_runs[blas]
    tolerance = BLAS_TOLERANCE[blas]
    forward = [v for v in runs.values() if v[2] == name]
    backward = [v for v in runs.values() if v[2] == f"{name}_loss"]
    for ours, theirs, _, _ in forward + backward:
        assert _differences(ours, theirs, backward=False, tolerance=tolerance) == []
    prototxt = backward[0][1].parent / f"{name}_loss.prototxt"
    clean = [(o, t) for o, t, _, _ in backward if _relu_flips(load_caffe(o), load_caffe(t), prototxt) == 0]
    assert clean, f"every backward run of {name} flipped a ReLU gate; add runs or change the seeds"
    assert _differences(*clean[0], backward=True, tolerance=tolerance) == []


def test_trixie_oracle_is_selected_by_environment(monkeypatch):
    monkeypatch.setenv("DYNSAL_ORACLE", "trixie")
    monkeypatch.delenv("DYNSAL_ORACLE_ROOT", raising=False)
    monkeypatch.delenv("DYNSAL_CAFFE_CUDA_ROOT", raising=False)
    assert oracle_module.oracle_root() == Path("/var/cache/dynsal/image-root-gpu")
    assert oracle_module.oracle_root("bullseye") == Path(oracle_module.DEFAULT_ROOT)
    monkeypatch.setenv("DYNSAL_ORACLE", "sid")
    with pytest.raises(OracleUnavailable, match="DYNSAL_ORACLE='sid' is no oracle; use one of: bullseye, trixie"):
        oracle_module.oracle_root()


def test_build_oracle_falls_back_to_trixie_when_bullseye_cannot_be_fetched(caffe_cuda, tmp_path):
    """A debootstrap that cannot fetch bullseye: build_oracle.sh says so and readies the trixie oracle, the GPU
    image's file system."""
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "debootstrap").write_text("#!/bin/sh\necho 'E: Failed getting release file' >&2\nexit 1\n")
    (fake / "debootstrap").chmod(0o755)
    env = dict(os.environ, PATH=f"{fake}:{os.environ['PATH']}", DYNSAL_CAFFE_CUDA_ROOT=str(caffe_cuda.root))
    env.pop("DYNSAL_ORACLE", None)
    result = subprocess.run(["bash", str(REPO / "scripts" / "build_oracle.sh"), str(tmp_path / "bullseye")],
                            capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
    assert "debootstrap bullseye failed" in result.stderr and "building the from-source trixie oracle" in result.stderr
    assert result.stdout.strip().splitlines()[-1] == f"image-root: ready at {caffe_cuda.root}"
