"""PlainMessage: a protobuf message's fields as plain Python values, `HasField` as protobuf's."""
from __future__ import annotations

from google.protobuf import text_format

from dynsal.caffe.plain import PlainMessage
from dynsal.caffe.schema import pb


def test_plain_message_mirrors_fields_presence_and_nesting():
    layer = text_format.Parse('name: "crop" type: "Crop" bottom: "a" bottom: "b" top: "c" '
                              'crop_param { axis: 1 offset: 2 offset: 3 } loss_param { ignore_label: 0 }',
                              pb.LayerParameter())
    plain = PlainMessage(layer)
    assert (plain.name, plain.type, plain.bottom, plain.top) == ("crop", "Crop", ("a", "b"), ("c",))
    assert plain.crop_param.axis == 1 and plain.crop_param.offset == (2, 3)
    assert plain.HasField("crop_param") and not plain.HasField("slice_param")
    assert plain.loss_param.HasField("ignore_label") and plain.loss_param.ignore_label == 0  # set to the default
    assert not plain.loss_param.HasField("normalize") and plain.loss_param.normalize == layer.loss_param.normalize
    assert plain.slice_param.axis == 1 and plain.slice_param.slice_point == ()  # unset: protobuf's defaults
    net = text_format.Parse('layer { name: "x" } layer { name: "y" }', pb.NetParameter())
    assert [layer.name for layer in PlainMessage(net).layer] == ["x", "y"]
