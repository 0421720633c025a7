"""The two-stream initialisation run in real Caffe: with both streams given the same single-stream
weights and the same input, every fused net reproduces the single-stream net's output."""
from __future__ import annotations

import numpy as np
import pytest

from dynsal import zoo
from dynsal.caffe import io
from dynsal.caffe.caffemodel import attach_blobs
from dynsal.init_weights import write_two_stream_init
from tests.test_init_weights import single_stream

pytestmark = pytest.mark.caffe_parity

SHAPE = (1, 3, 48, 64)
FORWARD = """
import caffe, numpy as np
caffe.set_mode_cpu()
x = np.load("x.npy")
out = {}
for name in ["ssnet", "stsmax", "stsconv", "early", "late"]:
    net = caffe.Net(name + ".prototxt", caffe.TEST, weights=name + ".caffemodel")
    net.blobs["data1"].data[...] = x
    if "data1_b" in net.blobs:
        net.blobs["data1_b"].data[...] = x
    out[name] = net.forward()["deconv1"].copy()
np.savez("out.npz", **out)
"""


@pytest.fixture(scope="module")
def caffe_outputs(oracle, module_workdir):
    wd = module_workdir
    weights = single_stream(0)
    io.write_binary(attach_blobs(zoo.deploy("ssnet", SHAPE), weights), wd.host / "ssnet.caffemodel")
    io.write_text(zoo.deploy("ssnet", SHAPE), wd.host / "ssnet.prototxt")
    for name in ("stsmax", "stsconv", "early", "late"):
        write_two_stream_init(name, wd.host / "ssnet.caffemodel", wd.host / "ssnet.caffemodel",
                              wd.host / f"{name}.caffemodel")
        io.write_text(zoo.deploy(name, SHAPE), wd.host / f"{name}.prototxt")
    np.save(wd.host / "x.npy", np.random.default_rng(1).standard_normal(SHAPE).astype(np.float32))
    oracle.python(FORWARD, wd)
    return dict(np.load(wd.host / "out.npz"))


@pytest.mark.parametrize("name", ["stsmax", "stsconv", "early", "late"])
def test_fused_net_reproduces_single_stream(caffe_outputs, name):
    reference = caffe_outputs["ssnet"]
    assert np.abs(reference).max() > 0
    np.testing.assert_allclose(caffe_outputs[name], reference, rtol=0, atol=1e-5 * np.abs(reference).max())
