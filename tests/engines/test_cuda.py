"""The torch engine on a CUDA GPU: fp32 equals the CPU engine (which equals Caffe, tests/oracle), the
opt-in precisions stay near fp32, and training on the GPU follows the CPU trajectory.

These run where torch sees a GPU — `benchmarks/gpu_check.sh` on a lent H100/H200 — and are skipped
elsewhere (CI machines have none). cuDNN picks its own algorithms, so fp32 is compared within
1e-4 · max|CPU| like the Caffe parity tests, with TF32 switched off for fp32 by the engine.
"""
from __future__ import annotations

import numpy as np
import pytest

from dynsal import zoo
from dynsal.engines import load_net
from dynsal.zoo import NETS

torch = pytest.importorskip("torch", reason="the torch engine needs torch")
pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (benchmarks/gpu_check.sh)")

SHAPE = (2, 3, 48, 64)
#: largest max|Δ| / max|fp32| accepted per precision (docs/engines.md publishes the measured ones)
PRECISION_BOUNDS = {"tf32": 1e-2, "bf16": 5e-2, "fp16": 1e-2}


def relative(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-30))


def pair(name: str, precision: str = "fp32"):
    deploy = zoo.deploy(name, SHAPE)
    cpu = load_net(deploy, None, engine="torch", seed=0)
    gpu = load_net(deploy, None, engine="torch", device="cuda", precision=precision, seed=0)
    gpu.set_params(cpu.params())
    cpu.gradients = gpu.gradients = True  # deploy nets have no loss: backward from given top diffs
    rng = np.random.default_rng(1)
    feed = {blob: rng.standard_normal(SHAPE).astype(np.float32) for blob in cpu.inputs}
    return cpu, gpu, feed


@pytest.mark.parametrize("name", sorted(NETS))
def test_cuda_fp32_forward_and_backward_equal_cpu(name):
    cpu, gpu, feed = pair(name)
    expected, got = cpu.forward(**feed)["deconv1"], gpu.forward(**feed)["deconv1"]
    assert relative(got, expected) <= 1e-4
    top = {"deconv1": np.random.default_rng(2).standard_normal(expected.shape).astype(np.float32)}
    cpu_diffs, gpu_diffs = cpu.backward(top), gpu.backward(top)
    for blob in cpu.inputs:
        assert relative(gpu_diffs[blob], cpu_diffs[blob]) <= 1e-4, blob
    for layer, diffs in cpu.param_diffs().items():
        assert len(gpu.param_diffs()[layer]) == len(diffs), layer
        for a, b in zip(gpu.param_diffs()[layer], diffs):
            assert relative(a, b) <= 1e-4, layer


@pytest.mark.parametrize("precision", sorted(PRECISION_BOUNDS))
def test_cuda_precisions_stay_near_fp32(precision):
    cpu, gpu, feed = pair("stsconv", precision)
    assert relative(gpu.forward(**feed)["deconv1"], cpu.forward(**feed)["deconv1"]) <= PRECISION_BOUNDS[precision]


def test_cuda_training_follows_the_cpu_trajectory(tmp_path, monkeypatch):
    from dynsal.caffe import io
    from dynsal.engines.torch.solver import TorchSolver
    from tests.engines.test_solver import tiny_solver

    finals = {}
    for device in ("cpu", "cuda"):
        folder = tmp_path / device
        folder.mkdir()
        monkeypatch.chdir(folder)  # the tiny net names its HDF5 list relative to the working folder
        solver = io.read_solver(tiny_solver(folder, max_iter=10))
        solver.snapshot_prefix = str(folder / "snap" / "tiny")
        trainer = TorchSolver(solver, folder, device=device, log_path=folder / "log.jsonl")
        trainer.solve()
        finals[device] = trainer.train.params()
    for layer, arrays in finals["cpu"].items():
        assert len(finals["cuda"][layer]) == len(arrays), layer
        for a, b in zip(finals["cuda"][layer], arrays):
            assert relative(a, b) <= 1e-4, layer
