"""The torch engine on a CUDA GPU: fp32 equals the CPU engine (which equals Caffe, tests/oracle), the
opt-in precisions stay near fp32, and training on the GPU follows the CPU trajectory; the fast path
(channels_last, cuDNN autotuning, torch.compile, CUDA graphs, batch buckets, page-locked buffers and
pipelined passes) changes no number beyond that bound, and `dynsal predict` on the GPU gives the CPU's maps.

These run where torch sees a GPU — `benchmarks/gpu_check.sh` on a lent H100/H200 — and are skipped
elsewhere (CI machines have none). cuDNN picks its own algorithms (per memory layout too), so fp32 is compared within
1e-4 · max|CPU| like the Caffe parity tests, with TF32 switched off for fp32 by the engine.
"""
from __future__ import annotations

import json

import numpy as np
import pytest

from dynsal import zoo
from dynsal.engines import load_net
from dynsal.zoo import NETS
from tests.engines.compare import assert_passes_agree, relative
from tests.engines.nets import every_layer_inputs, every_layer_net

torch = pytest.importorskip("torch", reason="the torch engine needs torch")
pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (benchmarks/gpu_check.sh)")

SHAPE = (2, 3, 48, 64)
#: largest max|Δ| / max|fp32| accepted per precision (docs/engines.md publishes the measured ones)
PRECISION_BOUNDS = {"tf32": 1e-2, "bf16": 5e-2, "fp16": 1e-2}


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


def test_cuda_fast_path_defaults_and_pipelined_passes_from_page_locked_buffers():
    """Passes queued before the previous one is fetched, from two page-locked buffers refilled in turn,
    each give their own batch's outputs (the copy stream and the output copies are ordered right)."""
    deploy = zoo.deploy("stsconv", SHAPE)
    cpu = load_net(deploy, None, engine="torch", seed=0)
    gpu = load_net(deploy, None, engine="torch", device="cuda", seed=0)
    gpu.set_params(cpu.params())
    assert gpu.fast.channels_last and gpu.fast.cudnn_benchmark and not cpu.fast.channels_last
    rng = np.random.default_rng(5)
    batches = [{blob: rng.standard_normal(SHAPE).astype(np.float32) for blob in cpu.inputs} for _ in range(5)]
    buffers = [{blob: gpu.host_buffer(SHAPE) for blob in cpu.inputs} for _ in range(2)]
    assert torch.from_numpy(buffers[0]["data1"]).is_pinned()
    results, pending = [], None
    for index, batch in enumerate(batches):
        buffer = buffers[index % 2]  # its last pass was fetched in the step before
        for blob, value in batch.items():
            buffer[blob][...] = value
        started = gpu.start_forward(**buffer)
        if pending is not None:
            results.append(pending.result()["deconv1"].copy())
        pending = started
    results.append(pending.result()["deconv1"])
    for batch, got in zip(batches, results):
        assert relative(got, cpu.forward(**batch)["deconv1"]) <= 1e-4


def test_cuda_compile_and_graphs_equal_eager_and_buckets_reuse_a_capture():
    deploy = zoo.deploy("ssnet", (4, 3, 48, 64))
    eager = load_net(deploy, None, engine="torch", device="cuda", seed=0)
    fast = load_net(deploy, None, engine="torch", device="cuda", seed=0, compile=True, cuda_graphs=True)
    rng = np.random.default_rng(6)
    feed = {"data1": rng.standard_normal((4, 3, 48, 64)).astype(np.float32)}
    assert relative(fast.forward(**feed)["deconv1"], eager.forward(**feed)["deconv1"]) <= 1e-4
    assert fast.compile_failure is None
    again = {"data1": rng.standard_normal((4, 3, 48, 64)).astype(np.float32)}  # replayed with new inputs
    assert relative(fast.forward(**again)["deconv1"], eager.forward(**again)["deconv1"]) <= 1e-4
    short = {"data1": again["data1"][:3]}  # padded to the captured batch of 4
    got = fast.forward(**short)["deconv1"]
    assert got.shape[0] == 3 and relative(got, eager.forward(**short)["deconv1"]) <= 1e-4
    assert fast._graphs.captures == 1


def test_cuda_bf16_compiled_graphs_stay_near_fp32():
    """The speed goal's mode: bf16, compiled, replayed from CUDA graphs; CC with fp32 ≥ 0.999."""
    deploy = zoo.deploy("stsconv", SHAPE)
    fp32 = load_net(deploy, None, engine="torch", device="cuda", seed=0)
    bf16 = load_net(deploy, None, engine="torch", device="cuda", precision="bf16", seed=0, compile=True,
                    cuda_graphs=True)
    rng = np.random.default_rng(7)
    feed = {blob: rng.standard_normal(SHAPE).astype(np.float32) for blob in fp32.inputs}
    expected, got = fp32.forward(**feed)["deconv1"], bf16.forward(**feed)["deconv1"]
    assert bf16.compile_failure is None
    assert np.corrcoef(got.ravel(), expected.ravel())[0, 1] >= 0.999
    assert relative(got, expected) <= PRECISION_BOUNDS["bf16"]


def test_cuda_compiled_every_layer_net_forward_and_backward_equal_cpu():
    net_param = every_layer_net()
    cpu = load_net(net_param, None, engine="torch", seed=0)
    gpu = load_net(net_param, None, engine="torch", device="cuda", seed=0, compile=True)
    assert_passes_agree(cpu, gpu, every_layer_inputs(1), 1e-4)
    assert gpu.compile_failure is None


def test_cuda_predict_gives_the_cpu_maps(tmp_path):
    """Worker processes, page-locked batches and pipelined passes on the GPU: the CPU's maps."""
    from dynsal.predict.inputs import PredictInput
    from dynsal.predict.outputs import OutputOptions
    from dynsal.predict.predictor import Predictor
    from tests.predict.helpers import make_inputs, zoo_weights

    video, _ = make_inputs(tmp_path, frames=5)
    weights = zoo_weights("stsconv", tmp_path)
    maps = {}
    for device in ("cpu", "cuda"):
        with Predictor("stsconv", weights=str(weights), engine="torch", device=device, batch=2, workers=2) as predictor:
            folder = predictor.predict_input(PredictInput("clip", "video", video), tmp_path / device,
                                             OutputOptions(npz=True, overlay=False)).folder
        maps[device] = np.load(folder / "maps.npz")["maps"]
    assert maps["cuda"].shape == maps["cpu"].shape == (5, 60, 76)
    assert np.abs(maps["cuda"] - maps["cpu"]).max() < 2e-3  # maps in [0, 1], as the Caffe engine test


def test_cuda_bf16_training_runs_under_autocast(tmp_path, monkeypatch):
    from dynsal.caffe import io
    from dynsal.engines.torch.solver import TorchSolver
    from tests.engines.test_solver import tiny_solver

    monkeypatch.chdir(tmp_path)
    solver = io.read_solver(tiny_solver(tmp_path, max_iter=4))
    solver.snapshot_prefix = str(tmp_path / "snap" / "tiny")
    trainer = TorchSolver(solver, tmp_path, device="cuda", precision="bf16", log_path=tmp_path / "log.jsonl")
    assert trainer.train.data_pass(gradients=False).data["conv2"].dtype == torch.bfloat16
    trainer.solve()
    losses = [json.loads(line)["loss"] for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert len(losses) == 4 and all(np.isfinite(losses))
