"""Caffe's HDF5 snapshot files and the suffix rule: `.h5` names are HDF5, anything else binary."""
from __future__ import annotations

import h5py
import numpy as np
import pytest

from dynsal.caffe import hdf5, io
from dynsal.caffe.blobs import array_to_blob, blob_to_array
from dynsal.caffe.caffemodel import attach_blobs
from dynsal.caffe.schema import pb
from dynsal.errors import FormatError

NET = """
name: "small"
layer { name: "input" type: "Input" top: "x" input_param { shape { dim: 1 dim: 2 dim: 4 dim: 4 } } }
layer { name: "a" type: "Convolution" bottom: "x" top: "a" convolution_param { num_output: 3 kernel_size: 1 } }
layer { name: "b" type: "Convolution" bottom: "a" top: "b" convolution_param { num_output: 1 kernel_size: 1 } }
layer { name: "c" type: "Convolution" bottom: "a" top: "c"
        convolution_param { num_output: 1 kernel_size: 1 bias_term: false } }
"""


@pytest.fixture()
def net(tmp_path):
    (tmp_path / "net.prototxt").write_text(NET)
    return io.read_net(tmp_path / "net.prototxt")


def arrays(rng, *shapes):
    return [rng.standard_normal(s).astype(np.float32) for s in shapes]


def test_caffemodels_by_suffix_with_diffs(net, tmp_path):
    rng = np.random.default_rng(0)
    weights = {"a": arrays(rng, (3, 2, 1, 1), (3,)), "b": arrays(rng, (1, 3, 1, 1), (1,)),
               "c": arrays(rng, (1, 3, 1, 1))}
    diffs = {k: [a * 0.5 for a in v] for k, v in weights.items()}
    for name in ("m.caffemodel", "m.caffemodel.h5"):
        io.write_caffemodel(net, weights, tmp_path / name, diffs=diffs)
        back = {layer.name: layer.blobs for layer in io.read_net(tmp_path / name).layer if len(layer.blobs)}
        assert sorted(back) == ["a", "b", "c"]
        for layer, blobs in back.items():
            assert [blob_to_array(b).tolist() for b in blobs] == [a.tolist() for a in weights[layer]]
    with h5py.File(tmp_path / "m.caffemodel.h5", "r") as handle:  # every layer, the implicit Split too
        assert sorted(handle["data"]) == sorted(handle["diff"]) == ["a", "a_a_0_split", "b", "c", "input"]
        assert np.array_equal(handle["diff"]["c"]["0"][()], diffs["c"][0])
    binary = io.read_net(tmp_path / "m.caffemodel")
    assert np.array_equal(np.array(binary.layer[1].blobs[0].diff), diffs["a"][0].ravel())
    assert io.read_net(tmp_path / "m.caffemodel") == attach_blobs(net, weights, diffs)


def test_solverstates_by_suffix(tmp_path):
    state = pb.SolverState(iter=12, learned_net="snap/x_iter_12.caffemodel.h5", current_step=2)
    for array in arrays(np.random.default_rng(1), (3, 2), (5,)):
        array_to_blob(array, state.history.add())
    for name in ("s.solverstate", "s.solverstate.h5"):
        io.write_solverstate(state, tmp_path / name)
        assert io.read_solverstate(tmp_path / name) == state
    with h5py.File(tmp_path / "s.solverstate.h5", "r") as handle:
        assert handle["iter"].dtype == np.int32 and handle["iter"].shape == (1,)
        raw = handle["learned_net"].id.get_type()
        assert raw.get_size() == len(state.learned_net) + 1 and raw.get_strpad() == h5py.h5t.STR_NULLTERM


def test_unreadable_hdf5_files_are_one_line_errors(tmp_path):
    (tmp_path / "bad.caffemodel.h5").write_bytes(b"not HDF5")
    with pytest.raises(FormatError, match="bad.caffemodel.h5: not a readable HDF5 caffemodel"):
        io.read_net(tmp_path / "bad.caffemodel.h5")
    with h5py.File(tmp_path / "nodata.caffemodel.h5", "w") as handle:
        handle.create_group("weights")
    with pytest.raises(FormatError, match="no `data` group"):
        io.read_net(tmp_path / "nodata.caffemodel.h5")
    with h5py.File(tmp_path / "gap.caffemodel.h5", "w") as handle:
        handle.create_dataset("data/conv/1", data=np.zeros(3, np.float32))
    with pytest.raises(FormatError, match="group /data/conv holds"):
        io.read_net(tmp_path / "gap.caffemodel.h5")
    with h5py.File(tmp_path / "s.solverstate.h5", "w") as handle:
        handle.create_dataset("iter", data=np.array([1], np.int32))
    with pytest.raises(FormatError, match="no current_step, history"):
        io.read_solverstate(tmp_path / "s.solverstate.h5")
    with pytest.raises(FormatError, match="missing.caffemodel.h5: no such file"):
        hdf5.read_weights(tmp_path / "missing.caffemodel.h5")
