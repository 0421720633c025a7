"""Two runs of one net compared pass by pass (the fast path against eager, CUDA against the CPU)."""
from __future__ import annotations

import numpy as np


def relative(a: np.ndarray, b: np.ndarray) -> float:
    """max|a − b| / max|b|."""
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-30))


def assert_passes_agree(reference, net, feed, bound: float) -> None:
    """forward (every output), backward (every input diff) and the parameter diffs of `net` within `bound`
    (relative, `relative`) of `reference`'s, on `feed`."""
    expected, got = reference.forward(**feed), net.forward(**feed)
    assert sorted(got) == sorted(expected)
    for name in expected:
        assert relative(got[name], expected[name]) <= bound, name
    expected_diffs, got_diffs = reference.backward(), net.backward()
    for name in expected_diffs:
        assert relative(got_diffs[name], expected_diffs[name]) <= bound, name
    for layer, diffs in reference.param_diffs().items():
        assert len(net.param_diffs()[layer]) == len(diffs), layer
        for a, b in zip(net.param_diffs()[layer], diffs):
            assert relative(a, b) <= bound, layer
