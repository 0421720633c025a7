"""Three aligned LMDBs per split, as the zoo's train_val nets read them.

`<root>/<split>_frames_lmdb`, `<root>/<split>_flows_lmdb`, `<root>/<split>_maps_lmdb`: the same keys
in the same order; each value a serialised Caffe `Datum` (`dynsal.caffe.blobs.array_to_datum`) with
uint8 C×H×W `data`, label 0: frames and flow images 3 channels in **RGB** order (the order the nets
see, see `dynsal.zoo`; Caffe applies (x − mean)·scale per channel and does not reorder), maps 1
channel. Records are written in batches; when LMDB's map is full the batch is aborted, the map
doubled and the batch written again.
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Tuple

import lmdb

from dynsal.caffe.blobs import array_to_datum
from dynsal.data.dataset import Sample

KINDS = ("frames", "flows", "maps")
DEFAULT_MAP_SIZE = 1 << 28
_BATCH = 64


class LmdbWriter:
    """Writes Samples into the three LMDBs of one split inside a staging folder."""

    def __init__(self, staging: Path, split: str, count: int, map_size: int = DEFAULT_MAP_SIZE):
        self.staging, self.split = Path(staging), split
        self.envs = {kind: lmdb.open(str(self.staging / f"{kind}_lmdb"), map_size=map_size, subdir=True)
                     for kind in KINDS}
        self.pending: List[Tuple[bytes, Tuple[bytes, bytes, bytes]]] = []
        self.shapes: Dict[str, List[int]] = {}

    def put(self, sample: Sample) -> None:
        arrays = (sample.frame, sample.flow, sample.map)
        for kind, array in zip(KINDS, arrays):
            self.shapes.setdefault(kind, list(array.shape))
        values = tuple(array_to_datum(a).SerializeToString() for a in arrays)
        self.pending.append((sample.key.encode("ascii"), values))
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
