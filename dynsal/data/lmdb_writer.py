"""Three aligned LMDBs per split, as the zoo's train_val nets read them.

`<root>/<split>_frames_lmdb`, `<root>/<split>_flows_lmdb`, `<root>/<split>_maps_lmdb`: the same keys
in the same order; each value a serialised Caffe `Datum` (`dynsal.caffe.blobs.array_to_datum`) with
uint8 C×H×W `data`, label 0: frames and flow images 3 channels in **RGB** order (the order the nets
see, see `dynsal.zoo`; Caffe applies (x − mean)·scale per channel and does not reorder), maps 1
channel. Keys are stored as UTF-8 bytes (`key_bytes`; Caffe's Data layer takes them as opaque bytes,
in byte order, which the zero-padded position prefix makes the plan's order). Records are written in
batches; when LMDB's map is full the batch is aborted, the map doubled and the batch written again;
any other LMDB failure (a full disk) is an OSError naming the database, with nothing committed of the
batch. When every video is in, `LmdbWriter.finish` seals each database: its records written afresh in key
order into a new LMDB, so that the same records give the same data.mdb, byte for byte, however they were
batched, interrupted or sharded.
"""
from __future__ import annotations

import os
import shutil
from itertools import islice
from pathlib import Path
from typing import Dict, List, Tuple

import lmdb

from dynsal.caffe.blobs import array_to_datum
from dynsal.data.dataset import Sample
from dynsal.data.writer import DatasetWriter
from dynsal.errors import DataError
from dynsal.files import library_os_error, sync_folder

KINDS = ("frames", "flows", "maps")
DEFAULT_MAP_SIZE = 1 << 28
_BATCH = 64
_SEAL_BATCH = 1024
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


def sealed_map_size(env: lmdb.Environment) -> int:
    """The map size a seal gives a database: a function of its records alone (it is stored in data.mdb's meta
    pages). Twice the pages the records fill (each key + value + LMDB's node header rounded up to 4 KiB
    pages, as large values take overflow pages of their own), as a power of two of at least
    `DEFAULT_MAP_SIZE`: room for the tree's branch pages, and address space, not disk (data.mdb grows with
    its pages), small enough for a process under a virtual-memory limit."""
    with env.begin(buffers=True) as txn:  # each value's length read in place, not copied
        pages = sum(-(-(len(key) + len(value) + 16) // 4096) for key, value in txn.cursor())
    size = DEFAULT_MAP_SIZE
    while size < 2 * 4096 * pages:
        size *= 2
    return size


def seal_copy(source: Path, target: Path) -> None:
    """Write the records of the LMDB `source` into a new LMDB `target`: in key order, appended (MDB_APPEND),
    committed every 1,024 records, with `sealed_map_size`, flushed to the disk once at the end.

    LMDB's data.mdb records the history of the transactions that wrote it (pages copied on write, freed pages
    reused with their old bytes in the unused tail, the map size in the meta pages), so two builds of the same
    records in different batches differ in bytes. Written this way the file depends on the records alone.

    Raises:
        OSError: reading `source` or writing `target` failed (a full disk), naming the database.
    """
    target.mkdir()
    try:
        with lmdb.open(str(source), readonly=True, lock=False, subdir=True) as old, \
                old.begin(buffers=True) as reading, \
                lmdb.open(str(target), map_size=sealed_map_size(old), subdir=True, mode=0o666, sync=False) as new:
            records = reading.cursor().iternext()  # memoryviews into the source's map, valid while `reading` is
            while True:
                batch = list(islice(records, _SEAL_BATCH))
                with new.begin(write=True) as txn:
                    txn.cursor().putmulti(batch, append=True)
                if len(batch) < _SEAL_BATCH:
                    break
            new.sync(True)  # once, at the end: the copy is only used once it is whole
    except lmdb.Error as exc:
        raise library_os_error(exc, target) from None
    sync_folder(target)


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

    def finish(self) -> None:
        """Seal each database once every video is in and the writer is closed (`seal_copy`, into
        `<kind>_lmdb.sealed` of the staging folder), then drop its working copy. Resumable: a sealed database
        is kept, a part-sealed one is sealed again."""
        for kind in KINDS:
            work, sealed = self.staging / f"{kind}_lmdb", self._sealed(kind)
            if sealed.exists():
                continue
            part = sealed.with_name(sealed.name + ".part")
            if part.exists():
                shutil.rmtree(part)  # an interrupted seal's
            seal_copy(work, part)
            os.replace(part, sealed)
            sync_folder(self.staging)
            shutil.rmtree(work)

    def _sealed(self, kind: str) -> Path:
        return self.staging / f"{kind}_lmdb.sealed"

    def outputs(self) -> List[Tuple[Path, Path]]:
        root = self.staging.parent
        return [(self._sealed(kind), root / f"{self.split}_{kind}_lmdb") for kind in KINDS]

    def describe(self) -> Dict:
        return {"databases": {kind: f"{self.split}_{kind}_lmdb" for kind in KINDS}, "shapes": self.shapes,
                "channel_order": "RGB"}
