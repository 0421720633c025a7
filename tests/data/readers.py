"""Read back what the dataset writers wrote: LMDB records, Datum arrays, HDF5 datasets."""
from __future__ import annotations

from pathlib import Path

import h5py
import lmdb
import numpy as np

from dynsal.caffe.blobs import datum_to_array
from dynsal.caffe.schema import pb


def read_lmdb(path: Path):
    """[(key, value bytes)] of an LMDB in key order (the order Caffe's Data layer reads)."""
    with lmdb.open(str(path), readonly=True, lock=False) as env, env.begin() as txn:
        return [(k.decode(), bytes(v)) for k, v in txn.cursor()]


def arrays(records):
    """The (C, H, W) arrays of serialised Datum values."""
    out = []
    for _, value in records:
        datum = pb.Datum()
        datum.ParseFromString(value)
        out.append(datum_to_array(datum))
    return out


def lmdb_contents(root: Path, split: str = "train"):
    """{frames|flows|maps: [(key, value)]} of one split's three LMDBs."""
    return {kind: read_lmdb(root / f"{split}_{kind}_lmdb") for kind in ("frames", "flows", "maps")}


def lmdb_files(root: Path, split: str = "train"):
    """{frames|flows|maps: data.mdb's bytes} of one split's three LMDBs (sealed: a function of the records)."""
    return {kind: (root / f"{split}_{kind}_lmdb" / "data.mdb").read_bytes() for kind in ("frames", "flows", "maps")}


def hdf5_contents(root: Path, split: str = "train"):
    """{data1|data1_b|label: N×C×H×W} of one split, concatenated in list-file order."""
    files = (root / f"{split}_h5.txt").read_text().split()
    out = {}
    for name in ("data1", "data1_b", "label"):
        out[name] = np.concatenate([h5py.File(f, "r")[name][()] for f in files])
    return out
