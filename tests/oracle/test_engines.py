"""The pycaffe engine inside the oracle: the same interface tests as the torch engine, and the
same outputs as the torch engine on the same files."""
from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from dynsal import zoo
from dynsal.caffe import io
from dynsal.caffe.caffemodel import attach_blobs
from dynsal.caffe.graph import build_graph
from dynsal.caffe.shapes import infer_shapes
from dynsal.engines import load_net

TESTS = Path(__file__).resolve().parents[1]


def check_interface_tests(chroot, workdir):
    """tests/engines/test_net_interface.py with the caffe engine inside `chroot`: all pass, none skipped."""
    shutil.copytree(TESTS, workdir.host / "tests", ignore=shutil.ignore_patterns("__pycache__"))
    result = chroot.run(["python3", "-m", "pytest", "-q", "-p", "no:cacheprovider",
                         "tests/engines/test_net_interface.py"], workdir, env={"DYNSAL_TEST_ENGINE": "caffe"},
                        check=False)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    summary = result.stdout.strip().splitlines()[-1]
    assert re.match(r"\d+ passed(, \d+ warnings?)? in", summary) and "skipped" not in summary, summary


def test_caffe_engine_passes_the_interface_tests(oracle, workdir):
    check_interface_tests(oracle, workdir)


CAFFE_ENGINE_FORWARD = """
import numpy as np, sys
from dynsal.engines import load_net
net = load_net(sys.argv[1], sys.argv[2], engine="caffe")
inputs = dict(np.load("inputs.npz"))
out = net.forward(**inputs)
np.savez("outputs.npz", **out)
"""


ENGINE_PARITY_NETS = ["ssnet", "stsconv"]


@pytest.mark.parametrize("name", ENGINE_PARITY_NETS)
@pytest.mark.caffe_parity
def test_caffe_and_torch_engines_agree(oracle, workdir, name):
    check_engines_agree(oracle, workdir, name)


def check_engines_agree(chroot, workdir, name):
    """`engine="caffe"` (real Caffe in `chroot`) and `engine="torch"` give the same outputs on the same files."""
    pytest.importorskip("torch", reason="the torch engine needs torch (pip install dynsal[torch])")
    net = zoo.deploy(name, (1, 3, 52, 68))
    _, params = infer_shapes(build_graph(net))
    rng = np.random.default_rng(5)
    weights = {k: [rng.standard_normal(s).astype(np.float32) * 0.05 for s in v] for k, v in params.items() if v}
    io.write_text(net, workdir.host / "net.prototxt")
    io.write_binary(attach_blobs(net, weights), workdir.host / "net.caffemodel")
    inputs = {blob: rng.standard_normal((1, 3, 52, 68)).astype(np.float32) for blob in zoo.input_names(zoo.get(name))}
    np.savez(workdir.host / "inputs.npz", **inputs)
    (workdir.host / "forward.py").write_text(CAFFE_ENGINE_FORWARD)
    chroot.run(["python3", "forward.py", "net.prototxt", "net.caffemodel"], workdir)
    caffe_out = dict(np.load(workdir.host / "outputs.npz"))
    torch_net = load_net(workdir.host / "net.prototxt", workdir.host / "net.caffemodel", engine="torch")
    torch_out = torch_net.forward(**inputs)
    assert sorted(caffe_out) == sorted(torch_out) == ["deconv1"]
    reference = caffe_out["deconv1"]
    assert np.abs(torch_out["deconv1"] - reference).max() <= 1e-4 * np.abs(reference).max()
