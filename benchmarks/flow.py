"""Throughput of dynsal's optical flow: frames/s per method at 240×320 and 360×640 (H×W), as JSON.

Each measurement runs `compute_flow` (and, separately, flow + Middlebury encoding) on a textured
frame pair moved by a sub-pixel translation, repeated for about `--seconds`, with OpenCV's default
threads and with one thread (what each `--jobs` worker of `dynsal make-lmdb` uses). The contrib
methods (tvl1, deepflow) are measured where cv2.optflow exists.

    python benchmarks/flow.py [--seconds 2] [--methods dis,farneback,tvl1,deepflow]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import cv2

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dynsal.data.flow import FlowSettings, available_methods, compute_flow  # noqa: E402
from tests.data.synthetic import moved_pair, translation  # noqa: E402

SIZES = {"240x320": (240, 320), "360x640": (360, 640)}


def _rate(function, seconds: float) -> float:
    function()  # warm-up
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds or count < 2:
        function()
        count += 1
    return count / (time.perf_counter() - start)


def _measure(prev, nxt, method: str, threads: int, seconds: float) -> dict:
    settings = FlowSettings(method)
    entry = {}
    for label, n in (("default_threads", threads), ("one_thread", 1)):
        cv2.setNumThreads(n)
        entry[f"flow_fps_{label}"] = round(_rate(lambda: compute_flow(prev, nxt, method), seconds), 2)
    entry["flow_and_middlebury_image_fps_one_thread"] = round(
        _rate(lambda: settings.image(settings.flow(prev, nxt)), seconds), 2)
    cv2.setNumThreads(threads)
    return entry


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--methods", default=",".join(available_methods()))
    args = parser.parse_args(argv)
    methods = [m for m in args.methods.split(",") if m]
    threads = cv2.getNumThreads()
    results = {}
    for size, (height, width) in SIZES.items():
        prev, nxt, _ = moved_pair(height, width, translation(2.5, -1.5))
        for method in methods:
            results.setdefault(size, {})[method] = _measure(prev, nxt, method, threads, args.seconds)
    print(json.dumps({"benchmark": "flow", "unit": "frames/s", "cv2": cv2.__version__, "opencv_threads": threads,
                      "cpus": os.cpu_count(), "machine": platform.machine(), "results": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
