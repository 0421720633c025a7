"""Three aligned LMDBs per split, as the zoo's train_val nets read them.

`<root>/<split>_frames_lmdb`, `<root>/<split>_flows_lmdb`, `<root>/<split>_maps_lmdb`: the same keys
in the same order; each value a serialised Caffe `Datum` (`dynsal.caffe.blobs.array_to_datum`) with
uint8 C×H×W `data`, label 0: frames and flow images 3 channels in **RGB** order (the order the nets
see, see `dynsal.zoo`; Caffe applies (x − mean)·scale per channel and does not reorder), maps 1
channel. Keys are stored as UTF-8 bytes (`key_bytes`; Caffe's Data layer takes them as opaque bytes,
in byte order, which the zero-padded position prefix makes the plan's order). Records are written in
batches; when LMDB's map is full the batch is aborted, the map doubled and the batch written again;
any other LMDB failure (a full disk) is an OSError naming the database, with nothing committed of the
batch.
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Tuple

import lmdb

from dynsal.caffe.blobs import array_to_datum
from dynsal.data.dataset import Sample
from dynsal.data.writer import DatasetWriter
from dynsal.errors import DataError
from dynsal.files import library_os_error

KINDS = ("frames", "flows", "maps")
DEFAULT_MAP_SIZE = 1 << 28
_BATCH = 64
MAX_KEY_BYTES = 511  # LMDB's compile-time key limit (mdb_env_get_maxkeysize), in py-lmdb and Caffe alike


def key_bytes(key: str) -> bytes:
    """A record key as stored: UTF-8 (non-ASCII video names are fine for LMDB and Caffe).

    Raises:
        DataError: the key is longer than LMDB's 511 bytes (a very long video name).
    """
    data = key.encode("utf-8")
    if len(data) > MAX_KEY_BYTES:
        raise DataError(f"record key {key!r} is {len(data)} bytes, LMDB keys hold at most {MAX_KEY_BYTES}; "
                        "shorten the video's name")
    return data


def _open(folder: Path, map_size: int) -> lmdb.Environment:
    """A writable LMDB in `folder`; folder and files get the user's umask (py-lmdb's default mode 0755
    would make the files executable, and its mkdir with a file mode would make the folder untraversable)."""
    folder.mkdir(exist_ok=True)
    return lmdb.open(str(folder), map_size=map_size, subdir=True, mode=0o666)


class LmdbWriter(DatasetWriter):
    """Writes Samples into the three LMDBs of one split inside a staging folder."""

    def __init__(self, staging: Path, split: str, count: int, map_size: int = DEFAULT_MAP_SIZE):
        self.staging, self.split = Path(staging), split
        self.envs = {kind: _open(self.staging / f"{kind}_lmdb", map_size) for kind in KINDS}
        self.pending: List[Tuple[bytes, Tuple[bytes, bytes, bytes]]] = []
        self.shapes: Dict[str, List[int]] = {}

    def put(self, sample: Sample) -> None:
        arrays = (sample.frame, sample.flow, sample.map)
        for kind, array in zip(KINDS, arrays):
            self.shapes.setdefault(kind, list(array.shape))
        values = tuple(array_to_datum(a).SerializeToString() for a in arrays)
        self.pending.append((key_bytes(sample.key), values))
        if len(self.pending) >= _BATCH:
            self.commit()

    def commit(self) -> None:
        """Write the pending records to the three databases, growing the maps as needed."""
        for i, kind in enumerate(KINDS):
            env = self.envs[kind]
            while True:
                try:
                    with env.begin(write=True) as txn:
                        for key, values in self.pending:
                            txn.put(key, values[i])
                    break
                except lmdb.MapFullError:
                    env.set_mapsize(env.info()["map_size"] * 2)
                except lmdb.Error as exc:
                    raise library_os_error(exc, self.staging / f"{kind}_lmdb") from None
        self.pending.clear()

    def close(self) -> None:
        for env in self.envs.values():
            env.close()

    def outputs(self) -> List[Tuple[Path, Path]]:
        root = self.staging.parent
        return [(self.staging / f"{kind}_lmdb", root / f"{self.split}_{kind}_lmdb") for kind in KINDS]

    def describe(self) -> Dict:
        return {"databases": {kind: f"{self.split}_{kind}_lmdb" for kind in KINDS}, "shapes": self.shapes,
                "channel_order": "RGB"}
