"""Throughput of dynsal's optical flow: frames/s per method at 240×320 and 360×640 (H×W), as JSON.

Each measurement runs `compute_flow` (and, separately, flow + Middlebury encoding) on a textured
frame pair moved by a sub-pixel translation, repeated for about `--seconds`, with OpenCV's default
threads and with one thread (what each `--jobs` worker of `dynsal make-lmdb` uses). The contrib
methods (tvl1, deepflow) are measured where cv2.optflow exists. RAFT (torchvision) is measured with
`--raft WEIGHTS` on `--raft-device` (its speed does not depend on the weights' values, so
`--raft random-large` / `random-small` uses seeded random weights when the published file is not at hand).

    python benchmarks/flow.py [--seconds 2] [--methods dis,farneback,tvl1,deepflow]
    python benchmarks/flow.py --methods raft --raft random-large --raft-device cuda
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
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


def _raft_weights(choice: str, folder: Path) -> str:
    """A weights file: the given one, or seeded random weights of raft_large / raft_small."""
    if not choice.startswith("random-"):
        return choice
    import torch
    from torchvision.models import optical_flow

    torch.manual_seed(0)
    path = folder / f"raft_{choice}.pth"
    torch.save(getattr(optical_flow, "raft_" + choice.split("-", 1)[1])().state_dict(), path)
    return str(path)


def _measure_raft(prev, nxt, params: dict, seconds: float) -> dict:
    """RAFT's rate on its device (OpenCV's threads do not apply)."""
    return {"flow_fps": round(_rate(lambda: compute_flow(prev, nxt, "raft", **params), seconds), 2), **params}


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
    parser.add_argument("--methods", default=",".join(m for m in available_methods() if m != "raft"))
    parser.add_argument("--raft", default="random-large", help="RAFT weights file, or random-large / random-small")
    parser.add_argument("--raft-device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--raft-iterations", type=int, default=12)
    args = parser.parse_args(argv)
    methods = [m for m in args.methods.split(",") if m]
    threads = cv2.getNumThreads()
    results = {}
    with tempfile.TemporaryDirectory() as folder:
        raft = {}
        if "raft" in methods:
            raft = {"weights": _raft_weights(args.raft, Path(folder)), "iterations": args.raft_iterations,
                    "device": args.raft_device}
        for size, (height, width) in SIZES.items():
            prev, nxt, _ = moved_pair(height, width, translation(2.5, -1.5))
            for method in methods:
                results.setdefault(size, {})[method] = (_measure_raft(prev, nxt, raft, args.seconds) if method == "raft"
                                                        else _measure(prev, nxt, method, threads, args.seconds))
    if "raft" in methods:
        for size in results:
            results[size]["raft"]["weights"] = args.raft
    print(json.dumps({"benchmark": "flow", "unit": "frames/s", "cv2": cv2.__version__, "opencv_threads": threads,
                      "cpus": os.cpu_count(), "machine": platform.machine(), "results": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
