"""What recording an input's identity costs (issue 30): `dynsal.data.identity.input_identity` (size,
modification time and the SHA-256 of every byte, read in 1 MiB chunks) against decoding the same input
with `dynsal.data.video.read_frames` (what every prediction, flow or dataset build does first), as JSON.

Inputs made here: a video of `--frames` frames at `--size` of moving, textured content, as MJPG in AVI
(large per frame: the costliest case for hashing next to decoding) and as H.264 in MP4 (PyAV's libx264:
small per frame), and the same frames as a folder of JPEG files. Hashing and decoding alternate for
`--rounds` rounds; the files were just written, so both read from the page cache (a cold read from a
disk costs both the same bytes). Figures per GB of the input, and the ratio hash / decode per input.

    python benchmarks/input_identity.py [--frames 300] [--size 360x640] [--rounds 3] [--dir FOLDER]
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
from typing import Callable, Dict

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dynsal.data.identity import input_identity  # noqa: E402
from dynsal.data.video import frame_files, read_frames  # noqa: E402
from dynsal.predict.video_writer import open_video_writer  # noqa: E402


def moving_frames(count: int, height: int, width: int):
    """BGR frames of a smooth random texture panning 3 px a frame, with a little noise (as camera footage)."""
    rng = np.random.default_rng(0)
    big = cv2.GaussianBlur(rng.integers(0, 256, (height, width + 3 * count, 3), dtype=np.uint8), (9, 9), 0)
    for t in range(count):
        noise = rng.integers(-6, 7, (height, width, 3))
        yield np.clip(big[:, 3 * t:3 * t + width].astype(np.int16) + noise, 0, 255).astype(np.uint8)


def make_inputs(folder: Path, count: int, height: int, width: int) -> Dict[str, Path]:
    """{name: path} of the three inputs measured."""
    mjpg = cv2.VideoWriter(str(folder / "clip.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (width, height))
    h264 = open_video_writer(folder / "clip.mp4", 30.0, (width, height))
    frames = folder / "frames"
    frames.mkdir()
    for t, frame in enumerate(moving_frames(count, height, width)):
        mjpg.write(frame)
        h264.write(frame)
        cv2.imwrite(str(frames / f"{t:06d}.jpg"), frame)
    mjpg.release()
    h264.release()
    return {"MJPG (AVI)": folder / "clip.avi", "H.264 (MP4)": folder / "clip.mp4", "JPEG frame folder": frames}


def input_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in frame_files(path)) if path.is_dir() else path.stat().st_size


def timed(work: Callable[[Path], object], path: Path) -> float:
    start = time.perf_counter()
    work(path)
    return time.perf_counter() - start


def decode_all(path: Path) -> int:
    return sum(1 for _ in read_frames(path))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--size", default="360x640")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--dir", help="the folder to write the inputs in (default: a temporary folder)")
    args = parser.parse_args()
    height, width = (int(v) for v in args.size.split("x"))
    cv2.setNumThreads(1)  # decoding on one core, as hashing runs
    results = []
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        inputs = make_inputs(Path(tmp), args.frames, height, width)
        for name, path in inputs.items():
            size = input_bytes(path)
            seconds: Dict[str, list] = {"identity": [], "decode": []}
            for _ in range(args.rounds):
                seconds["identity"].append(timed(input_identity, path))
                seconds["decode"].append(timed(decode_all, path))
            median = {key: statistics.median(values) for key, values in seconds.items()}
            results.append({
                "input": name, "frames": decode_all(path), "bytes": size,
                "seconds": seconds, "median_seconds": median,
                "seconds_per_gb": {key: value / (size / 1e9) for key, value in median.items()},
                "identity_over_decode_median": median["identity"] / median["decode"],
            })
    print(json.dumps({
        "benchmark": "input identity (size, mtime, SHA-256 of the bytes) vs decoding the same input (one thread)",
        "size": [height, width], "rounds": args.rounds, "folder": args.dir or tempfile.gettempdir(),
        "machine": platform.machine(), "cpus": os.cpu_count(), "load": os.getloadavg()[0], "results": results,
    }, indent=1))


if __name__ == "__main__":
    main()
