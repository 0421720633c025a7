"""Flush-to-zero around the torch engine's CPU passes (DESIGN D9): on inside, the caller's state after."""
from __future__ import annotations

import numpy as np
import pytest
import torch

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
