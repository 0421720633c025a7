"""The per-shape choice of convolution algorithm (dynsal.engines.torch.convalgo): every algorithm equals
direct convolution within 1e-5 relative, the choice follows the (fake) timer, its disk cache and its override."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from dynsal.engines.torch import convalgo
from dynsal.errors import DynsalError, DynsalWarning
from tests.engines.layer_net import layer_net

BOUND = 1e-5  # max|Δ| ≤ BOUND · max|direct|


def _options(pad=(1, 1), stride=(1, 1), dilation=(1, 1), groups=1):
    return dict(stride=stride, padding=pad, dilation=dilation, groups=groups)


def _case(x_shape, weight_shape, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(x_shape, generator=gen)
    w = torch.randn(weight_shape, generator=gen) / np.sqrt(np.prod(weight_shape[1:]))
    return x, w, torch.randn(weight_shape[0], generator=gen)


SHAPES = [((2, 16, 23, 31), (8, 16, 3, 3), (1, 1)), ((1, 24, 30, 40), (32, 24, 5, 5), (2, 2)),
          ((1, 8, 25, 33), (4, 8, 7, 7), (3, 0)), ((1, 12, 40, 36), (6, 12, 11, 11), (5, 5)),
          ((1, 4, 34, 30), (2, 4, 13, 13), (6, 6)), ((3, 32, 9, 13), (16, 32, 3, 3), (0, 2))]


@pytest.mark.parametrize("x_shape,weight_shape,pad", SHAPES, ids=[f"k{w[-1]}" for _, w, _ in SHAPES])
def test_every_candidate_equals_direct_convolution(x_shape, weight_shape, pad):
    x, w, b = _case(x_shape, weight_shape)
    convolutions = convalgo.Convolutions(weight_shape, _options(pad))
    candidates = convolutions.candidates(x_shape)
    assert candidates[0] == "direct" and any(name.startswith("fft") for name in candidates)
    assert ("winograd" in candidates) == (weight_shape[-1] == 3)
    with torch.inference_mode():
        ref = F.conv2d(x, w, b, padding=pad)
        for name in candidates + ["fft"]:
            y = convolutions.run(convolutions.resolve(name), x, w, b)
            assert y.shape == ref.shape, name
            assert (y - ref).abs().max() <= BOUND * ref.abs().max(), name


def test_geometry_decides_the_candidates():
    assert convalgo.Convolutions((8, 4, 3, 3), _options(stride=(2, 2))).candidates((1, 4, 30, 30)) == [
        "direct", "channels_last"]
    assert convalgo.Convolutions((8, 4, 5, 5), _options(groups=2)).candidates((1, 4, 30, 30)) == [
        "direct", "channels_last"]
    assert convalgo.Convolutions((8, 4, 1, 1), _options(pad=(0, 0))).candidates((1, 4, 30, 30)) == [
        "direct", "channels_last"]
    assert convalgo.Convolutions((8, 4, 5, 5), _options(pad=(0, 0))).candidates((1, 4, 9, 9)) == [
        "direct", "channels_last"]  # no tile of 8 or more fits a 5×5 output
    assert convalgo.Convolutions((8, 4, 5, 5), _options(dilation=(2, 2))).resolve("fft") == "direct"
    assert convalgo.Convolutions((8, 4, 5, 5), _options()).resolve("winograd") == "direct"
    assert convalgo.Convolutions((8, 4, 5, 5), _options()).resolve("fft") == "fft12"


class FakeRuns:
    """Runs that advance a fake clock by each candidate's scripted cost (a list: one per run)."""

    def __init__(self, costs):
        self.costs = {name: list(values) for name, values in costs.items()}
        self.now, self.calls = 0.0, []

    def timer(self):
        return self.now

    def run(self, name):
        self.calls.append(name)
        cost = self.costs[name]
        self.now += cost.pop(0) if len(cost) > 1 else cost[0]


def test_fastest_takes_the_least_minimum_over_rounds_and_drops_slow_candidates():
    runs = FakeRuns({"direct": [9, 5, 7, 6], "fft12": [9, 8, 2, 8], "slow": [1, 30, 1]})
    best, seconds = convalgo.fastest(["direct", "fft12", "slow"], runs.run, runs.timer)
    assert best == "fft12" and seconds == {"direct": 5, "fft12": 2, "slow": 30}
    # warm-ups first, then rounds; slow is dropped after round 1 (30 > 2·5), direct after round 2 (5 > 2·2)
    assert runs.calls == ["direct", "fft12", "slow"] + ["direct", "fft12", "slow"] + ["direct", "fft12"] + ["fft12"]


def _choose(tmp_path, costs, machine="cpu A | torch 1 | 2 threads"):
    runs = FakeRuns(costs)
    x, w, b = _case((1, 8, 24, 24), (8, 8, 5, 5))
    convolutions = convalgo.Convolutions(w.shape, _options((2, 2)))
    convolutions.run = lambda name, *_: runs.run(name)
    cache = convalgo.ChoiceCache(tmp_path / "choices.json", machine)
    return convalgo.choose(convolutions, tuple(x.shape), w, b, x.dtype, cache, runs.timer), runs, convolutions


def test_choice_is_measured_once_then_read_from_the_cache(tmp_path):
    costs = {"direct": [3], "channels_last": [4], "fft12": [1], "fft16": [2], "fft18": [2], "fft24": [5]}
    expected = torch.manual_seed(5) and torch.randn(3)
    torch.manual_seed(5)
    algorithm, runs, convolutions = _choose(tmp_path, costs)
    assert torch.equal(torch.randn(3), expected)  # measuring leaves the global random stream as it was
    assert algorithm == "fft12" and set(runs.calls) == set(convolutions.candidates((1, 8, 24, 24)))
    saved = json.loads((tmp_path / "choices.json").read_text())
    (entry,) = saved["machines"]["cpu A | torch 1 | 2 threads"].values()
    assert entry["algorithm"] == "fft12" and entry["seconds"]["direct"] == 3
    algorithm, runs, _ = _choose(tmp_path, dict(costs, fft12=[9]))
    assert algorithm == "fft12" and runs.calls == []  # nothing timed: a new process reads the file


def test_measuring_is_announced_once_in_one_line(tmp_path, capsys):
    costs = {"direct": [3], "channels_last": [4], "fft12": [1], "fft16": [2], "fft18": [2], "fft24": [5]}
    _choose(tmp_path, costs)
    _choose(tmp_path, costs, machine="cpu B | torch 1 | 2 threads")  # measured again: no second line
    (line,) = capsys.readouterr().err.splitlines()
    assert "measuring the fastest convolution algorithm" in line and str(tmp_path / "choices.json") in line
    assert "DYNSAL_CONV_ALGO=direct" in line


def test_entry_of_another_torch_version_is_ignored_and_measured_again(tmp_path):
    costs = {"direct": [3], "channels_last": [4], "fft12": [1], "fft16": [2], "fft18": [2], "fft24": [5]}
    _choose(tmp_path, costs, machine="cpu A | torch 1 | 2 threads")
    algorithm, runs, _ = _choose(tmp_path, dict(costs, direct=[0.5]), machine="cpu A | torch 2 | 2 threads")
    assert algorithm == "direct" and runs.calls  # measured, not read
    machines = json.loads((tmp_path / "choices.json").read_text())["machines"]
    assert {m: next(iter(v.values()))["algorithm"] for m, v in machines.items()} == {
        "cpu A | torch 1 | 2 threads": "fft12", "cpu A | torch 2 | 2 threads": "direct"}


@pytest.mark.parametrize("content", ["{not json", json.dumps({"version": 99, "machines": {}}), "[]"])
def test_a_corrupt_cache_warns_and_is_rewritten(tmp_path, content):
    (tmp_path / "choices.json").write_text(content)
    with pytest.warns(DynsalWarning, match="choices.json"):
        algorithm, runs, _ = _choose(tmp_path, {"direct": [1], "channels_last": [2], "fft12": [3], "fft16": [3],
                                                "fft18": [3], "fft24": [3]})
    assert algorithm == "direct"
    assert json.loads((tmp_path / "choices.json").read_text())["version"] == convalgo.CACHE_VERSION


def test_an_unwritable_cache_warns_and_the_choice_holds(tmp_path):
    (tmp_path / "file").write_text("")
    cache = convalgo.ChoiceCache(tmp_path / "file" / "choices.json", "m")  # its folder is a file
    with pytest.warns(DynsalWarning, match="cannot write"):
        cache.put("shape", "fft12", {"fft12": 1.0})
    assert cache.get("shape") == "fft12"
    assert (tmp_path / "file").read_text() == ""


def test_override_from_the_environment(monkeypatch):
    monkeypatch.setenv(convalgo.ENV_ALGO, "fft, conv4=fft24 ,conv3=winograd")
    assert (convalgo.forced_from_env("conv4"), convalgo.forced_from_env("conv3"),
            convalgo.forced_from_env("conv1")) == ("fft24", "winograd", "fft")
    monkeypatch.setenv(convalgo.ENV_ALGO, "conv2=direct")
    assert convalgo.forced_from_env("conv1") is None and convalgo.forced_from_env("conv2") == "direct"
    monkeypatch.setenv(convalgo.ENV_ALGO, "measure")
    assert convalgo.forced_from_env("conv1") is None
    monkeypatch.setenv(convalgo.ENV_ALGO, "conv1=fast")
    with pytest.raises(DynsalError, match="unknown convolution algorithm 'fast'"):
        convalgo.forced_from_env("conv1")


def _conv_net(x, w):
    return layer_net("Convolution", {"x": x}, params=[w, np.full(w.shape[0], 0.1, np.float32)],
                     num_output=w.shape[0], kernel_size=w.shape[-1], pad=w.shape[-1] // 2)


@pytest.mark.parametrize("algorithm,used", [("direct", "direct"), ("channels_last", "channels_last"),
                                            ("fft", "fft8"), ("fft16", "fft16"), ("winograd", "winograd")])
def test_a_forced_algorithm_gives_the_same_output(algorithm, used):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 16, 21, 27)).astype(np.float32)
    w = (rng.standard_normal((24, 16, 3, 3)) / 12).astype(np.float32)
    net = _conv_net(x, w)
    ref = F.conv2d(torch.from_numpy(x), torch.from_numpy(w), torch.full((24,), 0.1), padding=1).numpy()
    net.set_conv_algorithm(algorithm)
    out = net.forward(x=x)["t0"]
    assert net.conv_algorithms == {"layer": {x.shape: used}}
    assert np.abs(out - ref).max() <= BOUND * np.abs(ref).max()
    net.set_params({"layer": [2 * w, np.ones(24, np.float32)]})  # kernel transforms follow the weights
    out = net.forward(x=x)["t0"]
    assert np.abs(out - (2 * ref - 0.2 + 1)).max() <= BOUND * np.abs(2 * ref).max()


def test_the_layer_runs_the_cached_choice_and_only_at_inference(monkeypatch):
    monkeypatch.delenv(convalgo.ENV_ALGO)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((1, 8, 20, 24)).astype(np.float32)
    w = (rng.standard_normal((8, 8, 5, 5)) / 14).astype(np.float32)
    options = _options((2, 2))
    convalgo.shared_cache().put(convalgo.shape_key(x.shape, w.shape, options, torch.float32), "fft16",
                                {"fft16": 1.0})
    net = _conv_net(x, w)
    assert net.conv_algorithms == {"layer": {x.shape: "fft16"}}
    ref = F.conv2d(torch.from_numpy(x), torch.from_numpy(w), torch.full((8,), 0.1), padding=2).numpy()
    assert np.abs(net.blob("t0") - ref).max() <= BOUND * np.abs(ref).max()
    with pytest.raises(DynsalError, match="no convolution layer named conv9"):
        net.set_conv_algorithm("direct", ["conv9"])


def test_training_passes_convolve_directly(monkeypatch):
    monkeypatch.setenv(convalgo.ENV_ALGO, "winograd")
    rng = np.random.default_rng(2)
    x = rng.standard_normal((1, 4, 10, 12)).astype(np.float32)
    net = layer_net("Convolution", {"x": x}, force_backward=True, num_output=4, kernel_size=3, pad=1)
    assert net.gradients and net.conv_algorithms == {}
