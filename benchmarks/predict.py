#!/usr/bin/env python3
"""End-to-end prediction speed next to network-only speed on the same frames, same net, device,
precision and run, with the share of time of each pipeline stage. Prints JSON.

End to end = `Predictor.predict_input` on a video (`--video`, its first `--frames` frames when given; else
a generated panning texture of `--frames` frames, 12 by default):
decoding, optical flow + flow image (worker processes), pre-processing, batched inference,
post-processing and PNG writing, overlapped (`dynsal.predict.pipeline`). A first, untimed run warms
up (kernels, compilation, FFT spectra, worker processes) and records every batch the net is given;
then `--repeats` timed runs. Network only = the net alone on exactly those recorded batches, from the
same kind of input buffers and queued the same way (the next batch before the previous one's outputs
are fetched), `--repeats` times. Each network-only figure is also bounded by the seconds the net took
inside the end-to-end run it is paired with (the pipeline's "net" stage, which the run's wall time
contains), so end to end ≤ network only by construction: the baseline is never handicapped. Ratios
are given from the best runs and from the medians. Stage shares: seconds of work per stage over the
timed runs (summed over threads and processes, waiting excluded) and their share of all stages.

  python benchmarks/predict.py --net stsconv --frames 12 --batch 1 --device cpu
  python benchmarks/predict.py --net stsconv --frames 1024 --batch 64 --device cuda --precision bf16 --compile
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dynsal.predict.pipeline import STAGES, StageTimes  # noqa: E402


def synthetic_video(path: Path, frames: int, height: int, width: int) -> Path:
    rng = np.random.default_rng(0)
    base = cv2.GaussianBlur(rng.integers(0, 256, (height, width + 4 * frames, 3), dtype=np.uint8), (5, 5), 0)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25.0, (width, height))
    for t in range(frames):
        writer.write(np.ascontiguousarray(base[:, 4 * t:4 * t + width]))
    writer.release()
    return path


class RecordingNet:
    """The predictor's net, recording a copy of every batch it is given (in the net's own input buffers)."""

    def __init__(self, net):
        self.net, self.batches = net, []
        self.inputs, self.outputs = net.inputs, net.outputs
        self.engine, self.device_name, self.precision = net.engine, net.device_name, net.precision  # settings.json

    def host_buffer(self, shape):
        return self.net.host_buffer(shape)

    def start_forward(self, **inputs):
        copies = {}
        for name, value in inputs.items():
            copies[name] = self.net.host_buffer(value.shape)
            copies[name][...] = value
        self.batches.append(copies)
        return self.net.start_forward(**inputs)


def network_only(net, batches) -> float:
    """Seconds for the net to run `batches` in order, each queued before the previous one is fetched, in a
    thread of its own as the pipeline's net stage (on a CPU the same pass can run at another speed in the
    main thread: measured 2x slower here with filler weights)."""
    seconds = []

    def run():
        start = time.perf_counter()
        pending = None
        for batch in batches:
            started = net.start_forward(**batch)
            if pending is not None:
                pending.result()
            pending = started
        pending.result()
        seconds.append(time.perf_counter() - start)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    return seconds[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--net", default="stsconv")
    parser.add_argument("--video", help="a video to predict (default: a generated one of --frames at --size)")
    parser.add_argument("--frames", type=int, help="frames to predict (default: all of --video; 12 generated)")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--workers", type=int, help="flow worker processes (default: one per core)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--compile", action="store_true", help="torch.compile the net")
    parser.add_argument("--cuda-graphs", action="store_true", help="replay the net from CUDA graphs")
    parser.add_argument("--repeats", type=int, default=2, help="timed end-to-end and network-only runs")
    parser.add_argument("--size", default="240x320", help="frame size HxW of the generated video (fed at native size)")
    args = parser.parse_args()
    height, width = (int(v) for v in args.size.split("x"))

    import torch

    from dynsal import zoo
    from dynsal.engines import load_net
    from dynsal.predict.inputs import PredictInput
    from dynsal.predict.outputs import OutputOptions
    from dynsal.predict.predictor import FrameRange, Predictor

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        weights = tmp / "net.caffemodel"
        load_net(zoo.deploy(args.net), None, engine="torch", seed=0).save(weights)
        video = Path(args.video) if args.video else synthetic_video(tmp / "clip.avi", args.frames or 12, height, width)
        selected = FrameRange(end=args.frames)
        outputs = OutputOptions(png=True, npz=False, overlay=False, side_by_side=False)
        item = PredictInput("clip", "video", video)
        with Predictor(args.net, None, str(weights), engine="torch", device=args.device, precision=args.precision,
                       resize="native", batch=args.batch, workers=args.workers, compile=args.compile,
                       cuda_graphs=args.cuda_graphs) as predictor:
            net = predictor.net
            predictor.net = recorder = RecordingNet(net)
            frames = predictor.predict_input(item, tmp / "warm", outputs, selected).frames  # warm-up; records batches
            predictor.net = net
            runs = []
            for index in range(args.repeats):
                predictor.times = times = StageTimes()
                start = time.perf_counter()
                predictor.predict_input(item, tmp / f"run{index}", outputs, selected)
                runs.append((time.perf_counter() - start, times))
            replays = [network_only(net, recorder.batches) for _ in range(args.repeats)]

    walls = [wall for wall, _ in runs]
    net_seconds = [min(replay, times.seconds["net"]) for replay, (_, times) in zip(replays, runs)]
    best = min(range(len(runs)), key=lambda i: walls[i])
    end_to_end = [frames / wall for wall in walls]
    network = [frames / seconds for seconds in net_seconds]
    stage_seconds = {stage: sum(times.seconds[stage] for _, times in runs) for stage in STAGES}
    total = sum(stage_seconds.values())
    print(json.dumps({
        "benchmark": "dynsal predict: end-to-end vs network-only frames/s on the same frames (same net, device, "
                     "precision, run), with stage shares",
        "net": args.net, "video": str(args.video) if args.video else "generated (a panning texture)",
        "size": list(recorder.batches[0][net.inputs[0]].shape[2:]),
        "frames": frames, "batch": args.batch, "workers": predictor.workers, "device": args.device,
        "precision": args.precision, "compile": args.compile, "cuda_graphs": args.cuda_graphs,
        "compile_failure": net.compile_failure, "torch": torch.__version__, "cpu_cores": os.cpu_count(),
        "repeats": args.repeats,
        "end_to_end_fps": {"best": max(end_to_end), "median": float(np.median(end_to_end)), "runs": end_to_end},
        "network_only_fps": {"best": max(network), "median": float(np.median(network)), "runs": network,
                             "replay_runs": [frames / s for s in replays],
                             "inside_end_to_end_runs": [frames / times.seconds["net"] for _, times in runs]},
        "end_to_end_over_network_only": {"best": max(end_to_end) / max(network),
                                         "median": float(np.median(end_to_end) / np.median(network)),
                                         "best_run_pair": end_to_end[best] / network[best]},
        "stages": {stage: {"seconds": seconds, "share": seconds / total if total else 0.0,
                           "ms_per_frame": 1000 * seconds / (frames * len(runs))}
                   for stage, seconds in stage_seconds.items()},
    }, indent=2))


if __name__ == "__main__":
    main()
