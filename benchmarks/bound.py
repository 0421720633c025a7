#!/usr/bin/env python3
"""The machine's peak, the lower bound on a net's CPU pass it implies, and the engine's gap to it, per layer, as JSON.

Peak: fp32 GEMM GFLOP/s (`torch.mm`, 2048² and 4096×1024·1024×256, best of `--repeats`) and copy
GB/s (bytes read + written by `Tensor.copy_` of 256 MiB). Per layer of each net at `--size`, batch
`--batch`: the operations of each convolution algorithm (GFLOP; a complex multiply-add counts 8, a
2-D real FFT of n² points 2.5·n²·log2(n²)) and the bytes it must read at least (the kernels or their
transform, the input and the output); its bound is max(GFLOP / GEMM peak, bytes / copy bandwidth),
the least over the algorithms. Other layers are bounded by their bytes (bottoms + tops) at copy speed.
Then the engine's own time per layer (forward hooks, the least over `--passes` passes after a first
pass that makes the algorithm choices `convalgo` has not cached: its time is `first_pass_seconds`;
DYNSAL_CONV_CACHE=<new file> measures them all), and gap = engine / bound.

    python benchmarks/bound.py --nets ssnet stsconv --size 240x320 [--batch 1] [--passes 3] [--markdown]
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dynsal import zoo  # noqa: E402
from dynsal.engines.torch import convalgo, fftconv, winograd  # noqa: E402


def best_seconds(fn, repeats: int) -> float:
    fn()
    return min(_timed(fn) for _ in range(repeats))


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def peak(repeats: int) -> dict:
    """GEMM GFLOP/s (the better of two shapes) and copy GB/s of this machine, torch's threads."""
    import torch

    gemm = {}
    for m, k, n in ((2048, 2048, 2048), (4096, 1024, 256)):
        a, b = torch.randn(m, k), torch.randn(k, n)
        gemm[f"{m}x{k}x{n}"] = 2 * m * k * n / best_seconds(lambda a=a, b=b: torch.mm(a, b), repeats) / 1e9
    src = torch.randn(64 << 20)
    dst = torch.empty_like(src)
    copy = 2 * src.numel() * 4 / best_seconds(lambda: dst.copy_(src), repeats) / 1e9
    return dict(gemm_gflops=max(gemm.values()), gemm_by_shape=gemm, copy_gbs=copy,
                torch_threads=torch.get_num_threads())


def conv_costs(x_shape, weight_shape, pad) -> dict:
    """{algorithm: (GFLOP, least bytes)} of a 2-D convolution, stride 1 unless only direct is given."""
    batch, channels, height, width = x_shape
    out_channels, _, kh, kw = weight_shape
    out_h, out_w = height + 2 * pad[0] - kh + 1, width + 2 * pad[1] - kw + 1
    io_bytes = 4 * (batch * channels * height * width + batch * out_channels * out_h * out_w)
    costs = {"direct": (2 * batch * out_channels * channels * kh * kw * out_h * out_w / 1e9,
                        io_bytes + 4 * math.prod(weight_shape))}
    if kh != kw or kh == 1:
        return costs
    for n in fftconv.FFT_SIZES:
        t = n - kh + 1
        if n < 2 * kh or n > 5 * kh or t > max(out_h, out_w):
            continue
        tiles = batch * -(-out_h // t) * -(-out_w // t)
        bins = n * (n // 2 + 1)
        transforms = 2.5 * n * n * math.log2(n * n) * tiles * (channels + out_channels)
        costs[f"fft{n}"] = ((8 * bins * out_channels * channels * tiles + transforms) / 1e9,
                            io_bytes + 8 * bins * out_channels * channels)
    if kh == winograd.KERNEL:
        tiles = batch * -(-out_h // winograd.TILE) * -(-out_w // winograd.TILE)
        points = winograd.WINDOW ** 2
        flops = 2 * points * tiles * (out_channels * channels + points * channels + winograd.TILE ** 2 * out_channels)
        costs["winograd"] = (flops / 1e9, io_bytes + 4 * points * out_channels * channels)
    return costs


def layer_times(net, feed, passes: int) -> tuple:
    """({layer: least seconds over `passes`} of the torch net's layers (forward hooks), seconds of the first
    pass, which makes the algorithm choices not in the cache)."""
    starts, seconds = {}, {}

    def enter(layer, _):
        starts[layer.layer_name] = time.perf_counter()

    def leave(layer, _, __):
        elapsed = time.perf_counter() - starts[layer.layer_name]
        seconds[layer.layer_name] = min(seconds.get(layer.layer_name, elapsed), elapsed)

    handles = [h for layer in net.module.layers
               for h in (layer.register_forward_pre_hook(enter), layer.register_forward_hook(leave))]
    first = _timed(lambda: net.forward(**feed))  # the measured algorithm choice happens here
    seconds.clear()
    for _ in range(passes):
        net.forward(**feed)
    for handle in handles:
        handle.remove()
    return seconds, first


def net_bound(name: str, height: int, width: int, batch: int, machine: dict, passes: int) -> dict:
    from dynsal.engines.torch.net import TorchNet

    net = TorchNet(zoo.deploy(name, (batch, 3, height, width)), seed=0)
    rng = np.random.default_rng(0)
    feed = {blob: rng.standard_normal((batch, 3, height, width)).astype(np.float32)
            for blob in zoo.input_names(zoo.get(name))}
    measured, first = layer_times(net, feed, passes)
    chosen = {layer: next(iter(shapes.values())) for layer, shapes in net.conv_algorithms.items()}
    rows = []
    for g in net.graph.layers:
        layer = g.param
        if layer.type in ("Input", "Split"):
            continue
        bottoms = [net.blob_shapes[b] for b in layer.bottom]
        tops = [net.blob_shapes[t] for t in layer.top]
        row = dict(layer=layer.name, type=layer.type, engine_seconds=measured.get(layer.name, 0.0))
        module = next(m for m in net.module.layers if m.layer_name == layer.name)
        if layer.type == "Convolution" and getattr(module, "convolutions", None) is not None:
            costs = conv_costs(bottoms[0], tuple(module.blobs[0].shape), module.options["padding"])
            bounds = {a: max(f / machine["gemm_gflops"], b / 1e9 / machine["copy_gbs"]) for a, (f, b) in costs.items()}
            best = min(bounds, key=bounds.get)
            row.update(gflop={a: round(f, 3) for a, (f, _) in costs.items()}, algorithm=chosen.get(layer.name),
                       bound_algorithm=best, bound_seconds=bounds[best])
        else:
            nbytes = 4 * sum(math.prod(s) for s in bottoms + tops)
            row.update(bytes=nbytes, bound_seconds=nbytes / 1e9 / machine["copy_gbs"])
        row["gap"] = row["engine_seconds"] / row["bound_seconds"] if row["bound_seconds"] else None
        rows.append(row)
    total = sum(r["engine_seconds"] for r in rows)
    bound = sum(r["bound_seconds"] for r in rows)
    return dict(net=name, batch=batch, first_pass_seconds=first, engine_seconds=total, bound_seconds=bound,
                gap=total / bound, layers=rows)


def markdown(result: dict) -> str:
    """One table per net: layer, GFLOP per algorithm, the engine's algorithm and time, the bound and the gap."""
    lines = []
    for net in result["nets"]:
        lines += [f"{net['net']} {result['size']}, batch {net['batch']}: engine {net['engine_seconds']:.3f} s, "
                  f"bound {net['bound_seconds']:.3f} s, gap {net['gap']:.1f}×", "",
                  "| layer | GFLOP: direct / best FFT (n) / Winograd | engine: algorithm, ms | bound: algorithm, ms "
                  "| gap |",
                  "|---|---|---|---|---|"]
        for r in net["layers"]:
            if "gflop" in r:
                ffts = {a: f for a, f in r["gflop"].items() if a.startswith("fft")}
                fft = min(ffts, key=ffts.get) if ffts else None
                ops = " / ".join([f"{r['gflop']['direct']:.2f}",
                                  f"{ffts[fft]:.2f} ({fft[3:]})" if fft else "—",
                                  f"{r['gflop']['winograd']:.2f}" if "winograd" in r["gflop"] else "—"])
                engine, bound = f"{r['algorithm']}, {1e3 * r['engine_seconds']:.1f}", r["bound_algorithm"]
            else:
                ops, engine, bound = f"{r['bytes'] / 1e6:.0f} MB", f"{1e3 * r['engine_seconds']:.1f}", "memory"
            lines.append(f"| {r['layer']} ({r['type']}) | {ops} | {engine} | {bound}, {1e3 * r['bound_seconds']:.1f} "
                         f"| {r['gap']:.1f}× |")
        lines.append("")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nets", nargs="+", default=["ssnet", "stsconv"], choices=list(zoo.NETS))
    parser.add_argument("--size", default="240x320", help="H×W of the inputs")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--passes", type=int, default=3, help="timed passes per net (the least counts)")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per peak measurement")
    parser.add_argument("--markdown", action="store_true", help="print tables for docs/engines.md after the JSON")
    args = parser.parse_args(argv)
    height, width = (int(v) for v in args.size.lower().split("x"))
    machine = peak(args.repeats)
    result = dict(benchmark="bound", size=args.size, cpu=convalgo.cpu_model(), load=os.getloadavg(),
                  machine=machine, nets=[net_bound(name, height, width, args.batch, machine, args.passes)
                                         for name in args.nets])
    print(json.dumps(result, indent=2))
    if args.markdown:
        print(markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
