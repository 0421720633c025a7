"""Upgrades on load (the oracle tests compare them with Caffe's own tools; these pin the details)."""
from __future__ import annotations

import pytest
from google.protobuf import text_format

from dynsal.caffe import upgrade
from dynsal.caffe.schema import pb
from dynsal.errors import FormatError


def net(text: str):
    return text_format.Parse(text, pb.NetParameter())


def test_input_dim_becomes_first_input_layer():
    up = upgrade.upgrade_net(net('input: "a" input_dim: 1 input_dim: 3 input_dim: 4 input_dim: 5\n'
                                 'layer { name: "r" type: "ReLU" bottom: "a" top: "a" }'))
    assert [la.name for la in up.layer] == ["input", "r"]
    assert list(up.layer[0].input_param.shape[0].dim) == [1, 3, 4, 5] and not up.input


def test_v1_layers_become_layer_with_param_specs():
    up = upgrade.upgrade_net(net('layers { name: "c" type: CONVOLUTION blobs_lr: 1 blobs_lr: 2 weight_decay: 1 '
                                 'weight_decay: 0 convolution_param { num_output: 2 kernel_size: 1 } }'))
    layer = up.layer[0]
    assert layer.type == "Convolution" and not up.layers
    assert [(p.lr_mult, p.decay_mult) for p in layer.param] == [(1, 1), (2, 0)]


def test_v0_and_mixed_formats_are_refused():
    with pytest.raises(FormatError, match="V0"):
        upgrade.upgrade_net(net('layers { layer { name: "x" type: "conv" } }'), source="old.prototxt")
    with pytest.raises(FormatError, match="both"):
        upgrade.upgrade_net(net('layer { name: "a" } layers { name: "b" type: RELU }'))


def test_batchnorm_with_three_params_gets_zero_lr():
    up = upgrade.upgrade_net(net('layer { name: "bn" type: "BatchNorm" param { lr_mult: 1 } param { lr_mult: 1 } '
                                 'param { lr_mult: 1 } }'))
    assert [(p.lr_mult, p.decay_mult) for p in up.layer[0].param] == [(0, 0)] * 3


def test_solver_type_and_snapshot_prefix(tmp_path):
    solver = text_format.Parse("solver_type: ADAM", pb.SolverParameter())
    up = upgrade.upgrade_solver(solver, source=str(tmp_path / "my_solver.prototxt"))
    assert up.type == "Adam" and not up.HasField("solver_type")
    assert up.snapshot_prefix == str(tmp_path / "my_solver")
    into_dir = upgrade.upgrade_solver(pb.SolverParameter(snapshot_prefix=str(tmp_path)), source="a/s.prototxt")
    assert into_dir.snapshot_prefix == str(tmp_path / "s")
    with pytest.raises(FormatError, match="both"):
        upgrade.upgrade_solver(text_format.Parse('solver_type: SGD type: "Adam"', pb.SolverParameter()))
