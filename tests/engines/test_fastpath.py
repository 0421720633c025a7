"""The torch engine's fast path on the CPU: compiled passes equal eager ones (Caffe's semantics survive
torch.compile, with gradients too), channels_last equals contiguous, batch buckets reuse compiled shapes,
compile falls back to eager with one warning line, and the CUDA-graph cache's bookkeeping.
(The CUDA-only parts run in tests/engines/test_cuda.py.)

torch.compile on the CPU builds C++ (gcc): about 50 s of CPU time per net here, so the set is small: the
every-layer net (forward and backward), one zoo net, the tiny solver and a net that cannot compile.
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest

from dynsal import zoo
from dynsal.caffe.netspec import L, NetSpec
from dynsal.engines import load_net
from dynsal.errors import DynsalError, DynsalWarning
from tests.engines.compare import assert_passes_agree, relative
from tests.engines.nets import batch_norm_train_net, every_layer_inputs, every_layer_net

torch = pytest.importorskip("torch", reason="the torch engine needs torch")

from dynsal.engines.torch import TorchNet  # noqa: E402
from dynsal.engines.torch.fastpath import bucket, compile_cache_dir, samples_independent, use_compile_cache  # noqa: E402
from dynsal.engines.torch.graphs import CapturedPass, GraphedPasses  # noqa: E402

SHAPE = (4, 3, 32, 48)


@pytest.fixture(scope="module", autouse=True)
def compile_cache(tmp_path_factory):
    """Compiled code goes to a folder of this test run, not the user's cache."""
    with pytest.MonkeyPatch.context() as patch:
        folder = tmp_path_factory.mktemp("compile-cache")
        patch.setenv("TORCHINDUCTOR_CACHE_DIR", str(folder))
        yield folder


def compiled_graphs() -> int:
    from torch._dynamo.utils import counters

    return counters["stats"]["unique_graphs"]


def graph_breaks() -> dict:
    from torch._dynamo.utils import counters

    return dict(counters["graph_break"])


def test_bucket_sizes():
    assert [bucket(n, 8) for n in range(1, 10)] == [1, 2, 4, 4, 8, 8, 8, 8, 9]
    assert [bucket(n, 6) for n in (3, 5, 6, 7)] == [4, 6, 6, 7]


def test_samples_independent_only_where_padding_changes_nothing():
    def check(net_param, phase="test"):
        net = TorchNet(net_param, phase=phase)
        return samples_independent(net.graph, net.blob_shapes)

    assert all(check(zoo.deploy(name, SHAPE)) for name in zoo.NETS)
    assert not check(batch_norm_train_net(), phase="train")  # batch statistics mix the samples
    assert not check(every_layer_net())  # losses sum over the batch
    n = NetSpec("batch_concat")
    n.a, n.b = L.Input(ntop=2, shape=[dict(dim=[2, 3, 4, 4]), dict(dim=[2, 3, 4, 4])])
    n.cat = L.Concat(n.a, n.b, axis=0)
    assert not check(n.to_proto())


def test_channels_last_equals_contiguous():
    deploy = zoo.deploy("stsconv", SHAPE)
    plain = load_net(deploy, None, engine="torch", seed=0)
    nhwc = TorchNet(deploy, seed=0, channels_last=True)
    assert plain.fast.channels_last is False and nhwc.module.layers[1].blobs[0].is_contiguous(
        memory_format=torch.channels_last)
    rng = np.random.default_rng(1)
    feed = {blob: rng.standard_normal(SHAPE).astype(np.float32) for blob in plain.inputs}
    expected, got = plain.forward(**feed)["deconv1"], nhwc.forward(**feed)["deconv1"]
    assert got.flags.c_contiguous and relative(got, expected) <= 1e-5
    assert relative(nhwc.blob("conv5"), plain.blob("conv5")) <= 1e-5
    assert all(np.array_equal(a, b) for layer, blobs in plain.params().items()
               for a, b in zip(nhwc.params()[layer], blobs))


def test_channels_last_leaves_n_d_convolutions_alone():
    n = NetSpec("volumes")
    n.data = L.Input(shape=[dict(dim=[2, 3, 4, 6, 5])])
    n.conv3d = L.Convolution(n.data, num_output=4, kernel_size=3, pad=1, weight_filler=dict(type="xavier"))
    data = np.random.default_rng(8).standard_normal((2, 3, 4, 6, 5)).astype(np.float32)
    plain, nhwc = TorchNet(n.to_proto(), seed=0), TorchNet(n.to_proto(), seed=0, channels_last=True)
    assert np.array_equal(nhwc.forward(data=data)["conv3d"], plain.forward(data=data)["conv3d"])


def test_compiled_zoo_net_equals_eager_and_a_short_batch_reuses_its_shape():
    deploy = zoo.deploy("stsconv", SHAPE)
    eager = load_net(deploy, None, engine="torch", seed=0)
    compiled = load_net(deploy, None, engine="torch", seed=0, compile=True)
    rng = np.random.default_rng(2)
    feed = {blob: rng.standard_normal(SHAPE).astype(np.float32) for blob in eager.inputs}
    before, breaks = compiled_graphs(), graph_breaks()
    assert relative(compiled.forward(**feed)["deconv1"], eager.forward(**feed)["deconv1"]) <= 1e-5
    assert compiled_graphs() == before + 1 and graph_breaks() == breaks
    short = {blob: value[:3] for blob, value in feed.items()}  # a video's last batch: runs padded to 4
    got = compiled.forward(**short)["deconv1"]
    assert got.shape == (3, 1, 32, 48) and compiled_graphs() == before + 1
    assert relative(got, eager.forward(**short)["deconv1"]) <= 1e-5
    assert compiled._kept.failure is None
    with pytest.raises(DynsalError, match="blob .conv5. .* not kept: a net run with compile keeps only"):
        compiled.blob("conv5")
    assert np.array_equal(compiled.blob("data1"), short["data1"])


def test_caffe_semantics_survive_compile_forward_and_backward():
    """Every layer type with non-default parameters (pooling's clip rule and masks, both LRNs, crop offsets,
    slices, Eltwise ties, grouped/dilated (de)convolutions, the losses): compiled as one graph, the outputs,
    input diffs and parameter diffs are eager's."""
    net_param = every_layer_net()
    eager = load_net(net_param, None, engine="torch", seed=0)
    compiled = load_net(net_param, None, engine="torch", seed=0, compile=True)
    before, breaks = compiled_graphs(), graph_breaks()
    assert_passes_agree(eager, compiled, every_layer_inputs(1), 1e-5)
    assert compiled_graphs() == before + 1 and graph_breaks() == breaks and compiled.compile_failure is None


def test_compiled_training_follows_the_eager_trajectory(tmp_path, monkeypatch):
    from dynsal.caffe import io
    from dynsal.engines.torch.solver import TorchSolver
    from tests.engines.test_solver import tiny_solver

    finals = {}
    for compile in (False, True):
        folder = tmp_path / str(compile)
        folder.mkdir()
        monkeypatch.chdir(folder)  # the tiny net names its HDF5 list relative to the working folder
        solver = io.read_solver(tiny_solver(folder, "test_iter: 1 test_interval: 2", max_iter=4))
        solver.snapshot_prefix = str(folder / "snap" / "tiny")
        trainer = TorchSolver(solver, folder, log_path=folder / "log.jsonl", compile=compile)
        trainer.solve()
        finals[compile] = trainer.train.params()
    for layer, arrays in finals[False].items():
        assert len(finals[True][layer]) == len(arrays), layer
        for a, b in zip(finals[True][layer], arrays):
            assert relative(a, b) <= 1e-5, layer


def test_compile_falls_back_to_eager_with_one_warning(monkeypatch):
    import torch._inductor.config as inductor

    monkeypatch.setattr(inductor.cpp, "cxx", ("/nonexistent/c++",))  # no C++ compiler for the CPU backend
    n = NetSpec("cannot_compile")
    n.data = L.Input(shape=[dict(dim=[2, 3, 9, 7])])
    n.conv = L.Convolution(n.data, num_output=5, kernel_size=3, weight_filler=dict(type="xavier"))
    n.pool = L.Pooling(n.conv, pool=0, kernel_size=3, stride=2)
    eager = load_net(n.to_proto(), None, engine="torch", seed=0)
    compiled = load_net(n.to_proto(), None, engine="torch", seed=0, compile=True)
    data = np.random.default_rng(3).standard_normal((2, 3, 9, 7)).astype(np.float32)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert np.array_equal(compiled.forward(data=data)["pool"], eager.forward(data=data)["pool"])
        assert np.array_equal(compiled.forward(data=data)["pool"], eager.forward(data=data)["pool"])
    ours = [str(w.message) for w in caught if w.category is DynsalWarning]
    assert len(ours) == 1 and ours[0].startswith("torch.compile cannot compile net 'cannot_compile' (")
    assert ours[0].endswith("); it runs eager") and "C++ compiler" in ours[0] and "\n" not in ours[0]


def test_the_compile_cache_folder(monkeypatch, tmp_path, compile_cache):
    assert any(compile_cache.iterdir())  # the compilations above were cached there
    monkeypatch.setenv("DYNSAL_COMPILE_CACHE", str(tmp_path / "mine"))
    assert compile_cache_dir() == tmp_path / "mine"
    assert use_compile_cache() == str(compile_cache)  # a folder the user gave torch wins
    monkeypatch.delenv("TORCHINDUCTOR_CACHE_DIR")
    assert use_compile_cache() == str(tmp_path / "mine")
    monkeypatch.delenv("DYNSAL_COMPILE_CACHE")
    assert str(compile_cache_dir()).endswith(".cache/dynsal/torch-compile")


def test_fast_path_options_are_checked():
    deploy = zoo.deploy("ssnet", SHAPE)
    with pytest.raises(DynsalError, match="CUDA graphs need a CUDA device, not cpu"):
        load_net(deploy, None, engine="torch", cuda_graphs=True)
    with pytest.raises(DynsalError, match="compile is a torch engine option"):
        load_net(deploy, None, engine="caffe", compile=True)


def test_start_forward_and_host_buffers_on_the_cpu():
    net = load_net(zoo.deploy("ssnet", (2, 3, 24, 32)), None, engine="torch", seed=0)
    buffer = net.host_buffer((2, 3, 24, 32))
    assert buffer.shape == (2, 3, 24, 32) and buffer.dtype == np.float32
    buffer[...] = np.random.default_rng(4).standard_normal(buffer.shape)
    pending = net.start_forward(data1=buffer)
    assert np.array_equal(pending.result()["deconv1"], net.forward(data1=buffer.copy())["deconv1"])


class RecordedPasses(GraphedPasses):
    """GraphedPasses with the CPU standing in for the GPU: a "capture" keeps static input and output
    tensors and replays by running the pass on the static inputs into the static outputs."""

    def capture(self, inputs):
        outputs = {name: t.clone() for name, t in self.run(inputs).items()}

        def replay():
            for name, value in self.run(inputs).items():
                outputs[name].copy_(value)
        return CapturedPass(inputs, outputs, replay)


def test_graphed_passes_capture_once_per_shape_and_replay_new_inputs():
    calls = []

    def run(feed):
        calls.append(tuple(feed["x"].shape))
        return {"y": feed["x"] * 2 + 1}

    passes = RecordedPasses(run, limit=2)
    a, b, c = torch.ones(2, 3), torch.arange(6.0).reshape(2, 3), torch.zeros(1, 3)
    assert torch.equal(passes({"x": a})["y"], a * 2 + 1)
    assert torch.equal(passes({"x": b})["y"], b * 2 + 1)  # replayed with the new values
    assert passes.captures == 1
    passes({"x": c})
    passes({"x": a.t().contiguous().t()})  # same sizes, other strides: another graph
    assert passes.captures == 3 and len(passes.passes) == 2  # the least recently used one was dropped
    passes({"x": a})
    assert passes.captures == 4


class UncapturablePasses(GraphedPasses):
    def capture(self, inputs):
        raise RuntimeError("operation not permitted when stream is capturing\nmore detail")


def test_a_pass_that_cannot_be_captured_runs_without_graphs_after_one_warning():
    passes = UncapturablePasses(lambda feed: {"y": feed["x"] + 1}, name="tiny")
    x = torch.arange(3.0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert torch.equal(passes({"x": x})["y"], x + 1) and torch.equal(passes({"x": x * 2})["y"], x * 2 + 1)
    assert [str(w.message) for w in caught if w.category is DynsalWarning] == [
        "CUDA graphs cannot capture net 'tiny' (RuntimeError: operation not permitted when stream is capturing); "
        "it runs without them"]
    assert passes.captures == 0 and passes.failure.startswith("RuntimeError")
