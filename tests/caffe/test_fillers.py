"""Caffe's fillers (filler.hpp): exact values where deterministic, distributions otherwise."""
from __future__ import annotations

import math

import numpy as np
import pytest

from dynsal.caffe.fillers import fill
from dynsal.caffe.schema import pb
from dynsal.errors import NetDefinitionError

RNG = np.random.default_rng(1)


def _filler(**kwargs):
    return pb.FillerParameter(**kwargs)


def test_default_filler_is_constant_zero_and_constant_value():
    assert not fill(pb.FillerParameter(), (3, 4), RNG).any()
    np.testing.assert_array_equal(fill(_filler(type="constant", value=0.25), (2,), RNG), [0.25, 0.25])


def test_bilinear_is_the_upsampling_kernel_for_every_slice():
    w = fill(_filler(type="bilinear"), (2, 1, 4, 4), RNG)
    ramp = np.array([0.25, 0.75, 0.75, 0.25])  # f = 2, c = 0.75
    for out in range(2):
        np.testing.assert_allclose(w[out, 0], np.outer(ramp, ramp))
    with pytest.raises(NetDefinitionError, match="square"):
        fill(_filler(type="bilinear"), (1, 1, 3, 4), RNG)


@pytest.mark.parametrize("norm,n", [("FAN_IN", 3 * 9), ("FAN_OUT", 64 * 9), ("AVERAGE", (27 + 576) / 2)])
def test_xavier_and_msra_scale_with_the_fan(norm, n):
    shape = (64, 3, 3, 3)
    mode = pb.FillerParameter.VarianceNorm.Value(norm)
    xavier = fill(_filler(type="xavier", variance_norm=mode), shape, RNG)
    bound = math.sqrt(3 / n)
    assert np.abs(xavier).max() <= bound and np.abs(xavier).max() > 0.95 * bound
    msra = fill(_filler(type="msra", variance_norm=mode), shape, RNG)
    assert abs(msra.std() - math.sqrt(2 / n)) < 0.05 * math.sqrt(2 / n)


def test_gaussian_uniform_sparse_and_unitball():
    g = fill(_filler(type="gaussian", mean=1.0, std=0.5), (200, 100), RNG)
    assert abs(g.mean() - 1.0) < 0.01 and abs(g.std() - 0.5) < 0.01
    u = fill(_filler(type="uniform", min=-2, max=-1), (1000,), RNG)
    assert u.min() >= -2 and u.max() <= -1
    sparse = fill(_filler(type="gaussian", sparse=5), (20, 1000), RNG)
    assert abs((sparse != 0).mean() - 5 / 20) < 0.01
    ball = fill(_filler(type="positive_unitball"), (4, 3, 2), RNG)
    np.testing.assert_allclose(ball.reshape(4, -1).sum(axis=1), 1, rtol=1e-6)
    assert ball.min() >= 0


def test_unknown_filler_is_an_error():
    with pytest.raises(NetDefinitionError, match="unknown filler type 'orthogonal'"):
        fill(_filler(type="orthogonal"), (2, 2), RNG)
