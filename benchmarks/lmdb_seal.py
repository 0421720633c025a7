"""What sealing an LMDB costs (`dynsal.data.lmdb_writer.seal_copy`), as JSON: the seal of a database
written in the build's batches against a plain file copy of it (`shutil.copyfile` of data.mdb), side
by side in one run, with the sealed file's size against the working one's.

The database: `--records` Caffe Datum records of 3×240×320 uint8 (a frames LMDB of the nets' size,
230 KB each), written in batches of 64 as `LmdbWriter` does. The median of `--rounds` runs each.

    python benchmarks/lmdb_seal.py [--records 2000] [--rounds 3]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import lmdb
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dynsal.caffe.blobs import array_to_datum  # noqa: E402
from dynsal.data.lmdb_writer import seal_copy  # noqa: E402


def working_database(folder: Path, records: int) -> None:
    """`records` frames in batches of 64 (LmdbWriter's), the map grown from 256 MB as it does."""
    rng = np.random.default_rng(0)
    with lmdb.open(str(folder), map_size=1 << 28) as env:
        for start in range(0, records, 64):
            batch = [(f"{i:08d}_clip_{i:06d}".encode(),
                      array_to_datum(rng.integers(0, 256, (3, 240, 320), dtype=np.uint8)).SerializeToString())
                     for i in range(start, min(start + 64, records))]
            while True:
                try:
                    with env.begin(write=True) as txn:
                        for key, value in batch:
                            txn.put(key, value)
                    break
                except lmdb.MapFullError:
                    env.set_mapsize(env.info()["map_size"] * 2)


def timed(action, *args) -> float:
    start = time.perf_counter()
    action(*args)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp) / "work"
        working_database(work, args.records)
        size = (work / "data.mdb").stat().st_size
        seals, copies = [], []
        for r in range(args.rounds):
            copies.append(timed(shutil.copyfile, work / "data.mdb", Path(tmp) / f"copy{r}.mdb"))
            seals.append(timed(seal_copy, work, Path(tmp) / f"sealed{r}"))
        sealed_size = (Path(tmp) / "sealed0" / "data.mdb").stat().st_size
        same = len({(Path(tmp) / f"sealed{r}" / "data.mdb").read_bytes() for r in range(args.rounds)}) == 1
    seal, copy = statistics.median(seals), statistics.median(copies)
    print(json.dumps({
        "records": args.records, "working_bytes": size, "sealed_bytes": sealed_size,
        "seal_s": round(seal, 3), "copy_s": round(copy, 3), "seal_over_copy": round(seal / copy, 2),
        "seal_MB_per_s": round(size / seal / 1e6, 1), "seals_identical": same,
        "machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
        "load_average": os.getloadavg()[0],
    }, indent=1))


if __name__ == "__main__":
    main()
