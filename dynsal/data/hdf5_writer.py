"""HDF5 training sets: `data1`, `data1_b`, `label` float32 N×C×H×W, chunked files + a list file.

The values are what Caffe's Data layers give the LMDB variant after their transform (the zoo's
constants): data1/data1_b = (x − FRAME_MEAN[c])·INPUT_SCALE, label = (map − MAP_MEAN)·MAP_SCALE,
computed in float32 from the same uint8 RGB samples. `data1` holds frames (or, for TSNet, flow
images: `data1="flow"`), `data1_b` flow images. Files `<root>/<split>_h5/<split>_NNNNN.h5` hold
`rows_per_file` samples each, in key order (HDF5Data reads files in list order and rows in order),
chunked one sample per chunk; `<root>/<split>_h5.txt` lists them under `list_root` (default: the
absolute path of `<root>`; give the path the files will have where Caffe runs).
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Optional, Tuple

import h5py
import numpy as np

from dynsal.caffe.hdf5_data import check_listable
from dynsal.data.dataset import Sample
from dynsal.data.preprocess import preprocess_input, preprocess_map
from dynsal.data.writer import DatasetWriter
from dynsal.errors import DataError
from dynsal.files import library_os_error, sync_file, write_atomic
from dynsal.zoo import FRAME_MEAN, INPUT_SCALE, MAP_MEAN, MAP_SCALE

DEFAULT_ROWS = 1000
DATASETS = ("data1", "data1_b", "label")


class Hdf5Writer(DatasetWriter):
    """Writes Samples into preallocated HDF5 files of one split inside a staging folder."""

    def __init__(self, staging: Path, split: str, count: int, rows_per_file: int = DEFAULT_ROWS,
                 list_root: Optional[str] = None, data1: str = "frame"):
        if data1 not in ("frame", "flow"):
            raise DataError(f"data1 holds frame or flow images, not {data1!r}")
        if rows_per_file < 1:
            raise DataError(f"rows per file must be ≥ 1, got {rows_per_file}")
        self.staging, self.split, self.count = Path(staging), split, count
        self.rows, self.data1 = rows_per_file, data1
        self.list_root = list_root or str(self.staging.parent.resolve())
        check_listable(self.list_root)
        self.folder = self.staging / "h5"
        self.folder.mkdir(parents=True, exist_ok=True)
        self.files: Dict[int, h5py.File] = {}
        self.datasets: Dict[int, Dict[str, h5py.Dataset]] = {}
        self.lost: List[int] = []
        for index in range(self.file_count):
            path = self._path(index)
            if path.exists():
                try:
                    h5py.File(path, "r").close()
                except OSError:  # torn by the interruption: its rows are redone
                    path.unlink()
                    self.lost.append(index)

    @property
    def file_count(self) -> int:
        return -(-self.count // self.rows)

    def _path(self, index: int) -> Path:
        return self.folder / f"{self.split}_{index:05d}.h5"

    def damaged_videos(self, plan, sources) -> List[str]:
        """Videos with rows in a file that was unreadable on resume (to be written again)."""
        return sorted({sources[i.video].name for i in plan if i.position // self.rows in self.lost})

    def _datasets(self, index: int, sample: Sample) -> Dict[str, h5py.Dataset]:
        """The open datasets of file `index` (created at the sample's shapes). No chunk cache: a failed
        write (full disk) raises in `put`, instead of in HDF5's clean-up at garbage collection."""
        if index not in self.files:
            path = self._path(index)
            handle = h5py.File(path, "a", rdcc_nbytes=0)
            self.files[index] = handle
            rows = min(self.rows, self.count - index * self.rows)
            for name, array in self._arrays(sample).items():
                if name not in handle:
                    handle.create_dataset(name, shape=(rows,) + array.shape, dtype=np.float32,
                                          chunks=(1,) + array.shape)
            self.datasets[index] = {name: handle[name] for name in DATASETS}
        return self.datasets[index]

    def _arrays(self, sample: Sample) -> Dict[str, np.ndarray]:
        first = sample.frame if self.data1 == "frame" else sample.flow
        return {"data1": preprocess_input(first), "data1_b": preprocess_input(sample.flow),
                "label": preprocess_map(sample.map)}

    def put(self, sample: Sample) -> None:
        index, row = divmod(sample.position, self.rows)
        try:
            datasets = self._datasets(index, sample)
            for name, array in self._arrays(sample).items():
                if datasets[name].shape[1:] != array.shape:
                    raise DataError(f"sample {sample.key}: {name} has shape {array.shape} but the file holds "
                                    f"{datasets[name].shape[1:]}; HDF5 sets need one frame size (use --resize fixed)")
                datasets[name][row] = array
        except (OSError, RuntimeError) as exc:
            raise library_os_error(exc, self._path(index)) from None

    def commit(self) -> None:
        """Flush every open file to the disk (a write error is raised here, naming the file)."""
        for index, handle in self.files.items():
            try:
                handle.flush()
                sync_file(self._path(index))
            except (OSError, RuntimeError) as exc:
                raise library_os_error(exc, self._path(index)) from None

    def close(self) -> None:
        """Close every open file; the first error is raised after all were closed."""
        error = None
        for index, handle in self.files.items():
            try:
                handle.close()
            except (OSError, RuntimeError) as exc:
                error = error or library_os_error(exc, self._path(index))
        self.files.clear()
        self.datasets.clear()
        if error is not None:
            raise error

    def finish(self) -> None:
        """Once every video is in and the files are closed: the list file HDF5Data reads, every file of the
        split under `list_root`, in order."""
        names = [self._path(i).name for i in range(self.file_count)]
        listing = "".join(f"{self.list_root}/{self.split}_h5/{name}\n" for name in names)
        write_atomic(self.staging / f"{self.split}_h5.txt", listing.encode())

    def outputs(self) -> List[Tuple[Path, Path]]:
        root = self.staging.parent
        return [(self.folder, root / f"{self.split}_h5"),
                (self.staging / f"{self.split}_h5.txt", root / f"{self.split}_h5.txt")]

    def describe(self) -> Dict:
        return {"list_file": f"{self.split}_h5.txt", "files": self.file_count, "rows_per_file": self.rows,
                "data1": self.data1, "preprocessing": {"frame_mean": list(FRAME_MEAN), "input_scale": INPUT_SCALE,
                                                       "map_mean": MAP_MEAN, "map_scale": MAP_SCALE}}
