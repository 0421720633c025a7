"""Flush-to-zero around the torch engine's CPU passes (DESIGN D9): on inside, the caller's state after."""
from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from dynsal import zoo
from dynsal.engines import load_net
from dynsal.engines.torch.denormals import flush_denormals, flushing_denormals
from tests.engines.layer_net import layer_net

DENORMAL = np.float32(1e-40)


@pytest.fixture()
def caller_state():
    """Restores the test process's own FTZ/DAZ state whatever a test does."""
    before = flushing_denormals()
    yield before
    torch.set_flush_denormal(before)


def test_flush_is_on_inside_and_restored_after(caller_state):
    torch.set_flush_denormal(False)
    with flush_denormals(torch.device("cpu")):
        assert flushing_denormals()
    assert not flushing_denormals()


def test_a_caller_that_flushes_keeps_flushing(caller_state):
    if not torch.set_flush_denormal(True):
        pytest.skip("this CPU has no FTZ/DAZ")
    with flush_denormals(torch.device("cpu")):
        pass
    assert flushing_denormals()


def test_a_forward_flushes_denormals_and_leaves_the_state_alone(caller_state):
    """A Power layer (y = 2x) on a denormal gives 0 inside the engine's pass; the caller is unchanged."""
    torch.set_flush_denormal(False)
    x = np.array([[DENORMAL, 2.0]], np.float32)
    net = layer_net("Power", {"x": x}, power=1.0, scale=2.0, shift=0.0)
    np.testing.assert_array_equal(net.blob("t0"), [[0.0, 4.0]])
    assert not flushing_denormals()
    assert float(torch.tensor(DENORMAL) * 1.0) != 0.0


def _he_scaled(params):
    """He-scaled Gaussian weights (std √(2/fan_in)) and small biases of the same shapes."""
    rng = np.random.default_rng(0)
    return {layer: [(rng.standard_normal(blob.shape) * (np.sqrt(2.0 / (blob[0].size or 1)) if i == 0 else 0.1))
                    .astype(np.float32) for i, blob in enumerate(blobs)] for layer, blobs in params.items()}


def test_zoo_initialised_forward_is_not_an_order_of_magnitude_slower_than_he_scaled():
    """Issue 18: with the zoo's fillers (as a net starts training) SSNet's CPU forward on random-normal
    input ran 13x slower than with He-scaled weights, from denormals; flushed, the two take about the
    same time. A ratio of the two in one process, alternating, best of five (no wall-clock threshold)."""
    deploy = zoo.deploy("ssnet", (1, 3, 96, 128))
    zoo_net, he_net = load_net(deploy, engine="torch", seed=0), load_net(deploy, engine="torch", seed=0)
    he_net.set_params(_he_scaled(zoo_net.params()))
    data = np.random.default_rng(1).standard_normal((1, 3, 96, 128)).astype(np.float32)
    seconds = {"zoo": [], "he": []}
    for _ in range(5):
        for name, net in (("zoo", zoo_net), ("he", he_net)):
            start = time.perf_counter()
            net.forward(data1=data)
            seconds[name].append(time.perf_counter() - start)
    ratio = min(seconds["zoo"]) / min(seconds["he"])
    assert ratio < 5, f"zoo-initialised forward {ratio:.1f}x the He-scaled one: {seconds}"
