"""Tiny Caffe datasets for oracle tests: aligned LMDBs of Datums and HDF5 files with a list file."""
from __future__ import annotations

from pathlib import Path

import h5py
import lmdb
import numpy as np

from dynsal.caffe.blobs import array_to_datum


def write_lmdb(path: Path, arrays) -> None:
    """One Datum per (C, H, W) uint8 array, keys 00000000, 00000001, ..."""
    with lmdb.open(str(path), map_size=1 << 26) as env, env.begin(write=True) as txn:
        for i, array in enumerate(arrays):
            txn.put(f"{i:08d}".encode(), array_to_datum(array).SerializeToString())


def write_zoo_lmdbs(root: Path, height: int, width: int, count: int = 3, seed: int = 0) -> None:
    """train/val frames, flows and maps LMDBs as the zoo's train_val nets name them."""
    rng = np.random.default_rng(seed)
    for split in ("train", "val"):
        for kind, channels in (("frames", 3), ("flows", 3), ("maps", 1)):
            arrays = [rng.integers(0, 256, (channels, height, width), dtype=np.uint8) for _ in range(count)]
            write_lmdb(root / f"{split}_{kind}_lmdb", arrays)


def write_zoo_hdf5(root: Path, list_root: str, height: int, width: int, count: int = 3, seed: int = 0) -> None:
    """train/val HDF5 files (data1, data1_b, label float32) and list files naming them under `list_root`."""
    rng = np.random.default_rng(seed)
    for split in ("train", "val"):
        with h5py.File(root / f"{split}.h5", "w") as handle:
            for name, channels in (("data1", 3), ("data1_b", 3), ("label", 1)):
                handle[name] = rng.standard_normal((count, channels, height, width)).astype(np.float32)
        (root / f"{split}_h5.txt").write_text(f"{list_root}/{split}.h5\n")
