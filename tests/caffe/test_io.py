"""Reading and writing Caffe files without Caffe: round trips, big files, and clear errors."""
from __future__ import annotations

import numpy as np
import pytest

from dynsal.caffe import io
from dynsal.caffe.blobs import array_to_blob, array_to_datum, blob_to_array, datum_to_array
from dynsal.caffe.schema import pb
from dynsal.errors import FormatError


def test_prototxt_round_trip(tmp_path):
    net = pb.NetParameter(name="n")
    layer = net.layer.add(name="conv", type="Convolution", bottom=["x"], top=["y"])
    layer.convolution_param.kernel_size.append(3)
    layer.param.add(lr_mult=2, decay_mult=0)
    io.write_text(net, tmp_path / "n.prototxt")
    assert io.read_net(tmp_path / "n.prototxt") == net


def test_defaults_are_caffes():
    assert pb.PoolingParameter().round_mode == pb.PoolingParameter.CEIL
    assert pb.DataParameter().backend == pb.DataParameter.LEVELDB
    assert pb.SolverParameter().type == "SGD" and pb.SolverParameter().clip_gradients == -1
    assert pb.LRNParameter().k == 1.0 and pb.FillerParameter().type == "constant"
    assert pb.NetState().phase == pb.TEST


def test_malformed_prototxt_names_file_and_line(tmp_path):
    path = tmp_path / "bad.prototxt"
    path.write_text('name: "x"\nlayer {\n  name: "a"\n  typo_field: 3\n}\n')
    with pytest.raises(FormatError) as err:
        io.read_net(path)
    message = str(err.value)
    assert message.startswith(f"{path}:4:") and "typo_field" in message and "\n" not in message


def test_truncated_caffemodel_is_one_line_naming_the_file(tmp_path):
    net = pb.NetParameter(name="n")
    array_to_blob(np.ones((64, 64), np.float32), net.layer.add(name="fc", type="InnerProduct").blobs.add())
    data = net.SerializeToString()
    path = tmp_path / "cut.caffemodel"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(FormatError) as err:
        io.read_net(path)
    assert str(err.value).startswith(f"{path}: not a readable caffemodel") and "\n" not in str(err.value)


def test_missing_file_is_reported(tmp_path):
    with pytest.raises(FormatError, match="no such file"):
        io.read_net(tmp_path / "none.caffemodel")


def test_blob_codecs_round_trip():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((2, 3, 4)).astype(np.float32)
    np.testing.assert_array_equal(blob_to_array(array_to_blob(a)), a)
    d = rng.standard_normal((2, 3, 4))
    np.testing.assert_array_equal(blob_to_array(array_to_blob(d, double=True)), d)
    np.testing.assert_array_equal(blob_to_array(array_to_blob(a, diff=2 * a), diff=True), 2 * a)
    legacy = array_to_blob(a[0], legacy=True)
    assert (legacy.num, legacy.channels, legacy.height, legacy.width) == (1, 1, 3, 4)
    assert not legacy.HasField("shape")


def test_blob_with_wrong_count_is_an_error():
    blob = pb.BlobProto(data=[1.0, 2.0])
    blob.shape.dim.extend([3])
    with pytest.raises(FormatError, match="holds 2 values"):
        blob_to_array(blob)


def test_datum_codecs():
    image = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    datum = array_to_datum(image, label=5)
    assert datum.data == image.tobytes() and datum.label == 5
    np.testing.assert_array_equal(datum_to_array(pb.Datum.FromString(datum.SerializeToString())), image)
    floats = image.astype(np.float32) / 7
    np.testing.assert_array_equal(datum_to_array(array_to_datum(floats)), floats)


def test_mean_file_round_trip(tmp_path):
    mean = np.random.default_rng(1).uniform(0, 255, (3, 5, 6)).astype(np.float32)
    io.write_mean_file(mean, tmp_path / "mean.binaryproto")
    np.testing.assert_array_equal(io.read_mean_file(tmp_path / "mean.binaryproto"), mean)


def test_solverstate_round_trip(tmp_path):
    state = pb.SolverState(iter=30, learned_net="x_iter_30.caffemodel", current_step=1)
    array_to_blob(np.ones((2, 2)), state.history.add())
    io.write_binary(state, tmp_path / "x.solverstate")
    assert io.read_solverstate(tmp_path / "x.solverstate") == state


def test_vgg_size_caffemodel_loads(tmp_path):
    """A 550 MB caffemodel (VGG16's size) reads: no 64 MB protobuf cap."""
    net = pb.NetParameter(name="VGG_size")
    count = 550_000_000 // 4
    weights = np.ones(count, dtype=np.float32)
    weights[-1] = 7.0
    array_to_blob(weights.reshape(count // 1000, 1000), net.layer.add(name="fc6", type="InnerProduct").blobs.add())
    path = tmp_path / "vgg.caffemodel"
    io.write_binary(net, path)
    del net
    assert path.stat().st_size > 550_000_000
    array = blob_to_array(io.read_net(path).layer[0].blobs[0])
    assert array.shape == (count // 1000, 1000) and array[-1, -1] == 7.0 and array[0, 0] == 1.0
