"""Throughput of `dynsal make-lmdb` / `make-hdf5`: dataset build frames/s with 1 and 2 workers, as JSON.

Synthetic DIEM-like input made in a temporary folder: `--videos` MJPG videos of `--frames` frames
at 360×640 (a panning texture) with 3 viewers' gaze each; built at the nets' 240×320 with DIS flow
and Middlebury flow images (the defaults), from decoding to the final rename. Every build is
from scratch; the LMDB and HDF5 contents of the 1- and 2-worker builds are checked to be equal.

    python benchmarks/dataset.py [--videos 2] [--frames 60] [--backends lmdb,hdf5]
"""
from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dynsal.data.build import build_split  # noqa: E402
from dynsal.data.dataset import DatasetSettings  # noqa: E402
from dynsal.data.hdf5_writer import Hdf5Writer  # noqa: E402
from dynsal.data.lmdb_writer import LmdbWriter  # noqa: E402
from dynsal.data.shards import shard_root  # noqa: E402
from dynsal.data.sources import diem_sources  # noqa: E402
from tests.data.readers import hdf5_contents, lmdb_contents  # noqa: E402
from tests.data.synthetic import panning_video, steady_gaze  # noqa: E402

WRITERS = {"lmdb": LmdbWriter, "hdf5": functools.partial(Hdf5Writer, rows_per_file=100)}


def same(backend: str, a: Path, b: Path) -> bool:
    if backend == "lmdb":
        return lmdb_contents(a) == lmdb_contents(b)
    one, two = hdf5_contents(a), hdf5_contents(b)
    return bool(all((one[k] == two[k]).all() for k in one))


def sharded(backend: str, sources, settings, root: Path, unsharded_seconds: float) -> dict:
    """Shards 0/2 and 1/2 (1 worker each), then the run that puts them together."""
    shard_seconds = []
    for index in range(2):
        start = time.perf_counter()
        build_split("train", sources, shard_root(root, "train", (index, 2)), settings, LmdbWriter, "lmdb",
                    progress=False, shard=(index, 2))
        shard_seconds.append(round(time.perf_counter() - start, 2))
    start = time.perf_counter()
    manifest = build_split("train", sources, root, settings, WRITERS[backend], backend, progress=False)
    merge = time.perf_counter() - start
    wall = max(shard_seconds) + merge
    return {"shard_seconds": shard_seconds, "merge_seconds": round(merge, 2),
            "merge_frames_per_s": round(manifest["count"] / merge, 2), "two_machines_wall_seconds": round(wall, 2),
            "speedup_vs_unsharded_1_worker": round(unsharded_seconds / wall, 2)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=int, default=2)
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--backends", default="lmdb,hdf5")
    args = parser.parse_args(argv)
    results = {}
    with tempfile.TemporaryDirectory(prefix="dynsal-bench-") as tmp:
        tmp = Path(tmp)
        (tmp / "video").mkdir()
        for i in range(args.videos):
            name = f"bench{i}_640x360"
            panning_video(tmp / "video" / f"{name}.avi", args.frames, 360, 640, step=3, seed=i)
            steady_gaze(tmp / "gaze", name, args.frames, (640, 360))
        sources = diem_sources([tmp / "video"], tmp / "gaze")
        settings = DatasetSettings()
        for backend in [b for b in args.backends.split(",") if b]:
            for jobs in (1, 2):
                start = time.perf_counter()
                manifest = build_split("train", sources, tmp / f"{backend}{jobs}", settings, WRITERS[backend],
                                       backend, jobs=jobs, progress=False)
                seconds = time.perf_counter() - start
                results.setdefault(backend, {})[f"workers_{jobs}"] = {
                    "samples": manifest["count"], "seconds": round(seconds, 2),
                    "frames_per_s": round(manifest["count"] / seconds, 2)}
            results[backend]["same_contents_1_and_2_workers"] = same(backend, tmp / f"{backend}1", tmp / f"{backend}2")
            results[backend]["two_shards"] = sharded(backend, sources, settings, tmp / f"{backend}_sharded",
                                                     results[backend]["workers_1"]["seconds"])
            results[backend]["two_shards"]["same_contents_as_unsharded"] = same(backend, tmp / f"{backend}1",
                                                                                tmp / f"{backend}_sharded")
    print(json.dumps({"benchmark": "dataset build", "unit": "frames/s", "input": f"{args.videos} videos × "
                      f"{args.frames} frames, 360x640 MJPG -> 240x320, DIS + middlebury",
                      "cpus": os.cpu_count(), "machine": platform.machine(), "results": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
