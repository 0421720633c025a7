"""Net construction (filtering, implicit splits) and shape rules for Caffe's subtle cases."""
from __future__ import annotations

import pytest
from google.protobuf import text_format

from dynsal.caffe.graph import build_graph
from dynsal.caffe.pooling import pooled_shape
from dynsal.caffe.schema import pb
from dynsal.caffe.shapes import infer_shapes
from dynsal.errors import NetDefinitionError

NET = """
layer { name: "in" type: "Input" top: "x" input_param { shape { dim: 2 dim: 4 dim: 9 dim: 9 } } }
layer { name: "train_only" type: "ReLU" bottom: "x" top: "t" include { phase: TRAIN } }
layer { name: "c" type: "Convolution" bottom: "x" top: "c"
        convolution_param { num_output: 6 kernel_h: 3 kernel_w: 1 group: 2 } }
layer { name: "p" type: "Pooling" bottom: "c" top: "p" pooling_param { pool: AVE kernel_size: 3 stride: 2 pad: 1 } }
layer { name: "e" type: "Eltwise" bottom: "c" bottom: "c" top: "e" }
"""


def parse(text):
    return text_format.Parse(text, pb.NetParameter())


def test_phase_filtering_and_implicit_splits():
    graph = build_graph(parse(NET), phase="TEST")
    names = [layer.name for layer in graph.layers]
    assert "train_only" not in names
    assert "c_c_0_split" in names  # blob c consumed three times
    split = graph.layer("c_c_0_split").param
    assert list(split.top) == ["c_c_0_split_0", "c_c_0_split_1", "c_c_0_split_2"]
    assert list(graph.layer("e").param.bottom) == ["c_c_0_split_1", "c_c_0_split_2"]
    assert graph.outputs == ["e", "p"]
    assert "train_only" in [layer.name for layer in build_graph(parse(NET), phase="TRAIN").layers]


def test_shapes_grouped_rect_conv_and_padded_pooling():
    blobs, params = infer_shapes(build_graph(parse(NET)))
    assert blobs["c"] == (2, 6, 7, 9)
    assert params["c"] == [(6, 2, 3, 1), (6,)]
    assert blobs["p"] == (2, 6, 4, 5)


@pytest.mark.parametrize("hw,kernel,stride,pad,expected", [
    ((240, 240), (3, 3), (2, 2), (0, 0), (120, 120)),  # ceil: floor would give 119
    ((112, 112), (3, 3), (2, 2), (1, 1), (57, 57)),
    ((5, 5), (2, 2), (2, 2), (1, 1), (3, 3)),  # last window would start in the padding: clipped from 4 to 3
    ((6, 6), (3, 3), (3, 3), (0, 0), (2, 2)),
    ((5, 7), (1, 3), (3, 2), (0, 1), (2, 4)),  # real Caffe: padding on W clips H's last window as well
    ((5, 7), (1, 3), (3, 2), (0, 0), (3, 3)),  # no padding anywhere: no clip, even for a window outside
])
def test_pooled_shape_ceil_and_clip(hw, kernel, stride, pad, expected):
    assert pooled_shape(hw, kernel, stride, pad, ceil_mode=True) == expected


def test_wiring_errors_name_the_layer():
    with pytest.raises(NetDefinitionError, match="'r': unknown bottom blob 'nope'"):
        build_graph(parse('layer { name: "r" type: "ReLU" bottom: "nope" top: "y" }'))
    with pytest.raises(NetDefinitionError, match="multiple sources"):
        build_graph(parse('layer { name: "a" type: "Input" top: "x" input_param { shape { dim: 1 } } }\n'
                          'layer { name: "b" type: "Input" top: "x" input_param { shape { dim: 1 } } }'))


def test_unknown_type_lists_known_types():
    net = parse('layer { name: "a" type: "Input" top: "x" input_param { shape { dim: 1 } } }\n'
                'layer { name: "w" type: "Warp" bottom: "x" top: "y" }')
    with pytest.raises(NetDefinitionError, match="'w': no shape rule for type 'Warp'; known types: .*Convolution"):
        infer_shapes(build_graph(net))


def test_loss_weight_moves_to_split():
    net = parse('layer { name: "a" type: "Input" top: "x" input_param { shape { dim: 2 } } }\n'
                'layer { name: "s" type: "Sigmoid" bottom: "x" top: "y" loss_weight: 2 }\n'
                'layer { name: "r" type: "ReLU" bottom: "y" top: "z" }')
    graph = build_graph(net)
    split = graph.layer("y_s_0_split").param
    assert list(split.loss_weight) == [2.0, 0.0]
    assert list(graph.layer("s").param.loss_weight) == []
