"""Forward throughput of the torch and onnx engines vs real Caffe (the oracle: BVLC Caffe 1.0, OpenBLAS), as JSON.

All engines run the same prototxt and caffemodel (random He-scaled weights) on the same inputs, in
one run on one machine, in alternating rounds (Caffe, then the dynsal engines, `--rounds` times) so
that all see the same background load: frames/s (batch / seconds per forward, best and median over
all rounds of `--repeats` forwards after one warm-up) per net, engine, device and precision, plus each
result's deviation from Caffe's output and from fp32 (torch's, else onnx's), max|Δ| / max|reference|.
The speed-up over Caffe is given from best-of times (`speedup_vs_caffe`) and from medians
(`speedup_vs_caffe_median`); on a busy machine they differ, and the median one is the safer figure.
The onnx engine is timed as `load_net(engine="onnx")` gives it (every blob an output, as the Net interface reads
them) and as the `.onnx` file of `dynsal export` (`onnx file`: outputs only, what a deployment runs).
Real Caffe needs the oracle chroot (root; see scripts/build_oracle.sh); `--no-caffe` skips it.

    python benchmarks/forward.py [--nets ssnet stsconv] [--size 240x320] [--batch 1] [--repeats 5]
                                 [--rounds 2] [--device cpu] [--precisions fp32 bf16] [--direct]
                                 [--engines torch onnx] [--no-caffe]
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dynsal import zoo  # noqa: E402
from dynsal.caffe import io  # noqa: E402
from dynsal.caffe.graph import build_graph  # noqa: E402
from dynsal.caffe.shapes import infer_shapes  # noqa: E402
from dynsal.caffe.weights import attach_blobs  # noqa: E402
from dynsal.engines import load_net  # noqa: E402

CAFFE_TIMER = """
import json, sys, time
import numpy as np
import caffe
caffe.set_mode_cpu()
out = {}
for name, prototxt, caffemodel, inputs, repeats in json.load(open(sys.argv[1])):
    net = caffe.Net(prototxt, caffe.TEST, weights=caffemodel)
    with np.load(inputs) as feed:
        for k in feed.files:
            net.blobs[k].data[...] = feed[k]
    net.forward()
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        net.forward()
        seconds.append(time.perf_counter() - start)
    np.save(name + "_caffe.npy", net.blobs["deconv1"].data)
    out[name] = seconds
    del net
json.dump(out, open(sys.argv[2], "w"))
"""


def random_weights(net_param, seed: int):
    rng = np.random.default_rng(seed)
    _, params = infer_shapes(build_graph(net_param))
    weights = {}
    for layer, shapes in params.items():
        if shapes:
            std = math.sqrt(2.0 / (math.prod(shapes[0]) / shapes[0][0]))
            weights[layer] = [(rng.standard_normal(s) * (std if i == 0 else 0.1)).astype(np.float32)
                              for i, s in enumerate(shapes)]
    return weights


def time_forward(net, feed, repeats: int) -> tuple:
    """Seconds of each of `repeats` forwards after a warm-up (net.forward returns host arrays, so
    each timing includes the device synchronisation), and the output."""
    out = net.forward(**feed)["deconv1"]
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        net.forward(**feed)
        seconds.append(time.perf_counter() - start)
    return seconds, out


def machine() -> dict:
    """What the figures were measured on: platform, CPUs, torch version and its threads."""
    import torch

    return dict(platform=platform.platform(), cpus=os.cpu_count(), torch=torch.__version__,
                torch_threads=torch.get_num_threads(), onnxruntime=onnxruntime_version())


def make_net(engine: str, folder: Path, name: str, device: str, precision: str):
    """A dynsal net of `engine`: "torch", "torch (direct convolution only)", "onnx" or "onnx file" (the
    `.onnx` of `dynsal export`, run through the onnx engine)."""
    prototxt, weights = folder / f"{name}.prototxt", folder / f"{name}.caffemodel"
    if engine == "onnx file":
        from dynsal.export import export

        weights = folder / f"{name}_{precision}.onnx"
        export(prototxt, folder / f"{name}.caffemodel", weights, precision=precision, overwrite=True)
    net = load_net(prototxt, weights, engine=engine.split(" ")[0], device=device, precision=precision)
    if engine.startswith("torch"):
        net.fft_convolution = engine == "torch"
    return net


def onnxruntime_version():
    """onnxruntime's version, or None where it is not installed."""
    try:
        import onnxruntime
    except ImportError:
        return None
    return onnxruntime.__version__


def timing(seconds, batch: int) -> dict:
    """Best-of and median frames/s: the best is the least disturbed by other work on the machine."""
    best, median = min(seconds), float(np.median(seconds))
    return dict(seconds_best=best, seconds_median=median, frames_per_s=batch / best, frames_per_s_median=batch / median)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nets", nargs="+", default=["ssnet", "stsconv"], choices=list(zoo.NETS))
    parser.add_argument("--size", default="240x320", help="H×W of the inputs")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5, help="timed forwards per measurement")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precisions", nargs="+", default=["fp32"], choices=["fp32", "tf32", "bf16", "fp16"])
    parser.add_argument("--rounds", type=int, default=2, help="alternating Caffe / dynsal rounds")
    parser.add_argument("--direct", action="store_true", help="also time torch without FFT convolution")
    parser.add_argument("--engines", nargs="+", default=["torch"], choices=["torch", "onnx"],
                        help="dynsal engines to time (onnx: fp32 and fp16 of --precisions)")
    parser.add_argument("--no-caffe", action="store_true", help="skip real Caffe (no oracle chroot here)")
    args = parser.parse_args(argv)


    height, width = (int(v) for v in args.size.lower().split("x"))
    shape = (args.batch, 3, height, width)
    oracle = workdir = None
    if not args.no_caffe:
        from dynsal.oracle import Oracle
        oracle = Oracle.ensure(build=False)
        workdir = oracle.workdir()
    folder = workdir.host if workdir else Path(tempfile.mkdtemp(prefix="dynsal-bench-"))
    jobs, feeds = [], {}
    for index, name in enumerate(args.nets):
        net_param = zoo.deploy(name, shape)
        io.write_text(net_param, folder / f"{name}.prototxt")
        io.write_binary(attach_blobs(net_param, random_weights(net_param, index)), folder / f"{name}.caffemodel")
        rng = np.random.default_rng(100 + index)
        feeds[name] = {blob: rng.standard_normal(shape).astype(np.float32) for blob in zoo.input_names(zoo.get(name))}
        np.savez(folder / f"{name}_inputs.npz", **feeds[name])
        jobs.append([name, f"{name}.prototxt", f"{name}.caffemodel", f"{name}_inputs.npz", args.repeats])

    variants = []
    if "torch" in args.engines:
        variants += [("torch", p) for p in args.precisions] + ([("torch (direct convolution only)", "fp32")]
                                                               if args.direct else [])
    if "onnx" in args.engines:
        variants += [(engine, p) for engine in ("onnx", "onnx file") for p in args.precisions if p in ("fp32", "fp16")]
    nets = {(name, engine, precision): make_net(engine, folder, name, args.device, precision)
            for name in args.nets for engine, precision in variants}
    caffe_seconds, dynsal_seconds, outputs = {}, {}, {}
    for _ in range(args.rounds):  # alternate the engines so that both see the same machine load
        if oracle is not None:
            (folder / "jobs.json").write_text(json.dumps(jobs))
            (folder / "timer.py").write_text(CAFFE_TIMER)
            oracle.run(["python3", "timer.py", "jobs.json", "caffe_times.json"], workdir, timeout=3600)
            for name, seconds in json.loads((folder / "caffe_times.json").read_text()).items():
                caffe_seconds.setdefault(name, []).extend(seconds)
        for key, net in nets.items():
            seconds, outputs[key] = time_forward(net, feeds[key[0]], args.repeats)
            dynsal_seconds.setdefault(key, []).extend(seconds)

    results = [dict(net=name, engine="caffe (oracle, OpenBLAS)", device="cpu", precision="fp32",
                    **timing(seconds, args.batch)) for name, seconds in caffe_seconds.items()]
    for (name, engine, precision), seconds in dynsal_seconds.items():
        row = dict(net=name, engine=engine, device=args.device, precision=precision, **timing(seconds, args.batch))
        if engine.startswith("onnx"):
            row["onnxruntime"] = nets[(name, engine, precision)].providers
        reference = next((e for e in ("torch", "onnx") if (name, e, "fp32") in outputs), None)
        if reference is not None and (engine, precision) != (reference, "fp32"):
            fp32 = outputs[(name, reference, "fp32")]
            row[f"max_abs_dev_over_max_{reference}_fp32"] = float(
                np.abs(outputs[(name, engine, precision)] - fp32).max() / np.abs(fp32).max())
        if name in caffe_seconds:
            ref = np.load(folder / f"{name}_caffe.npy")
            row["max_abs_dev_over_max_caffe"] = float(np.abs(outputs[(name, engine, precision)] - ref).max()
                                                      / np.abs(ref).max())
            row["speedup_vs_caffe"] = row["frames_per_s"] / (args.batch / min(caffe_seconds[name]))
            row["speedup_vs_caffe_median"] = row["frames_per_s_median"] / (args.batch / np.median(caffe_seconds[name]))
        results.append(row)
    shutil.rmtree(folder, ignore_errors=True)
    print(json.dumps(dict(
        benchmark="forward", size=args.size, batch=args.batch, repeats=args.repeats, rounds=args.rounds,
        machine=machine(),
        results=results), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
