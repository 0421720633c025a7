"""Build Caffe training sets as HDF5 files (data1, data1_b, label; float32, preprocessed) + list files.

Same inputs and options as `dynsal make-lmdb`; writes OUT/<split>_h5/*.h5, OUT/<split>_h5.txt and
OUT/<split>_hdf5_manifest.json, the files the zoo's train_val_hdf5 nets read. The values equal what
Caffe's Data layers make of the LMDB variant (mean and scale of dynsal.zoo).

examples:
  dynsal make-hdf5 --videos DIEM/video --gaze DIEM/event_data --split-preset diem -o data
  dynsal make-hdf5 --layout UCF-Sports -o data --list-root /data/ucf --rows-per-file 500
"""
from __future__ import annotations

import argparse
import functools

from dynsal.commands import make_lmdb
from dynsal.data.hdf5_writer import Hdf5Writer


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `dynsal make-lmdb` plus the HDF5 file layout."""
    make_lmdb.add_arguments(parser)
    group = parser.add_argument_group("HDF5 files")
    group.add_argument("--rows-per-file", type=int, default=1000, help="samples per .h5 file (default 1000)")
    group.add_argument("--list-root", help="folder the list file names the .h5 files under (default: OUT, "
                       "absolute); give the path the dataset will have where Caffe runs")
    group.add_argument("--data1", choices=("frame", "flow"), default="frame",
                       help="what data1 holds: frames (default) or flow images (for TSNet)")


def run(args: argparse.Namespace) -> int:
    writer = functools.partial(Hdf5Writer, rows_per_file=args.rows_per_file, list_root=args.list_root,
                               data1=args.data1)
    return make_lmdb.build(args, "hdf5", writer)
