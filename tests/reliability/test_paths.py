"""Defect 7: paths with spaces (HDF5 list files) and non-ASCII video names (LMDB keys), checked against what
real Caffe reads."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dynsal.caffe import hdf5_data
from dynsal.data.lmdb_writer import key_bytes
from dynsal.errors import DataError
from tests.data.readers import arrays, read_lmdb
from tests.data.synthetic import panning_video, steady_gaze
from tests.reliability.faults import changed, run_dynsal, tree


def _inputs(tmp_path: Path, name: str = "a_64x48"):
    folder = tmp_path / "inputs"
    (folder / "video").mkdir(parents=True)
    panning_video(folder / "video" / f"{name}.avi", 4, 48, 64)
    steady_gaze(folder / "gaze", name, 4, (64, 48))
    return ["--videos", str(folder / "video"), "--gaze", str(folder / "gaze"), "--resize", "fixed:24x32", "--sigma",
            "5px", "--no-progress"]


def test_caffe_splits_hdf5_list_lines_at_whitespace(oracle, workdir):
    """The fact dynsal follows: Caffe's HDF5Data reads `a b/x.h5` as two file names (`source >> line`), so a
    list cannot name a path with a space — and dynsal's reader splits the same way."""
    code = r'''
import os, h5py, numpy as np, caffe
os.makedirs("a b", exist_ok=True)
with h5py.File("a b/x.h5", "w") as f:
    f["data"] = np.arange(6, dtype=np.float32).reshape(6, 1)
open("list.txt", "w").write(os.path.abspath("a b/x.h5") + "\n")
open("net.prototxt", "w").write('layer { name: "d" type: "HDF5Data" top: "data" '
                                'hdf5_data_param { source: "list.txt" batch_size: 2 } }')
caffe.Net("net.prototxt", caffe.TEST)
'''
    result = oracle.python(code, workdir, check=False, env={"GLOG_minloglevel": "0"})
    assert result.returncode != 0
    assert "Number of HDF5 files: 2" in result.stderr
    assert f"Failed opening HDF5 file: {workdir.inside('a')}" in result.stderr
    assert hdf5_data.list_files(str(workdir.host / "list.txt")) == [workdir.inside("a"), "b/x.h5"]


@pytest.mark.parametrize("where", ["output", "list-root"])
def test_make_hdf5_refuses_a_list_root_with_spaces(tmp_path, where):
    """make-hdf5 under a folder with spaces wrote a list that dynsal and Caffe both split (then `dynsal info
    net.prototxt --phase TRAIN` ended in a traceback): refused before anything is written."""
    args = _inputs(tmp_path)
    out = tmp_path / ("my data" if where == "output" else "data")
    extra = ["--list-root", "/srv/my data"] if where == "list-root" else []
    before = tree(tmp_path)
    result = run_dynsal(["make-hdf5", *args, "-o", out, *extra])
    assert result.returncode == 1
    root = str(out.resolve()) if where == "output" else "/srv/my data"
    assert result.error_line() == (f"dynsal make-hdf5: error: {root!r}: Caffe's HDF5Data reads its list file split at "
                                   "whitespace, so a path with a space cannot be listed; give --list-root a path "
                                   "without spaces (e.g. a symlink to it)")
    assert changed(before, tree(tmp_path)) == []


def test_a_folder_with_spaces_works_with_a_list_root_without(tmp_path):
    (tmp_path / "link").symlink_to(tmp_path / "my data", target_is_directory=True)
    (tmp_path / "my data").mkdir()
    result = run_dynsal(["make-hdf5", *_inputs(tmp_path), "-o", tmp_path / "my data", "--list-root",
                         tmp_path / "link"])
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "my data" / "train_h5.txt").read_text().split() == [
        f"{tmp_path / 'link'}/train_h5/train_00000.h5"]


def test_a_list_naming_a_path_with_a_space_is_one_line(tmp_path):
    """A list written elsewhere with such a path: `dynsal info --phase TRAIN` names the first half as missing."""
    (tmp_path / "list.txt").write_text(f"{tmp_path}/my data/x.h5\n")
    (tmp_path / "net.prototxt").write_text('layer { name: "d" type: "HDF5Data" top: "data" '
                                           'hdf5_data_param { source: "list.txt" batch_size: 2 } }')
    result = run_dynsal(["info", "net.prototxt", "--phase", "TRAIN"], cwd=tmp_path)
    assert result.returncode == 1
    assert result.error_line() == f"dynsal info: error: {tmp_path}/my (listed in list.txt): no such file"


NON_ASCII = "café_Ünïcode_日本_64x48"


def test_non_ascii_video_names_make_utf8_keys_caffe_reads(tmp_path, oracle, workdir):
    """make-lmdb with a non-ASCII video name ended in `UnicodeEncodeError: 'ascii' codec`. Keys are UTF-8 now,
    and Caffe's Data layer reads the LMDB in key order, exactly as written."""
    args = _inputs(tmp_path, NON_ASCII)
    data = workdir.host / "data"
    result = run_dynsal(["make-lmdb", *args, "-o", data, "--no-shuffle"])
    assert result.returncode == 0, result.stderr
    records = read_lmdb(data / "train_frames_lmdb")
    assert [key for key, _ in records] == [f"{i:08d}_{NON_ASCII}_{i:06d}" for i in range(4)]
    (workdir.host / "net.prototxt").write_text(
        f'layer {{ name: "d" type: "Data" top: "data" data_param {{ source: "{workdir.inside("data")}/'
        'train_frames_lmdb" backend: LMDB batch_size: 4 } }')
    code = """
import caffe, numpy as np
net = caffe.Net("net.prototxt", caffe.TEST)
net.forward()
np.save("batch.npy", net.blobs["data"].data)
"""
    oracle.python(code, workdir)
    batch = np.load(workdir.host / "batch.npy")
    assert np.array_equal(batch, np.stack(arrays(records)).astype(np.float32))


def test_lmdb_keys_longer_than_lmdb_allows_are_one_line():
    assert key_bytes("0" * 511) == b"0" * 511
    with pytest.raises(DataError, match="is 512 bytes, LMDB keys hold at most 511; shorten the video's name"):
        key_bytes("é" * 256)
