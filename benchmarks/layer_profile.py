#!/usr/bin/env python3
"""Where a net's forward pass spends its time, per layer and per layer type (torch.profiler), as JSON.

Each layer's pass is a `record_function` range (forward hooks), so the profiler attributes to it the
CPU time of its operators and the device time of the kernels they launch. The net runs eager (a
compiled graph has no per-layer boundaries) with random He-scaled weights on random inputs, after
warm-up passes (cuDNN autotuning, FFT spectra). Also lists the kernels (or CPU operators) that take
the most time. This is what decides whether a layer deserves a fused kernel (e.g. LRN). (Not named
profile.py: as a script beside the others it would shadow Python's `profile` module, which
torch.compile imports.)

  python benchmarks/layer_profile.py --net stsconv --size 240x320 --batch 2
  python benchmarks/layer_profile.py --net stsconv --batch 32 --device cuda --precision bf16
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dynsal import zoo  # noqa: E402
from dynsal.caffe.caffemodel import attach_blobs  # noqa: E402

RANGE = "layer "  # prefix of the per-layer ranges


def annotate(module) -> None:
    """A `record_function` range "layer <type> <name>" around each layer's forward."""
    import torch

    ranges = {}

    def enter(layer, _):
        ranges[id(layer)] = torch.profiler.record_function(f"{RANGE}{layer.layer_type} {layer.layer_name}")
        ranges[id(layer)].__enter__()

    def leave(layer, _, __):
        ranges.pop(id(layer)).__exit__(None, None, None)

    for layer in module.layers:
        layer.register_forward_pre_hook(enter)
        layer.register_forward_hook(leave)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--net", default="stsconv", choices=list(zoo.NETS))
    parser.add_argument("--size", default="240x320", help="H×W of the inputs")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", default="fp32", choices=["fp32", "tf32", "bf16", "fp16"])
    parser.add_argument("--passes", type=int, default=3, help="profiled passes (after 2 warm-up passes)")
    parser.add_argument("--top", type=int, default=15, help="kernels / operators listed")
    args = parser.parse_args(argv)

    import torch
    from torch.profiler import ProfilerActivity, profile

    from benchmarks.forward import random_weights
    from dynsal.engines import load_net

    height, width = (int(v) for v in args.size.lower().split("x"))
    shape = (args.batch, 3, height, width)
    net_param = zoo.deploy(args.net, shape)
    net = load_net(net_param, attach_blobs(net_param, random_weights(net_param, 0)), engine="torch",
                   device=args.device, precision=args.precision)
    rng = np.random.default_rng(1)
    feed = {blob: rng.standard_normal(shape).astype(np.float32) for blob in net.inputs}
    for _ in range(2):
        net.forward(**feed)
    annotate(net.module)
    cuda = net.device.type == "cuda"
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    with profile(activities=activities) as prof:
        for _ in range(args.passes):
            net.forward(**feed)
    events = prof.key_averages()

    def spent(event, own: bool) -> float:
        """Milliseconds per pass: device time on CUDA, CPU time on the CPU (own: excluding children)."""
        if cuda:
            micros = event.self_device_time_total if own else event.device_time_total
        else:
            micros = event.self_cpu_time_total if own else event.cpu_time_total
        return micros / 1000 / args.passes

    layers = [dict(layer=e.key.split(" ", 2)[2], type=e.key.split(" ", 2)[1], ms=spent(e, own=False))
              for e in events if e.key.startswith(RANGE)]
    total = sum(row["ms"] for row in layers)
    by_type = defaultdict(float)
    for row in layers:
        row["share"] = row["ms"] / total if total else 0.0
        by_type[row["type"]] += row["ms"]
    operators = sorted((e for e in events if not e.key.startswith(RANGE) and e.key != "ProfilerStep*"),
                       key=lambda e: spent(e, own=True), reverse=True)[:args.top]
    print(json.dumps(dict(
        benchmark="profile: forward pass per layer (torch.profiler)", net=args.net, size=[height, width],
        batch=args.batch, device=str(net.device), precision=args.precision, passes=args.passes,
        time="device (CUDA kernels)" if cuda else "CPU", torch=torch.__version__, cpu_cores=os.cpu_count(),
        ms_per_pass=total, frames_per_s=args.batch / (total / 1000) if total else None,
        types=sorted(({"type": t, "ms": ms, "share": ms / total if total else 0.0} for t, ms in by_type.items()),
                     key=lambda row: -row["ms"]),
        layers=sorted(layers, key=lambda row: -row["ms"]),
        top=[{"name": e.key, "ms": spent(e, own=True), "calls_per_pass": e.count / args.passes} for e in operators],
    ), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
