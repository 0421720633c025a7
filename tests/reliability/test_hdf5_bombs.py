"""Defect 5: tiny files must not force huge allocations; unreadable HDF5 content is one line.

Every probe runs `dynsal` in a subprocess under a 1 GiB address-space limit (above what importing torch
takes, for `dynsal train`), so a regression fails with a MemoryError instead of taking the machine."""
from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from dynsal.caffe import io
from dynsal.caffe.blobs import array_to_blob
from dynsal.caffe.schema import pb
from tests.engines.test_solver import tiny_solver
from tests.reliability.faults import changed, import_address_space, run_dynsal, tree

LIMIT = 1 << 30


def _info(path: Path, *extra) -> str:
    before = tree(path.parent)
    result = run_dynsal(["info", path, *extra], memory_bytes=LIMIT)
    assert result.returncode == 1, result.stdout + result.stderr
    assert changed(before, tree(path.parent)) == []
    return result.error_line()


def _weights(path: Path, make) -> Path:
    with h5py.File(path, "w") as handle:
        make(handle.create_group("data").create_group("conv1"))
    return path


@pytest.mark.parametrize("shape, message", [
    ((50000, 50000), "declares shape (50000, 50000), 2,500,000,000 values; Caffe's blobs hold at most 2,147,483,647"),
    ((40000, 40000), "declares shape (40000, 40000) (6,400,000,000 bytes) but the file stores 0 bytes of it; the "
                     "file is truncated or forged"),
])
def test_a_few_kilobytes_declaring_a_huge_caffemodel_dataset(tmp_path, shape, message):
    """The issue's 3.4 KB `.caffemodel.h5` made `dynsal info` allocate 9.3 GiB of fill values."""
    path = _weights(tmp_path / "bomb.caffemodel.h5", lambda g: g.create_dataset("0", shape=shape, dtype="f4"))
    assert path.stat().st_size < 8192
    assert _info(path) == f"dynsal info: error: {path}: dataset /data/conv1/0 {message}"


def test_a_huge_solverstate_history_dataset(tmp_path):
    path = tmp_path / "bomb.solverstate.h5"
    with h5py.File(path, "w") as handle:
        handle["iter"] = np.array([4], np.int32)
        handle["current_step"] = np.array([0], np.int32)
        handle.create_group("history").create_dataset("0", shape=(60000, 60000), dtype="f4")
    assert "dataset /history/0 declares shape (60000, 60000)" in _info(path)


@pytest.mark.parametrize("make, what", [
    (lambda g: g.create_dataset("0", data=np.array([b"abc", b"de"])), "holds string values"),
    (lambda g: g.create_group("0"), "/data/conv1/0 is a group, expected a dataset"),
    (lambda g: g.create_dataset("0", data=np.zeros(3, [("a", "f4"), ("b", "i4")])), "holds compound values"),
    (lambda g: g.create_dataset("0", data=np.ones((2, 2), np.complex64) * (1 + 2j)), "holds complex values"),
    (lambda g: g.create_dataset("0", data=np.ones(3, bool)), "holds boolean/enum values"),
    (lambda g: g.__setitem__("0", h5py.Empty("f4")), "dataset /data/conv1/0 has an empty dataspace (no values)"),
    (lambda g: g.__setitem__("0", np.dtype("f4")), "/data/conv1/0 is a datatype, expected a dataset"),
])
def test_datasets_caffe_cannot_read_are_one_line(tmp_path, make, what):
    """Strings, groups and compounds gave tracebacks; complex values were silently truncated to their real part."""
    path = _weights(tmp_path / "odd.caffemodel.h5", make)
    line = _info(path)
    assert line.startswith(f"dynsal info: error: {path}: ") and what in line


def test_a_layer_entry_that_is_a_dataset(tmp_path):
    path = tmp_path / "flat.caffemodel.h5"
    with h5py.File(path, "w") as handle:
        handle.create_group("data").create_dataset("conv1", data=np.ones(3, np.float32))
    assert "/data/conv1 is a dataset, expected a group of datasets 0, 1, ..." in _info(path)


def test_compressed_datasets_within_the_expansion_limit_are_read(tmp_path):
    path = _weights(tmp_path / "gzip.caffemodel.h5",
                    lambda g: g.create_dataset("0", data=np.arange(4096, dtype=np.float32).reshape(64, 64),
                                               compression="gzip", chunks=(8, 8)))
    result = run_dynsal(["info", path], memory_bytes=LIMIT)
    assert result.returncode == 0 and "(64, 64) = 4,096" in result.stdout


def _binary_model(path: Path, blob) -> Path:
    net = pb.NetParameter(name="forged")
    net.layer.add(name="conv1", type="Convolution").blobs.add().CopyFrom(blob)
    path.write_bytes(net.SerializeToString())
    return path


@pytest.mark.parametrize("dims, values, message", [
    ((50000, 50000), 4, "shape (50000, 50000) declares 2,500,000,000 values, more than Caffe's 2,147,483,647"),
    ((2, 3), 4, "shape (2, 3) needs 6 values, the file holds 4"),
    ((-2, 3), 0, "negative axis in shape (-2, 3)"),
])
def test_binary_caffemodel_blob_sizes_are_checked(tmp_path, dims, values, message):
    blob = pb.BlobProto()
    blob.shape.dim.extend(dims)
    blob.data.extend([1.0] * values)
    path = _binary_model(tmp_path / "forged.caffemodel", blob)
    assert _info(path) == (f"dynsal info: error: {path}: layer 'conv1' blob 0: {message}; the file is corrupt or "
                           "forged")


def test_binary_solverstate_and_mean_file_blob_sizes_are_checked(tmp_path):
    blob = pb.BlobProto(num=1, channels=3, height=4000, width=4000)
    blob.data.extend([0.0] * 10)
    state = pb.SolverState(iter=3)
    state.history.add().CopyFrom(blob)
    (tmp_path / "forged.solverstate").write_bytes(state.SerializeToString())
    assert "history blob 0: shape (1, 3, 4000, 4000) needs 48,000,000 values" in _info(tmp_path / "forged.solverstate")
    (tmp_path / "mean.binaryproto").write_bytes(blob.SerializeToString())
    assert "blob 0: shape (1, 3, 4000, 4000) needs" in _info(tmp_path / "mean.binaryproto")


def test_well_formed_files_still_read(tmp_path):
    path = tmp_path / "ok.caffemodel"
    net = pb.NetParameter(name="ok")
    layer = net.layer.add(name="conv1", type="Convolution")
    array_to_blob(np.ones((2, 3), np.float32), layer.blobs.add(), diff=np.zeros((2, 3), np.float32))
    array_to_blob(np.ones((1, 1, 2, 2), np.float32), layer.blobs.add(), legacy=True)
    path.write_bytes(net.SerializeToString())
    assert io.read_net(path).layer[0].blobs[0].shape.dim == [2, 3]
    assert run_dynsal(["info", path], memory_bytes=LIMIT).returncode == 0


# ----------------------------------------------------------------------------------------- HDF5Data inputs


@pytest.mark.parametrize("damage, message", [
    ("missing", "(listed in train_h5.txt): no such file"),
    ("truncated", "(listed in train_h5.txt): not a readable HDF5 file"),
    ("bomb", "declares shape (200000, 1, 100, 100) (8,000,000,000 bytes) but the file stores 0 bytes"),
])
def test_hdf5_data_lists_naming_a_bad_file(tmp_path, damage, message):
    """`dynsal info --phase TRAIN` and `dynsal train` over an HDF5Data list naming a missing, truncated or
    forged file: one line naming the file and the list (tracebacks before; the bomb allocated 8 GB)."""
    solver = Path(tiny_solver(tmp_path, max_iter=2))
    data = tmp_path / "train.h5"
    if damage == "missing":
        data.unlink()
    elif damage == "truncated":
        data.write_bytes(data.read_bytes()[:1500])
    else:
        data.unlink()
        with h5py.File(data, "w") as handle:
            handle.create_dataset("data1", shape=(200000, 1, 100, 100), dtype="f4")
            handle.create_dataset("label", shape=(200000, 1, 100, 100), dtype="f4")
    for argv in (["info", "tiny.prototxt", "--phase", "TRAIN"], ["train", solver.name, "--engine", "torch",
                                                                  "--no-progress"]):
        before = tree(tmp_path)
        room = import_address_space("dynsal.engines.torch") if argv[0] == "train" else 0  # CUDA torch: > 3 GB
        result = run_dynsal(argv, cwd=tmp_path, memory_bytes=room + 2 * LIMIT)  # the bomb asks for 8 GB
        assert result.returncode == 1, result.stderr
        line = result.error_line()
        assert line.startswith(f"dynsal {argv[0]}: error: {data}") and message in line, line
        assert [p for p in changed(before, tree(tmp_path)) if not p.startswith("snap")] == []
