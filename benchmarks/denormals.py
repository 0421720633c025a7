#!/usr/bin/env python3
"""CPU forward speed with and without flush-to-zero, zoo-initialised vs He-scaled weights, as JSON.

DESIGN D9: denormal floats can make CPU arithmetic 6–25× slower; the torch engine's CPU passes
run with FTZ/DAZ (dynsal.engines.torch.denormals). This measures, in one process and alternating
rounds, the forward of a zoo net on frames decoded from a video (`--video`, else a generated
textured clip written as MJPG and decoded by dynsal like any input) and, for two-stream nets,
their DIS flow images, pre-processed as `dynsal predict` does — and on random-normal input:

- weights: "zoo" (the zoo's fillers, as a net starts training) and "he" (He-scaled Gaussians);
- flush: "dynsal" (TorchNet.forward, FTZ/DAZ on) and "off" (the same module called with FTZ/DAZ
  off in this thread).

Reports median and best seconds per forward and the ratios zoo/he and off/dynsal.

    python benchmarks/denormals.py [--nets ssnet stsconv] [--size 240x320] [--rounds 3] [--video clip.mp4]
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from forward import machine, random_weights  # noqa: E402
from predict import synthetic_video  # noqa: E402

from dynsal import zoo  # noqa: E402
from dynsal.data.flow import compute_flow  # noqa: E402
from dynsal.data.flow_image import encode_flow  # noqa: E402
from dynsal.data.preprocess import net_input  # noqa: E402
from dynsal.data.video import ResizePolicy, read_frames  # noqa: E402


def clip_inputs(video: Path, height: int, width: int, net: str) -> dict:
    """The second frame of `video` resized to height×width and its DIS flow image from the first, as
    the net's 1×3×H×W float32 inputs (TSNet's one stream takes the flow image)."""
    frames = [f.image for f, _ in zip(read_frames(video, ResizePolicy.parse(f"fixed:{height}x{width}")), range(2))]
    if len(frames) < 2:
        raise SystemExit(f"{video}: needs at least two frames")
    flow_image = encode_flow(compute_flow(frames[0], frames[1], "dis"))
    images = {"data1": flow_image if net == "tsnet" else frames[1], "data1_b": flow_image}
    return {name: net_input(images[name])[None] for name in zoo.input_names(zoo.get(net))}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nets", nargs="+", default=["ssnet", "stsconv"], choices=list(zoo.NETS))
    parser.add_argument("--size", default="240x320", help="H×W of the inputs")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds, one forward per variant each")
    parser.add_argument("--video", type=Path, help="a video to take the frames from (default: a generated clip)")
    args = parser.parse_args(argv)

    import torch

    from dynsal.engines import load_net
    from dynsal.engines.torch.denormals import flushing_denormals

    height, width = (int(v) for v in args.size.lower().split("x"))
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        video = args.video or synthetic_video(Path(tmp) / "clip.avi", 3, height, width)
        for index, name in enumerate(args.nets):
            deploy = zoo.deploy(name, (1, 3, height, width))
            inputs = zoo.input_names(zoo.get(name))
            rng = np.random.default_rng(index)
            feeds = {"clip": clip_inputs(video, height, width, name),
                     "normal": {b: rng.standard_normal((1, 3, height, width)).astype(np.float32) for b in inputs}}
            nets = {"zoo": load_net(deploy, engine="torch", seed=0)}
            nets["he"] = load_net(deploy, engine="torch", seed=0)
            nets["he"].set_params(random_weights(deploy, index))
            seconds = {}
            for _ in range(args.rounds):
                for (weights, net), (feed_name, feed) in ((w, f) for w in nets.items() for f in feeds.items()):
                    start = time.perf_counter()
                    net.forward(**feed)
                    seconds.setdefault((weights, feed_name, "dynsal"), []).append(time.perf_counter() - start)
                    tensors = {k: torch.from_numpy(v) for k, v in feed.items()}
                    torch.set_flush_denormal(False)
                    assert not flushing_denormals()
                    start = time.perf_counter()
                    with torch.inference_mode():
                        net.module(tensors)
                    seconds.setdefault((weights, feed_name, "off"), []).append(time.perf_counter() - start)
            for (weights, feed_name, flush), values in seconds.items():
                results.append(dict(net=name, weights=weights, input=feed_name, flush=flush,
                                    seconds_median=float(np.median(values[1:] or values)), seconds_best=min(values)))
            for feed_name in feeds:
                row = {r["weights"] + "/" + r["flush"]: r["seconds_median"] for r in results
                       if r["net"] == name and r["input"] == feed_name}
                results.append(dict(net=name, input=feed_name, ratio_zoo_over_he=row["zoo/dynsal"] / row["he/dynsal"],
                                    ratio_off_over_flush_zoo=row["zoo/off"] / row["zoo/dynsal"],
                                    ratio_off_over_flush_he=row["he/off"] / row["he/dynsal"]))
    print(json.dumps(dict(benchmark="denormals: CPU forward, FTZ/DAZ on (dynsal) vs off, zoo vs He weights",
                          size=args.size, rounds=args.rounds, video=str(args.video or "generated textured clip"),
                          machine=machine(),
                          results=results), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
