"""Write speed of the HDF5 dataset writer without a chunk cache (what `make-hdf5` uses, so that a full disk
fails where it happens) against the same writer with h5py's default 1 MiB chunk cache, as JSON.

`--samples` synthetic samples at the nets' 240×320 (data1, data1_b 3 channels, label 1: 2.15 MB of float32
each) go through `Hdf5Writer.put` into `--rows-per-file` files in a temporary folder, both ways in the same
run, alternating `--rounds` times; the best round of each is reported, with the ratio.

    python benchmarks/hdf5_writer.py [--samples 200] [--rows-per-file 100] [--rounds 3]
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path
from unittest import mock

import h5py
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dynsal.data import hdf5_writer  # noqa: E402
from dynsal.data.dataset import Sample  # noqa: E402


def _samples(count: int):
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (3, 240, 320), dtype=np.uint8)
    flow = rng.integers(0, 256, (3, 240, 320), dtype=np.uint8)
    saliency = rng.integers(0, 256, (1, 240, 320), dtype=np.uint8)
    return [Sample(i, f"{i:08d}_v_{i:06d}", frame, flow, saliency) for i in range(count)]


def _write(samples, rows: int, default_cache: bool) -> float:
    """Seconds to put and commit every sample (and close the files)."""
    original = h5py.File
    opener = (lambda *a, rdcc_nbytes=None, **k: original(*a, **k)) if default_cache else original
    with tempfile.TemporaryDirectory() as tmp, mock.patch.object(hdf5_writer.h5py, "File", opener):
        writer = hdf5_writer.Hdf5Writer(Path(tmp) / "staging", "train", len(samples), rows_per_file=rows)
        start = time.perf_counter()
        for sample in samples:
            writer.put(sample)
        writer.commit()
        writer.close()
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--rows-per-file", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    samples = _samples(args.samples)
    times = {"no_chunk_cache": [], "default_chunk_cache": []}
    for _ in range(args.rounds):
        times["no_chunk_cache"].append(_write(samples, args.rows_per_file, default_cache=False))
        times["default_chunk_cache"].append(_write(samples, args.rows_per_file, default_cache=True))
    rates = {name: args.samples / min(values) for name, values in times.items()}
    print(json.dumps({
        "samples": args.samples, "rows_per_file": args.rows_per_file, "rounds": args.rounds,
        "samples_per_s": {name: round(rate, 1) for name, rate in rates.items()},
        "ratio_no_cache_vs_default": round(rates["no_chunk_cache"] / rates["default_chunk_cache"], 3),
        "machine": platform.machine(), "python": platform.python_version(), "h5py": h5py.__version__,
    }, indent=1))


if __name__ == "__main__":
    main()
