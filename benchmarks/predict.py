#!/usr/bin/env python3
"""End-to-end prediction speed next to network-only speed, same net, device, precision and run.

End to end = `Predictor.predict_input` on a generated video: decoding, optical flow + flow image
(worker threads), pre-processing, batched inference, post-processing and PNG writing. Network only =
`net.forward` on already pre-processed batches of the same size. Prints JSON; the ratio is what the
issue's goal (≥ 70 %) is about.

  python benchmarks/predict.py --net stsconv --frames 12 --batch 1 --device cpu
  python benchmarks/predict.py --net stsconv --frames 256 --batch 32 --device cuda --precision bf16
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np


def synthetic_video(path: Path, frames: int, height: int, width: int) -> Path:
    rng = np.random.default_rng(0)
    base = cv2.GaussianBlur(rng.integers(0, 256, (height, width + 4 * frames, 3), dtype=np.uint8), (5, 5), 0)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25.0, (width, height))
    for t in range(frames):
        writer.write(np.ascontiguousarray(base[:, 4 * t:4 * t + width]))
    writer.release()
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--net", default="stsconv")
    parser.add_argument("--frames", type=int, default=12)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--size", default="240x320", help="frame size HxW (frames are fed at native size)")
    args = parser.parse_args()
    height, width = (int(v) for v in args.size.split("x"))

    import torch

    from dynsal import zoo
    from dynsal.engines import load_net
    from dynsal.predict.inputs import PredictInput
    from dynsal.predict.outputs import OutputOptions
    from dynsal.predict.predictor import Predictor

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        weights = tmp / "net.caffemodel"
        load_net(zoo.deploy(args.net), None, engine="torch", seed=0).save(weights)
        video = synthetic_video(tmp / "clip.avi", args.frames, height, width)
        predictor = Predictor(args.net, None, str(weights), "torch", args.device, args.precision, "native",
                              batch=args.batch, workers=args.workers)
        item = PredictInput("clip", "video", video)
        outputs = OutputOptions(png=True, npz=False, overlay=False, side_by_side=False)
        predictor.predict_input(item, tmp / "warm", outputs)  # warm-up: kernels, FFT weight spectra
        start = time.perf_counter()
        count = predictor.predict_input(item, tmp / "out", outputs).frames
        end_to_end = count / (time.perf_counter() - start)

        net = predictor.net
        batch = {name: np.random.default_rng(1).standard_normal((args.batch, 3, height, width)).astype(np.float32)
                 for name in net.inputs}
        net.forward(**batch)
        runs = max(1, args.frames // args.batch)
        start = time.perf_counter()
        for _ in range(runs):
            net.forward(**batch)
        network_only = runs * args.batch / (time.perf_counter() - start)

    print(json.dumps({
        "benchmark": "dynsal predict: end-to-end vs network-only frames/s (same net, device, precision, run)",
        "net": args.net, "size": [height, width], "frames": args.frames, "batch": args.batch,
        "workers": args.workers, "device": args.device, "precision": args.precision,
        "torch": torch.__version__, "cpu_cores": os.cpu_count(),
        "end_to_end_fps": round(end_to_end, 3), "network_only_fps": round(network_only, 3),
        "end_to_end_over_network_only": round(end_to_end / network_only, 3),
    }, indent=2))


if __name__ == "__main__":
    main()
