"""What flushing each map to the disk costs: `dynsal.data.images.write_png` (through
`dynsal.files.write_atomic`: fsync of the file before its rename and of the folder after) against the
same writes with `os.fsync` made a no-op, alternating in one process, as JSON. Maps are 8-bit PNGs of
a smooth random saliency map at `--size` (what `dynsal predict` writes per frame).

    python benchmarks/durable_writes.py [--maps 300] [--size 240x320] [--rounds 3] [--dir FOLDER]

`--dir` chooses the file system measured (default: a temporary folder); the cost depends on it.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dynsal.data.images import write_png  # noqa: E402


def write_maps(folder: Path, maps, durable: bool) -> float:
    """Seconds to write every map into `folder`, with fsync as it is (durable) or as a no-op."""
    fsync = os.fsync
    if not durable:
        os.fsync = lambda fd: None
    try:
        start = time.perf_counter()
        for index, saliency in enumerate(maps):
            write_png(saliency, folder / f"{index:06d}.png")
        return time.perf_counter() - start
    finally:
        os.fsync = fsync


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--maps", type=int, default=300)
    parser.add_argument("--size", default="240x320")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--dir", help="the folder to write in (default: a temporary folder)")
    args = parser.parse_args()
    height, width = (int(v) for v in args.size.split("x"))
    rng = np.random.default_rng(0)
    maps = [cv2.GaussianBlur(rng.integers(0, 256, (height, width), dtype=np.uint8), (31, 31), 0)
            for _ in range(args.maps)]
    seconds = {"fsync": [], "no_fsync": []}
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        for round_ in range(args.rounds):
            for durable, key in ((True, "fsync"), (False, "no_fsync")):
                folder = Path(tmp) / f"{key}{round_}"
                folder.mkdir()
                seconds[key].append(write_maps(folder, maps, durable))
    per_map = {key: [1000 * s / args.maps for s in values] for key, values in seconds.items()}
    print(json.dumps({
        "benchmark": "PNG map writes through dynsal.files.write_atomic, with fsync vs fsync as a no-op",
        "maps": args.maps, "size": [height, width], "rounds": args.rounds,
        "folder": args.dir or tempfile.gettempdir(), "machine": platform.machine(), "cpus": os.cpu_count(),
        "ms_per_map": per_map,
        "median_ms_per_map": {key: statistics.median(values) for key, values in per_map.items()},
        "cost_ratio_median": statistics.median(per_map["fsync"]) / statistics.median(per_map["no_fsync"]),
    }, indent=1))


if __name__ == "__main__":
    main()
