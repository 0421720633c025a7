"""Tiny Caffe datasets and nets for oracle tests: aligned LMDBs of Datums, HDF5 files with a list file."""
from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from dynsal.caffe.blobs import array_to_datum


def write_lmdb(path: Path, arrays) -> None:
    """One Datum per (C, H, W) uint8 array, keys 00000000, 00000001, ..."""
    import lmdb  # here: the GPU machines' Python has no lmdb, and their tests use only HDF5 data

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


TINY_TRAIN_NET = """
name: "tiny"
layer { name: "data" type: "HDF5Data" top: "data1" top: "label"
        hdf5_data_param { source: "train_h5.txt" batch_size: 2 } }
layer { name: "conv1" type: "Convolution" bottom: "data1" top: "conv1"
        param { lr_mult: 1 decay_mult: 1 } param { lr_mult: 2 decay_mult: 0 }
        convolution_param { num_output: 4 kernel_size: 3 pad: 1
                            weight_filler { type: "xavier" } bias_filler { type: "constant" value: 0.1 } } }
layer { name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1" }
layer { name: "conv2" type: "Convolution" bottom: "conv1" top: "conv2"
        convolution_param { num_output: 1 kernel_size: 3 pad: 1 weight_filler { type: "gaussian" std: 0.1 } } }
layer { name: "loss" type: "EuclideanLoss" bottom: "conv2" bottom: "label" top: "loss" }
"""


def write_tiny_training_set(workdir, seed: int = 3) -> None:
    """`tiny.prototxt` (TINY_TRAIN_NET) and its HDF5 data (4 samples) in an oracle work folder."""
    rng = np.random.default_rng(seed)
    with h5py.File(workdir.host / "train.h5", "w") as handle:
        handle["data1"] = rng.standard_normal((4, 3, 8, 10)).astype(np.float32)
        handle["label"] = rng.standard_normal((4, 1, 8, 10)).astype(np.float32)
    (workdir.host / "train_h5.txt").write_text(workdir.inside("train.h5") + "\n")
    (workdir.host / "tiny.prototxt").write_text(TINY_TRAIN_NET)
