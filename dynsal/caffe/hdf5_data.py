"""The inputs of Caffe's HDF5Data layer: a list file naming `.h5` files, and those files.

Caffe facts reproduced (hdf5_data_layer.cpp, checked in real Caffe):
- the list file (`hdf5_data_param.source`) is read with `std::ifstream >> line`, i.e. split at any
  whitespace: a path holding a space is read as two file names, so such paths cannot be listed
  (`check_listable` refuses them when a list is written);
- every file holds one dataset per top, float or integer, at least 1-D, all with the same number of
  rows (the first axis). Each dataset is checked before it is read (`dynsal.caffe.hdf5.checked_dataset`).
A missing, unreadable or truncated file is one error naming it and the list that names it.
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import numpy as np

from dynsal.caffe.hdf5 import checked_dataset, open_file
from dynsal.errors import FormatError


def list_files(source: str) -> List[str]:
    """The .h5 paths listed in an HDF5Data source file, split at whitespace as Caffe reads them.

    Raises:
        FormatError: the list file cannot be read, is not text, or lists no files.
    """
    try:
        files = Path(source).read_bytes().decode("utf-8").split()
    except OSError as exc:
        raise FormatError(f"{source}: cannot read the HDF5 list file ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise FormatError(f"{source}: not a text list of HDF5 files (binary content)") from None
    if not files:
        raise FormatError(f"{source}: lists no HDF5 files")
    return files


def check_listable(path: str) -> None:
    """Refuse a path a list file cannot hold (Caffe splits list lines at whitespace).

    Raises:
        FormatError: the path holds whitespace.
    """
    if len(path.split()) != 1 or path != path.strip():
        raise FormatError(f"{path!r}: Caffe's HDF5Data reads its list file split at whitespace, so a path with a "
                          "space cannot be listed; give --list-root a path without spaces (e.g. a symlink to it)")


def _datasets(handle, path: str, source: str, tops: Sequence[str]) -> Dict:
    missing = [top for top in tops if top not in handle]
    if missing:
        raise FormatError(f"{path} (listed in {source}): no dataset named {missing[0]!r} (one per top: "
                          f"{', '.join(tops)})")
    datasets = {top: checked_dataset(handle[top], path) for top in tops}
    rows = {top: dataset.shape[0] if dataset.ndim else None for top, dataset in datasets.items()}
    if None in rows.values() or len(set(rows.values())) != 1:
        raise FormatError(f"{path} (listed in {source}): datasets {', '.join(tops)} need at least one axis and the "
                          f"same number of rows, found shapes {[datasets[t].shape for t in tops]}")
    return datasets


def top_shapes(path: str, source: str, tops: Sequence[str]) -> Dict[str, Tuple[int, ...]]:
    """{top: dataset shape} of one listed file, without reading its data."""
    with open_file(path, "file", f"{path} (listed in {source})") as handle:
        return {top: tuple(dataset.shape) for top, dataset in _datasets(handle, path, source, tops).items()}


def read_tops(path: str, source: str, tops: Sequence[str]) -> Dict[str, np.ndarray]:
    """{top: float32 array} of one listed file (HDF5DataLayer::LoadHDF5FileData)."""
    with open_file(path, "file", f"{path} (listed in {source})") as handle:
        datasets = _datasets(handle, path, source, tops)
        try:
            return {top: np.asarray(dataset[()], dtype=np.float32) for top, dataset in datasets.items()}
        except OSError as exc:
            raise FormatError(f"{path} (listed in {source}): cannot read its data ({exc}); the file is truncated "
                              "or corrupt, write it again") from None
