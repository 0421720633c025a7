"""One split built in n parts (`--shard i/n`) on several machines, then put together.

Shard i of n computes the samples (decoding, flow, maps, augmentation: the slow part) of the
split's videos assigned to it and stores them as three LMDBs of uint8 samples under the split's
own keys (`LmdbWriter`), with a manifest, in `<root>/shards/<split>_<i>of<n>/`. The shards are
backend-neutral: the same ones feed `make-lmdb` and `make-hdf5`.

The plan (order, keys) is the whole split's, so every shard gives its samples their final keys.
A build of the whole split (no `--shard`) then takes each video held by a finished shard of the
same inputs and settings from that shard instead of computing it, and writes exactly what an
unsharded build writes, record for record; videos no finished shard holds are computed there.
Shards are left in place: delete `<root>/shards` once the dataset is built.

Assignment: videos are balanced by sample count (`dynsal.sharding.balance`: largest first onto the
shard with the fewest samples so far), so shards get similar work whatever the videos' lengths.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Dict, Iterator, List, Sequence, Tuple

from dynsal.caffe.blobs import datum_to_array
from dynsal.data import dataset as D
from dynsal.errors import DataError, warn
from dynsal.sharding import balance

SHARD_BACKEND = "lmdb"
_SHARD_FOLDER = re.compile(r"^(?P<split>.+)_(?P<index>\d+)of(?P<count>\d+)$")


def shards_folder(root) -> Path:
    return Path(root) / "shards"


def shard_root(root, split: str, shard: Tuple[int, int]) -> Path:
    """Where shard (i, n) of a split is built: `<root>/shards/<split>_<i>of<n>`."""
    return shards_folder(root) / f"{split}_{shard[0]}of{shard[1]}"


def assign_videos(plan: Sequence[D.PlanItem], video_count: int, shards: int) -> List[int]:
    """The shard of every video, balanced by sample count (`dynsal.sharding.balance`)."""
    counts = [0] * video_count
    for item in plan:
        counts[item.video] += 1
    return balance(counts, shards)


def same_plan(manifest: Dict, state: Dict) -> bool:
    """Whether a shard's manifest was built from the inputs and settings of the build `state`."""
    return (manifest.get("split") == state["split"] and manifest.get("settings") == state["settings"]
            and manifest.get("sources") == state["sources"] and manifest.get("flow_files") == state["flow_files"]
            and manifest.get("split_count") == state["count"])


class ShardReader:
    """The samples one finished shard holds, read back by key from its three LMDBs."""

    def __init__(self, folder: Path, split: str, manifest: Dict):
        import lmdb

        from dynsal.data.lmdb_writer import KINDS

        self.folder, self.videos = folder, set(manifest["videos"])
        self.shard = tuple(manifest.get("shard") or ())
        self.envs = [lmdb.open(str(folder / f"{split}_{kind}_lmdb"), readonly=True, lock=False) for kind in KINDS]

    def samples(self, source: D.VideoSource, items: Sequence[D.PlanItem], variants) -> Iterator[D.Sample]:
        from dynsal.caffe.schema import pb
        from dynsal.data.lmdb_writer import key_bytes

        txns = [env.begin() for env in self.envs]
        for item in items:
            key = D.sample_key(item.position, source.name, item.frame, variants[item.variant])
            arrays = []
            for txn in txns:
                value = txn.get(key_bytes(key))
                if value is None:
                    raise DataError(f"{self.folder}: the shard lacks record {key}; delete the shard and build it again")
                datum = pb.Datum()
                datum.ParseFromString(bytes(value))
                arrays.append(datum_to_array(datum))
            yield D.Sample(item.position, key, *arrays)

    def close(self) -> None:
        for env in self.envs:
            env.close()


def finished_shards(root, state: Dict) -> Dict[str, ShardReader]:
    """{video name: reader} for every video held by a finished shard of the build `state`'s plan.

    Shards of the split built from other inputs or settings are named on stderr and not used.
    """
    folder, split = shards_folder(root), state["split"]
    readers: Dict[str, ShardReader] = {}
    if not folder.is_dir():
        return readers
    for path in sorted(folder.iterdir()):
        match = _SHARD_FOLDER.match(path.name)
        if not match or match["split"] != split:
            continue
        manifest_file = path / f"{split}_{SHARD_BACKEND}_manifest.json"
        if not manifest_file.exists():
            warn(f"{path}: shard not finished; its videos are computed here")
            continue
        manifest = json.loads(manifest_file.read_text())
        if not same_plan(manifest, state):
            warn(f"{path}: shard built from other inputs or settings; not used")
            continue
        if set(manifest["videos"]) - readers.keys():
            reader = ShardReader(path, split, manifest)
            readers.update({name: reader for name in reader.videos if name not in readers})
    return readers


def check_all_held(readers: Dict[str, ShardReader], videos: Sequence[str], done: Sequence[str]) -> None:
    """`--merge-only`: every video still to write must be held by a finished shard.

    Raises:
        DataError: naming the videos no finished shard holds, and the shards of the finished shards' count
            that are not finished (what to resubmit: `sbatch --array=<i> ...`).
    """
    missing = [name for name in videos if name not in readers and name not in done]
    if missing:
        shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        unfinished = _unfinished_shards({reader.shard for reader in readers.values() if len(reader.shard) == 2})
        raise DataError(f"--merge-only: no finished shard holds {shown}"
                        + (f" (not finished: shard {', '.join(unfinished)})" if unfinished else "")
                        + "; finish those shards (or run without --merge-only to compute them here)")


def _unfinished_shards(finished) -> List[str]:
    """`i of n` for every shard i < n not among the finished (i, n) shards."""
    return [f"{i} of {n}" for n in sorted({n for _, n in finished}) for i in range(n) if (i, n) not in finished]
