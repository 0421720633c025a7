"""Forward throughput of the torch and onnx engines vs real Caffe (the oracle: BVLC Caffe 1.0, OpenBLAS), as JSON.

All engines run the same prototxt and caffemodel (random He-scaled weights) on the same inputs, in
one run on one machine, in alternating rounds (Caffe, then the dynsal engines, `--rounds` times) so
that all see the same background load. Torch passes run as a pipeline does: inputs in `Net.host_buffer`
memory (page-locked on CUDA) and each pass queued before the previous one's outputs are fetched, so a
pass's time is the interval between consecutive outputs (on the CPU: the pass itself). Reported per
net, engine, device, precision, batch and mode (`--modes`: eager, compile = torch.compile, graphs =
CUDA graphs, compile+graphs): frames/s from the best and the median pass over all rounds of
`--repeats`, after warm-up passes (compilation, cuDNN autotuning, the measured choice of each CPU
convolution's algorithm, listed per layer in `conv_algorithms`); each torch result's deviation from
Caffe's output and from torch fp32 eager on the same device: max|Δ| / max|reference|, max|Δ| and the
correlation coefficient CC over all output values; the speed-up over Caffe from best-of and from
median times (on a busy machine they differ; the median one is the safer figure). The onnx engine
(`--engines onnx`, fp32 and fp16 of `--precisions`) is timed as `load_net(engine="onnx")` gives it
(every blob an output, as the Net interface reads them) and as the `.onnx` file of `dynsal export`
(`onnx file`: outputs only, what a deployment runs). Real Caffe needs
the oracle chroot (root; see scripts/build_oracle.sh); `--no-caffe` skips it.

    python benchmarks/forward.py [--nets ssnet stsconv] [--size 240x320] [--batch 1] [--repeats 5]
                                 [--rounds 2] [--device cpu] [--precisions fp32 bf16] [--direct]
                                 [--modes eager compile] [--engines torch onnx] [--no-caffe]
    python benchmarks/forward.py --no-caffe --device cuda --nets stsconv --batch 16 32 64 \
                                 --precisions fp32 tf32 bf16 --modes eager compile compile+graphs
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
from dynsal.caffe.caffemodel import attach_blobs  # noqa: E402
from dynsal.caffe.graph import build_graph  # noqa: E402
from dynsal.caffe.shapes import infer_shapes  # noqa: E402
from dynsal.engines import load_net  # noqa: E402
from dynsal.engines.torch.convalgo import cpu_model  # noqa: E402

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


def time_passes(net, feed, repeats: int) -> tuple:
    """Seconds of each of `repeats` pipelined passes (see the module docstring) after two warm-up passes,
    and the output."""
    buffers = {name: net.host_buffer(value.shape) for name, value in feed.items()}
    for name, value in feed.items():
        buffers[name][...] = value
    for _ in range(2):
        out = net.forward(**buffers)["deconv1"]
    seconds, pending = [], net.start_forward(**buffers)
    last = time.perf_counter()
    for _ in range(repeats):  # each interval holds one pass queued and one fetched
        following = net.start_forward(**buffers)
        pending.result()
        now = time.perf_counter()
        seconds.append(now - last)
        last, pending = now, following
    pending.result()
    return seconds, out


def cpu_isa() -> str:
    """The vector instruction sets of this CPU that matter for the ratios (from /proc/cpuinfo's flags)."""
    try:
        flags = next((line.split(":", 1)[1].split() for line in Path("/proc/cpuinfo").read_text().splitlines()
                      if line.startswith("flags")), [])
    except OSError:
        return "unknown"
    names = {"avx2": "AVX2", "fma": "FMA", "avx512f": "AVX-512", "avx512_bf16": "AVX-512 BF16",
             "avx512_vnni": "AVX-512 VNNI", "amx_tile": "AMX"}
    return ", ".join(label for flag, label in names.items() if flag in flags) or "no AVX2"


def machine(device: str = "cpu") -> dict:
    """What the figures were measured on: platform, CPU model and vector ISA, CPUs, torch version and its
    threads, the GPU (CUDA), onnxruntime's version (None where it is not installed)."""
    import torch

    return dict(platform=platform.platform(), cpu=cpu_model(), isa=cpu_isa(), cpus=os.cpu_count(),
                torch=torch.__version__,
                torch_threads=torch.get_num_threads(),
                gpu=torch.cuda.get_device_name(device) if device.startswith("cuda") else None,
                onnxruntime=onnxruntime_version())


def onnxruntime_version():
    """onnxruntime's version, or None where it is not installed."""
    try:
        import onnxruntime
    except ImportError:
        return None
    return onnxruntime.__version__


def make_net(engine: str, files: tuple, device: str, precision: str, mode: str):
    """A dynsal net of `engine`: "torch", "torch (direct convolution only)", "onnx" or "onnx file" (the
    `.onnx` of `dynsal export`, run through the onnx engine); `mode` one of MODES (torch)."""
    prototxt, weights = files
    if engine == "onnx file":
        from dynsal.export import export  # needs onnx, an optional dependency the GPU machines may lack

        onnx_file = weights.with_name(f"{prototxt.stem}_{precision}.onnx")
        export(prototxt, weights, onnx_file, precision=precision, overwrite=True)
        weights = onnx_file
    if not engine.startswith("torch"):
        return load_net(prototxt, weights, engine="onnx", device=device, precision=precision)
    net = load_net(prototxt, weights, engine="torch", device=device, precision=precision, **MODES[mode])
    if engine != "torch":
        net.set_conv_algorithm("direct")
    return net


def timing(seconds, batch: int) -> dict:
    """Best-of and median frames/s: the best is the least disturbed by other work on the machine."""
    best, median = min(seconds), float(np.median(seconds))
    return dict(seconds_best=best, seconds_median=median, frames_per_s=batch / best, frames_per_s_median=batch / median)


def deviation(output: np.ndarray, reference: np.ndarray, label: str) -> dict:
    """max|Δ| / max|reference|, max|Δ| and the correlation coefficient of all values, keys suffixed `label`."""
    difference = np.abs(output.astype(np.float64) - reference)
    return {f"max_abs_dev_over_max_{label}": float(difference.max() / np.abs(reference).max()),
            f"max_abs_dev_{label}": float(difference.max()),
            f"cc_{label}": float(np.corrcoef(output.ravel(), reference.ravel())[0, 1])}


def sliced(feed: dict, batch: int) -> dict:
    return {blob: value[:batch] for blob, value in feed.items()}


MODES = {"eager": dict(), "compile": dict(compile=True), "graphs": dict(cuda_graphs=True),
         "compile+graphs": dict(compile=True, cuda_graphs=True)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nets", nargs="+", default=["ssnet", "stsconv"], choices=list(zoo.NETS))
    parser.add_argument("--size", default="240x320", help="H×W of the inputs")
    parser.add_argument("--batch", type=int, nargs="+", default=[1], help="batch sizes")
    parser.add_argument("--repeats", type=int, default=5, help="timed forwards per measurement")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precisions", nargs="+", default=["fp32"], choices=["fp32", "tf32", "bf16", "fp16"])
    parser.add_argument("--modes", nargs="+", default=["eager"], choices=list(MODES),
                        help="torch engine modes: eager, compile (torch.compile), graphs (CUDA graphs), compile+graphs")
    parser.add_argument("--rounds", type=int, default=2, help="alternating Caffe / dynsal rounds")
    parser.add_argument("--direct", action="store_true",
                        help="also time torch with every convolution direct (DYNSAL_CONV_ALGO=direct)")
    parser.add_argument("--engines", nargs="+", default=["torch"], choices=["torch", "onnx"],
                        help="dynsal engines to time (onnx: fp32 and fp16 of --precisions, mode eager)")
    parser.add_argument("--no-caffe", action="store_true", help="skip real Caffe (no oracle chroot here)")
    args = parser.parse_args(argv)

    height, width = (int(v) for v in args.size.lower().split("x"))
    largest = max(args.batch)
    oracle = workdir = None
    if not args.no_caffe:
        from dynsal.oracle import Oracle
        oracle = Oracle.ensure(build=False)
        workdir = oracle.workdir()
    folder = workdir.host if workdir else Path(tempfile.mkdtemp(prefix="dynsal-bench-"))
    jobs, feeds = [], {}
    for index, name in enumerate(args.nets):
        rng = np.random.default_rng(100 + index)
        feeds[name] = {blob: rng.standard_normal((largest, 3, height, width)).astype(np.float32)
                       for blob in zoo.input_names(zoo.get(name))}
        net_param = zoo.deploy(name, (largest, 3, height, width))
        io.write_binary(attach_blobs(net_param, random_weights(net_param, index)), folder / f"{name}.caffemodel")
        for batch in args.batch:  # one caffemodel: the blobs' shapes do not depend on the batch
            stem = f"{name}_{batch}"
            io.write_text(zoo.deploy(name, (batch, 3, height, width)), folder / f"{stem}.prototxt")
            np.savez(folder / f"{stem}_inputs.npz", **sliced(feeds[name], batch))
            jobs.append([stem, f"{stem}.prototxt", f"{name}.caffemodel", f"{stem}_inputs.npz", args.repeats])

    variants = []  # (engine, precision, mode)
    if "torch" in args.engines:
        variants += ([("torch", p, mode) for mode in args.modes for p in args.precisions]
                     + ([("torch (direct convolution only)", "fp32", "eager")] if args.direct else []))
    if "onnx" in args.engines:
        variants += [(engine, p, "eager") for engine in ("onnx", "onnx file") for p in args.precisions
                     if p in ("fp32", "fp16")]
    nets, fp32 = {}, {}
    for name in args.nets:
        for batch in args.batch:
            files = (folder / f"{name}_{batch}.prototxt", folder / f"{name}.caffemodel")
            reference = load_net(*files, engine="torch", device=args.device)  # torch fp32 eager
            fp32[(name, batch)] = reference.forward(**sliced(feeds[name], batch))["deconv1"].astype(np.float64)
            del reference
            for engine, precision, mode in variants:
                nets[(name, batch, engine, precision, mode)] = make_net(engine, files, args.device, precision, mode)
    caffe_seconds, dynsal_seconds, outputs = {}, {}, {}
    for _ in range(args.rounds):  # alternate the engines so that both see the same machine load
        if oracle is not None:
            (folder / "jobs.json").write_text(json.dumps(jobs))
            (folder / "timer.py").write_text(CAFFE_TIMER)
            oracle.run(["python3", "timer.py", "jobs.json", "caffe_times.json"], workdir, timeout=3600)
            for stem, seconds in json.loads((folder / "caffe_times.json").read_text()).items():
                caffe_seconds.setdefault(stem, []).extend(seconds)
        for key, net in nets.items():
            seconds, outputs[key] = time_passes(net, sliced(feeds[key[0]], key[1]), args.repeats)
            dynsal_seconds.setdefault(key, []).extend(seconds)

    results = []
    for stem, seconds in caffe_seconds.items():
        name, batch = stem.rsplit("_", 1)
        results.append(dict(net=name, engine="caffe (oracle, OpenBLAS)", device="cpu", precision="fp32", mode="-",
                            batch=int(batch), **timing(seconds, int(batch))))
    for key, seconds in dynsal_seconds.items():
        name, batch, engine, precision, mode = key
        row = dict(net=name, engine=engine, device=args.device, precision=precision, mode=mode, batch=batch,
                   **timing(seconds, batch))
        if engine.startswith("onnx"):
            row["onnxruntime"] = nets[key].providers
        else:
            row["conv_algorithms"] = {layer: sorted(set(shapes.values()))
                                      for layer, shapes in nets[key].conv_algorithms.items()}
            if nets[key].compile_failure:
                row["compile_failure"] = nets[key].compile_failure
        output = outputs[key]
        row.update(deviation(output, fp32[(name, batch)], "fp32"))
        stem = f"{name}_{batch}"
        if stem in caffe_seconds:
            row.update(deviation(output, np.load(folder / f"{stem}_caffe.npy").astype(np.float64), "caffe"))
            caffe = timing(caffe_seconds[stem], batch)
            row["speedup_vs_caffe"] = row["frames_per_s"] / caffe["frames_per_s"]
            row["speedup_vs_caffe_median"] = row["frames_per_s_median"] / caffe["frames_per_s_median"]
        results.append(row)
    shutil.rmtree(folder, ignore_errors=True)
    print(json.dumps(dict(
        benchmark="forward", size=args.size, batches=args.batch, repeats=args.repeats, rounds=args.rounds,
        machine=machine(args.device),
        results=results), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
