"""Caffe's data layers as numpy batch sources, for engines that do not run Caffe itself.

- `Hdf5DataSource` = HDF5DataLayer: `source` lists .h5 files (`dynsal.caffe.hdf5_data`); files are read
  one at a time, rows in order, wrapping from the last file to the first; one dataset per top;
  `shuffle` permutes the file order at each wrap and the rows of each file (seeded here — Caffe's
  own RNG stream cannot be reproduced, so shuffled runs match Caffe in distribution only).
- `LmdbDataSource` = DataLayer with an LMDB backend: records in key order, wrapping around, after
  skipping a random number in [0, rand_skip) of records (Caffe draws it with its own RNG, so only
  rand_skip ≤ 1 is reproducible); each Datum goes through `transform` (DataTransformer::Transform).
- `transform`: crop (TRAIN: uniform offsets, TEST: centre), mirror (when `mirror` is set, a coin
  flip in BOTH phases), value = (pixel − mean) · scale, mean from `mean_file` (full-size, cropped
  with the same offsets) or `mean_value` (one value = every channel).
"""
from __future__ import annotations

import abc
from pathlib import Path
from typing import Dict, Optional

import numpy as np

from dynsal.caffe import hdf5_data
from dynsal.caffe.blobs import datum_to_array
from dynsal.caffe.io import read_mean_file
from dynsal.caffe.schema import pb
from dynsal.errors import DataError


class ShardedSource(abc.ABC):
    """Record-level sharding across data-parallel ranks, as Caffe's multi-GPU data layers do it
    (DataLayer::Skip): rank r of n keeps the records whose running index i has i % n == r, so n ranks
    with batch b together read what one process with batch n·b reads. Unsharded: (0, 1)."""

    rank, world, offset = 0, 1, 0

    def shard(self, rank: int, world: int) -> None:
        self.rank, self.world = rank, world

    @abc.abstractmethod
    def _record(self):
        """Read one record and advance (wrapping around like the Caffe layer)."""

    def _records(self, count: int) -> list:
        """The next `count` records this rank keeps."""
        kept = []
        while len(kept) < count:
            record = self._record()
            if self.offset % self.world == self.rank:
                kept.append(record)
            self.offset += 1
        return kept

    def skip_batches(self, count: int) -> None:
        """Advance as `count` calls of next_batch would (resuming a run at the same data position)."""
        for _ in range(count):
            self._records(self.batch)


class Hdf5DataSource(ShardedSource):
    """Batches {top: float32 (batch, ...)} of an HDF5Data layer."""

    def __init__(self, layer, seed: Optional[int] = None):
        param = layer.hdf5_data_param
        self.tops, self.batch, self.source = list(layer.top), int(param.batch_size), param.source
        self.shuffle, self.rng = param.shuffle, np.random.default_rng(seed)
        if self.batch <= 0:
            raise DataError(f"layer {layer.name!r}: batch_size must be at least 1")
        self.files = hdf5_data.list_files(param.source)
        self.order = list(range(len(self.files)))
        if self.shuffle:
            self.rng.shuffle(self.order)
        self.file_pos, self.row = 0, 0
        self._load()

    def _load(self) -> None:
        self.data = hdf5_data.read_tops(self.files[self.order[self.file_pos]], self.source, self.tops)
        self.rows = len(self.data[self.tops[0]])
        self.perm = np.arange(self.rows)
        if self.shuffle:
            self.rng.shuffle(self.perm)

    def _advance_file(self) -> None:
        self.file_pos += 1
        if self.file_pos == len(self.files):
            self.file_pos = 0
            if self.shuffle:
                self.rng.shuffle(self.order)
        if len(self.files) > 1 or self.shuffle:
            self._load()
        self.row = 0

    def _record(self) -> Dict[str, np.ndarray]:
        if self.row == self.rows:
            self._advance_file()
        index = self.perm[self.row]
        self.row += 1
        return {top: self.data[top][index] for top in self.tops}

    def next_batch(self) -> Dict[str, np.ndarray]:
        records = self._records(self.batch)
        return {top: np.stack([r[top] for r in records]) for top in self.tops}


def transform(array: np.ndarray, param, phase: int, rng: np.random.Generator,
              mean: Optional[np.ndarray] = None) -> np.ndarray:
    """DataTransformer::Transform of one (C, H, W) uint8/float array -> float32 (C, H', W')."""
    channels, height, width = array.shape
    crop = param.crop_size
    h_off = w_off = 0
    if crop:
        if phase == pb.TRAIN:
            h_off, w_off = int(rng.integers(height - crop + 1)), int(rng.integers(width - crop + 1))
        else:
            h_off, w_off = (height - crop) // 2, (width - crop) // 2
        out_h = out_w = crop
    else:
        out_h, out_w = height, width
    values = array[:, h_off:h_off + out_h, w_off:w_off + out_w].astype(np.float32)
    if mean is not None:
        values = values - mean[:, h_off:h_off + out_h, w_off:w_off + out_w]
    elif len(param.mean_value):
        means = np.array(param.mean_value, np.float32)
        if len(means) not in (1, channels):
            raise DataError(f"{len(means)} mean_value entries for {channels} channels")
        values = values - (means if len(means) == channels else np.repeat(means, channels))[:, None, None]
    values = values * np.float32(param.scale)
    if param.mirror and rng.integers(2):
        values = values[:, :, ::-1]
    return np.ascontiguousarray(values)


class LmdbDataSource(ShardedSource):
    """Batches (data, label) of a Data layer reading an LMDB of Datums."""

    def __init__(self, layer, phase: int, seed: Optional[int] = None):
        import lmdb

        param = layer.data_param
        if param.backend != pb.DataParameter.LMDB:
            raise DataError(f"layer {layer.name!r}: only LMDB sources are read here; set backend: LMDB")
        if not Path(param.source).exists():
            raise DataError(f"layer {layer.name!r}: LMDB source {param.source} does not exist")
        self.layer, self.phase, self.batch = layer, phase, int(param.batch_size)
        self.rng = np.random.default_rng(seed)
        self.mean = read_mean_file(layer.transform_param.mean_file) if layer.transform_param.mean_file else None
        self.env = lmdb.open(param.source, readonly=True, lock=False)
        self.txn = self.env.begin()
        self.cursor = self.txn.cursor()
        if not self.cursor.first():
            raise DataError(f"{param.source}: the LMDB is empty")
        for _ in range(int(self.rng.integers(param.rand_skip)) if param.rand_skip else 0):
            self._next()

    def _next(self) -> None:
        if not self.cursor.next():
            self.cursor.first()

    def _record(self):
        datum = pb.Datum.FromString(self.cursor.value())
        self._next()
        return datum

    def next_batch(self) -> Dict[str, np.ndarray]:
        data, labels = [], []
        for datum in self._records(self.batch):
            data.append(transform(datum_to_array(datum), self.layer.transform_param, self.phase, self.rng, self.mean))
            labels.append(float(datum.label))
        batch = {self.layer.top[0]: np.stack(data)}
        if len(self.layer.top) > 1:
            batch[self.layer.top[1]] = np.array(labels, np.float32)
        return batch

    def close(self) -> None:
        self.env.close()


def make_source(layer, phase: int, seed: Optional[int] = None):
    """The batch source for a data layer ("HDF5Data" or "Data")."""
    if layer.type == "HDF5Data":
        return Hdf5DataSource(layer, seed)
    if layer.type == "Data":
        return LmdbDataSource(layer, phase, seed)
    raise DataError(f"layer {layer.name!r}: data layer type {layer.type!r} is not supported here "
                    "(HDF5Data and Data with LMDB are)")
