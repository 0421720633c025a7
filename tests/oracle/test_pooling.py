"""Pooling geometry against real Caffe: random kernels, strides and paddings per axis (one axis padded
and the other not, windows that overrun the input, ceil and floor, global), MAX with its mask top and
AVE — output shapes from dynsal's shape rule and the torch engine, and values, equal Caffe's.

All layers sit in one net (one Input blob per layer, its own size), run by Caffe in one chroot call.
The inputs hold distinct values, so no MAX window has a tie and every mask is well defined.
"""
from __future__ import annotations

import numpy as np
import pytest

from dynsal.caffe.graph import build_graph
from dynsal.caffe.netspec import L, NetSpec
from dynsal.caffe.shapes import infer_shapes
from dynsal.engines import load_net
from tests.engines.parity import CaffeCase, compare, load_caffe, run_caffe, write_net

pytestmark = pytest.mark.caffe_parity

LAYERS = 120
SEED = 20261128


def random_geometries(count: int, seed: int):
    """`count` pooling layers as (input shape, PoolingParameter fields), seeded."""
    rng = np.random.default_rng(seed)
    layers = []
    for _ in range(count):
        fields = dict(pool=str(rng.choice(["MAX", "AVE"])), round_mode=str(rng.choice(["CEIL", "FLOOR"])))
        if rng.random() < 0.1:
            fields["global_pooling"] = True
            hw = rng.integers(1, 9, 2)
        else:
            kernel, stride = rng.integers(1, 6, 2), rng.integers(1, 5, 2)
            pad = np.array([rng.integers(0, k) for k in kernel])
            if rng.random() < 0.4:
                pad[rng.integers(0, 2)] = 0  # one axis padded, the other not
            hw = np.array([rng.integers(max(1, k - 2 * p), 13) for k, p in zip(kernel, pad)])
            fields.update(kernel_h=int(kernel[0]), kernel_w=int(kernel[1]), stride_h=int(stride[0]),
                          stride_w=int(stride[1]), pad_h=int(pad[0]), pad_w=int(pad[1]))
        layers.append(((2, 2, int(hw[0]), int(hw[1])), fields))
    return layers


def pooling_net(geometries):
    """Input x<i> → Pooling p<i> for every geometry; MAX layers also give their mask top m<i>."""
    n = NetSpec("pooling_geometries")
    inputs = L.Input(name="input", ntop=len(geometries), shape=[dict(dim=list(shape)) for shape, _ in geometries])
    for i, (top, (_, fields)) in enumerate(zip(inputs, geometries)):
        setattr(n, f"x{i}", top)
        if fields["pool"] == "MAX":
            pooled, mask = L.Pooling(top, name=f"p{i}", ntop=2, **fields)
            setattr(n, f"p{i}", pooled)
            setattr(n, f"m{i}", mask)
        else:
            setattr(n, f"p{i}", L.Pooling(top, name=f"p{i}", **fields))
    return n.to_proto()


@pytest.fixture(scope="module")
def caffe_pooling(oracle, module_workdir):
    wd = module_workdir
    geometries = random_geometries(LAYERS, SEED)
    net_param = pooling_net(geometries)
    prototxt, caffemodel = write_net(wd.host, "pooling", net_param, {})
    rng = np.random.default_rng(SEED)
    feed = {f"x{i}": (rng.permutation(int(np.prod(shape))).reshape(shape) - 50.0).astype(np.float32)
            for i, (shape, _) in enumerate(geometries)}
    case = CaffeCase("pooling", prototxt, caffemodel)
    result = case.add_run("pooling", feed)
    run_caffe(oracle, wd, [case])
    return net_param, feed, result


def test_pooling_shapes_match_caffe(caffe_pooling):
    """dynsal's shape rule gives every pooled blob Caffe's shape (the asymmetric-padding clip included)."""
    net_param, feed, result = caffe_pooling
    blobs, _ = infer_shapes(build_graph(net_param, phase="TEST"))
    caffe = load_caffe(result)
    wrong = {name: (blobs[name], caffe["data/" + name].shape) for name in blobs
             if name[0] in "pm" and tuple(blobs[name]) != caffe["data/" + name].shape}
    assert wrong == {}


def test_pooling_values_match_caffe(caffe_pooling):
    """The torch engine's pooled values and MAX masks equal Caffe's for every random geometry."""
    net_param, feed, result = caffe_pooling
    net = load_net(net_param, engine="torch")
    net.forward(**feed)
    assert compare(net, result, backward=False) == []
