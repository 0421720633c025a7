"""The oracle comparison's own rules, on hand-made Caffe results: near-tie decisions are detected and
excluded from backward comparison, and real deviations still fail."""
from __future__ import annotations

import json

import numpy as np
import pytest

from dynsal.caffe.netspec import L, NetSpec
from dynsal.engines import load_net
from tests.engines.parity import caffe_max_pool_choice, check_backward_on_a_clean_run, decision_flips, torch_results


def _pool_loss_net():
    """data 1×1×4×4 → MAX pooling 2×2 stride 2 → EuclideanLoss against label 1×1×2×2."""
    n = NetSpec("pool_loss")
    n.data, n.label = L.Input(name="input", ntop=2, shape=[dict(dim=[1, 1, 4, 4]), dict(dim=[1, 1, 2, 2])])
    n.pool = L.Pooling(n.data, name="pool", pool="MAX", kernel_size=2, stride=2)
    n.loss = L.EuclideanLoss(n.pool, n.label, name="loss")
    net_param = n.to_proto()
    net_param.force_backward = True
    return load_net(net_param, engine="torch", phase="train")


def _feed(seed: int):
    rng = np.random.default_rng(seed)
    return {"data": rng.permutation(16).reshape(1, 1, 4, 4).astype(np.float32),
            "label": rng.standard_normal((1, 1, 2, 2)).astype(np.float32)}


def _save_as_caffe(net, path, edit=None):
    """The torch engine's last forward/backward saved as the oracle script saves Caffe's, after `edit(arrays)`."""
    net.backward()
    arrays = {f"{prefix}/{key}": value.copy() for prefix, values in torch_results(net, backward=True).items()
              for key, value in values.items()}
    if edit is not None:
        edit(arrays)
    np.savez(path, **arrays)
    path.with_name(path.name + ".json").write_text(json.dumps(
        {"blobs": net.blob_names, "inputs": net.inputs, "outputs": net.outputs}))
    return path


def _near_tie_feed():
    """Window (0, 0) of the pooling holds 1.0 and the next float32 above it: torch picks the latter."""
    feed = _feed(0)
    feed["data"][0, 0, :2, :2] = [[np.float32(1.0), np.nextafter(np.float32(1.0), np.float32(2.0))], [0.0, 0.5]]
    return feed


def _caffe_ordered_the_tie_the_other_way(arrays):
    """Caffe's rounding put the maximum of window (0, 0) at (0, 0): its data and routed gradient say so."""
    data, diff = arrays["data/data"][0, 0], arrays["diff/data"][0, 0]
    data[0, 0], data[0, 1] = data[0, 1], data[0, 0]
    diff[0, 0], diff[0, 1] = diff[0, 1], diff[0, 0]


def test_max_pool_choice_is_the_first_maximum_in_scan_order():
    x = np.array([[[[3, 1, 2], [3, 0, 2], [1, 5, 5]]]], np.float32)
    choice = caffe_max_pool_choice(x, (2, 2), (1, 1), (0, 0), (2, 2))
    np.testing.assert_array_equal(choice[0, 0], [[0, 2], [7, 7]])
    padded = caffe_max_pool_choice(x, (2, 2), (2, 2), (1, 1), (2, 2))  # windows clipped to the input
    np.testing.assert_array_equal(padded[0, 0], [[0, 2], [3, 7]])


def test_a_near_tie_flip_is_reported_and_not_a_parity_failure(tmp_path):
    net = _pool_loss_net()
    net.forward(**_near_tie_feed())
    flipped = _save_as_caffe(net, tmp_path / "flipped.npz", _caffe_ordered_the_tie_the_other_way)
    assert decision_flips(net, flipped) == {"Pooling pool": 1}
    net.forward(**_feed(1))
    clean = _save_as_caffe(net, tmp_path / "clean.npz")
    assert check_backward_on_a_clean_run(net, [flipped, clean], [_near_tie_feed(), _feed(1)]) == 1


def test_a_gradient_error_of_the_same_size_on_a_clean_run_fails(tmp_path):
    net = _pool_loss_net()
    net.forward(**_near_tie_feed())
    flipped = _save_as_caffe(net, tmp_path / "flipped.npz", _caffe_ordered_the_tie_the_other_way)
    net.forward(**_feed(1))

    def wrong_gradient(arrays):
        arrays["diff/data"][0, 0, 3, 3] += np.abs(arrays["diff/data"]).max()  # as large as a routed gradient

    wrong = _save_as_caffe(net, tmp_path / "wrong.npz", wrong_gradient)
    with pytest.raises(AssertionError, match="diff/data"):
        check_backward_on_a_clean_run(net, [flipped, wrong], [_near_tie_feed(), _feed(1)])


def test_every_run_flipped_fails(tmp_path):
    net = _pool_loss_net()
    net.forward(**_near_tie_feed())
    flipped = _save_as_caffe(net, tmp_path / "flipped.npz", _caffe_ordered_the_tie_the_other_way)
    with pytest.raises(AssertionError, match="every run flipped a decision"):
        check_backward_on_a_clean_run(net, [flipped], [_near_tie_feed()])


def test_a_choice_between_values_far_apart_is_an_engine_defect(tmp_path):
    net = _pool_loss_net()
    net.forward(**_feed(2))

    def caffe_took_a_smaller_element(arrays):
        window = arrays["data/data"][0, 0, :2, :2]
        window[window == window.max()] = -100.0

    wrong = _save_as_caffe(net, tmp_path / "wrong.npz", caffe_took_a_smaller_element)
    with pytest.raises(AssertionError, match="not a tie"):
        decision_flips(net, wrong)
