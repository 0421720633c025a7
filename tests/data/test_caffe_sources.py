"""Caffe's data layers as numpy sources: order, wrap-around, transform (the oracle test compares
them with Caffe's own layers)."""
from __future__ import annotations

import h5py
import numpy as np
import pytest
from google.protobuf import text_format

from dynsal.caffe.schema import pb
from dynsal.data.caffe_sources import Hdf5DataSource, LmdbDataSource, make_source, transform
from dynsal.errors import DataError
from tests.oracle.datasets import write_lmdb


def layer(text):
    return text_format.Parse(text, pb.LayerParameter())


def test_hdf5_rows_in_order_across_files_and_wrap(tmp_path):
    for i, rows in enumerate((3, 2)):
        with h5py.File(tmp_path / f"{i}.h5", "w") as handle:
            handle["x"] = np.arange(rows, dtype=np.float32)[:, None] + 10 * i
    (tmp_path / "list.txt").write_text(f"{tmp_path / '0.h5'}\n{tmp_path / '1.h5'}\n")
    source = Hdf5DataSource(layer(f'name: "d" type: "HDF5Data" top: "x" '
                                  f'hdf5_data_param {{ source: "{tmp_path / "list.txt"}" batch_size: 4 }}'))
    assert source.next_batch()["x"].ravel().tolist() == [0, 1, 2, 10]
    assert source.next_batch()["x"].ravel().tolist() == [11, 0, 1, 2]


def test_transform_test_phase_centre_crop_mean_scale():
    image = np.arange(2 * 5 * 6, dtype=np.uint8).reshape(2, 5, 6)
    param = text_format.Parse("crop_size: 3 mean_value: 1 mean_value: 2 scale: 0.5", pb.TransformationParameter())
    out = transform(image, param, pb.TEST, np.random.default_rng(0))
    expected = (image[:, 1:4, 1:4].astype(np.float32) - np.array([1, 2], np.float32)[:, None, None]) * 0.5
    np.testing.assert_array_equal(out, expected)


def test_transform_mirror_flips_columns():
    image = np.arange(4, dtype=np.uint8).reshape(1, 1, 4)
    param = pb.TransformationParameter(mirror=True)
    outs = {tuple(transform(image, param, pb.TRAIN, np.random.default_rng(s)).ravel()) for s in range(20)}
    assert outs == {(0, 1, 2, 3), (3, 2, 1, 0)}


def test_lmdb_source_batches_and_labels(tmp_path):
    arrays = [np.full((1, 2, 2), i, np.uint8) for i in range(3)]
    write_lmdb(tmp_path / "db", arrays)
    source = LmdbDataSource(layer(f'name: "d" type: "Data" top: "data" top: "label" '
                                  f'data_param {{ source: "{tmp_path / "db"}" batch_size: 2 backend: LMDB }}'), pb.TEST)
    first, second = source.next_batch(), source.next_batch()
    assert first["data"][:, 0, 0, 0].tolist() == [0, 1] and second["data"][:, 0, 0, 0].tolist() == [2, 0]
    assert first["label"].shape == (2,)


def test_unsupported_sources_are_clear():
    with pytest.raises(DataError, match="only LMDB"):
        make_source(layer('name: "d" type: "Data" top: "x" data_param { source: "x" batch_size: 1 }'), pb.TRAIN)
    with pytest.raises(DataError, match="'ImageData' is not supported"):
        make_source(layer('name: "d" type: "ImageData" top: "x"'), pb.TRAIN)
