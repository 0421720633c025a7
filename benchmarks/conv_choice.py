#!/usr/bin/env python3
"""The measured per-shape convolution algorithms against direct convolution and against the fixed FFT
rule they replaced, passes alternating in one process (so that all see the same load), as JSON.

Variants of one torch net (random weights, random inputs): `measured` (each layer's choice,
`dynsal.engines.torch.convalgo`), `direct` (every layer direct), `fixed FFT rule` (the rule before:
FFT of size ≈ 2.4·k for square kernels k ≥ 5 with ≥ 256 input and ≥ 64 output channels, else
direct). Each round runs one pass of each variant; reported: each variant's median and least
seconds per pass, and the ratios to `measured`.

    python benchmarks/conv_choice.py --nets ssnet stsconv --size 240x320 --rounds 5
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dynsal import zoo  # noqa: E402
from dynsal.engines.torch import convalgo  # noqa: E402


def fixed_rule_layers(net) -> dict:
    """{layer: algorithm} of the fixed rule the measured choice replaced."""
    rule = {}
    for layer in net.module.layers:
        convolutions = getattr(layer, "convolutions", None)
        if convolutions is None:
            continue
        big = (convolutions.kh == convolutions.kw >= 5 and convolutions.in_channels >= 256
               and convolutions.out_channels >= 64 and convolutions.fft_possible)
        rule[layer.layer_name] = "fft" if big else "direct"
    return rule


def compare(name: str, height: int, width: int, rounds: int) -> dict:
    """One net of each variant (the same weights: the same seed), passes alternating; see the module docstring."""
    from dynsal.engines.torch.net import TorchNet

    nets = {variant: TorchNet(zoo.deploy(name, (1, 3, height, width)), seed=0)
            for variant in ("measured", "direct", "fixed FFT rule")}
    nets["measured"].set_conv_algorithm("measure")
    nets["direct"].set_conv_algorithm("direct")
    rule = fixed_rule_layers(nets["fixed FFT rule"])
    for algorithm in ("fft", "direct"):
        nets["fixed FFT rule"].set_conv_algorithm(algorithm, [layer for layer, a in rule.items() if a == algorithm])
    feed = {blob: np.random.default_rng(0).standard_normal((1, 3, height, width)).astype(np.float32)
            for blob in zoo.input_names(zoo.get(name))}
    outputs, seconds = {}, {variant: [] for variant in nets}
    for _ in range(rounds + 1):  # the first round warms up (choices, kernel transforms) and is not counted
        for variant, net in nets.items():
            start = time.perf_counter()
            outputs[variant] = net.forward(**feed)["deconv1"]
            seconds[variant].append(time.perf_counter() - start)
    measured_choice = {layer: sorted(set(shapes.values()))
                       for layer, shapes in nets["measured"].conv_algorithms.items()}
    reference = outputs["direct"].astype(np.float64)
    result = dict(net=name, measured_algorithms=measured_choice, variants={})
    for variant, times in seconds.items():
        counted = times[1:]
        result["variants"][variant] = dict(
            seconds_median=float(np.median(counted)), seconds_best=min(counted),
            max_rel_dev_from_direct=float(np.abs(outputs[variant] - reference).max() / np.abs(reference).max()))
    base = result["variants"]["measured"]
    for figures in result["variants"].values():
        figures["median_over_measured"] = figures["seconds_median"] / base["seconds_median"]
        figures["best_over_measured"] = figures["seconds_best"] / base["seconds_best"]
    del nets
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nets", nargs="+", default=["ssnet", "stsconv"], choices=list(zoo.NETS))
    parser.add_argument("--size", default="240x320", help="H×W of the inputs")
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds (one pass of each variant each)")
    args = parser.parse_args(argv)
    height, width = (int(v) for v in args.size.lower().split("x"))
    print(json.dumps(dict(benchmark="conv_choice", size=args.size, cpu=convalgo.cpu_model(),
                          machine_key=convalgo.machine_key(), load_before=os.getloadavg(),
                          nets=[compare(name, height, width, args.rounds) for name in args.nets]), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
