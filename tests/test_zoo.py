"""The zoo: checked-in prototxt/ equals the generator; the nets have the published structure."""
from __future__ import annotations

import math
from pathlib import Path

import pytest

from dynsal import zoo
from dynsal.caffe import io
from dynsal.caffe.graph import build_graph
from dynsal.caffe.shapes import infer_shapes
from dynsal.cli import main

REPO = Path(__file__).resolve().parents[1]


def test_checked_in_prototxt_equals_generator(tmp_path):
    assert main(["zoo", "write", str(tmp_path / "prototxt")]) == 0
    generated = sorted(p.name for p in (tmp_path / "prototxt").iterdir())
    checked_in = sorted(p.name for p in (REPO / "prototxt").glob("*.prototxt"))
    assert generated == checked_in and len(generated) == 4 * len(zoo.NETS)
    for name in generated:
        assert (tmp_path / "prototxt" / name).read_text() == (REPO / "prototxt" / name).read_text(), (
            f"prototxt/{name} is stale: run `dynsal zoo write prototxt/`")


@pytest.mark.parametrize("name,learnable", [
    ("ssnet", 25_806_209), ("tsnet", 25_806_209), ("stsmax", 40_723_457), ("stsconv", 41_248_257),
    ("early", 34_694_145), ("late", 51_612_354)])
def test_deploy_structure(name, learnable):
    graph = build_graph(zoo.deploy(name))
    blobs, params = infer_shapes(graph)
    assert graph.outputs == ["deconv1"] and blobs["deconv1"] == (1, 1, 240, 320)
    assert graph.inputs == (["data1", "data1_b"] if zoo.NETS[name].two_stream else ["data1"])
    assert sum(math.prod(s) for shapes in params.values() for s in shapes) == learnable
    assert params["deconv1"] == [(1, 1, 8, 8)]
    if zoo.NETS[name].two_stream:
        assert params["conv1_b"] == params["conv1"] == [(96, 3, 7, 7), (96,)]


def test_stsconv_fusion_layers():
    names = [layer.name for layer in zoo.deploy("stsconv").layer]
    assert names.index("concat") < names.index("conv_fuse") < names.index("conv6")
    assert "relu_fuse" not in names
    _, params = infer_shapes(build_graph(zoo.deploy("stsconv")))
    assert params["conv_fuse"] == [(512, 1024, 1, 1), (512,)]


def test_solver_points_at_train_val():
    solver = io.read_solver(REPO / "prototxt" / "stsconv_solver.prototxt")
    assert solver.net == "prototxt/stsconv_train_val_lmdb.prototxt" and solver.type == "SGD"


def test_unknown_net_is_a_clear_error():
    with pytest.raises(Exception, match="unknown net 'stsavg'; choose one of: ssnet"):
        zoo.deploy("stsavg")
