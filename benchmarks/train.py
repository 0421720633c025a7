#!/usr/bin/env python3
"""Training speed: the torch solver vs real `caffe train` (oracle, OpenBLAS), same solver and data,
same run. Prints JSON with iterations/s of both and their ratio; the torch solver on each of `--devices`
in each of `--precisions` (bf16/fp16: autocast; CPU devices run fp32 only), eager or `--compile`d.

The net is a zoo train_val (HDF5) at a reduced input size, data made here (random frames and maps);
both engines start from the same caffemodel. Caffe's rate is measured from its own log timestamps
between the first and last displayed iteration; the torch rate from the same iterations of its log.

  python benchmarks/train.py --net ssnet --size 120x160 --iterations 6
  python benchmarks/train.py --no-caffe --devices cuda cpu --precisions fp32 bf16   # a GPU machine
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import tempfile
from datetime import datetime
from pathlib import Path

import h5py
import numpy as np


def write_data(folder: Path, list_root: str, height: int, width: int, two_stream: bool, rows: int = 8) -> None:
    rng = np.random.default_rng(0)
    with h5py.File(folder / "train.h5", "w") as handle:
        handle["data1"] = rng.standard_normal((rows, 3, height, width)).astype(np.float32)
        if two_stream:
            handle["data1_b"] = rng.standard_normal((rows, 3, height, width)).astype(np.float32)
        handle["label"] = rng.standard_normal((rows, 1, height, width)).astype(np.float32) * 0.1
    for split in ("train", "val"):
        (folder / f"{split}_h5.txt").write_text(f"{list_root}/train.h5\n")


def caffe_rate(log: str, first: int) -> float:
    """Iterations/s between display lines `first` and the last one, from glog timestamps."""
    stamps = {}
    for match in re.finditer(r"I(\d{4} \d\d:\d\d:\d\d\.\d+) .*\] Iteration (\d+), lr", log):
        stamps[int(match.group(2))] = datetime.strptime(match.group(1), "%m%d %H:%M:%S.%f")
    last = max(stamps)
    return (last - first) / (stamps[last] - stamps[first]).total_seconds()


def torch_rate(folder: Path, net: str, batch: int, iterations: int, device: str, precision: str = "fp32",
               compile: bool = False) -> float:
    """Iterations/s of the torch solver on `device` in `precision` (iterations 1 .. last of its log: the
    first one warms up and compiles), data in `folder`."""
    from dynsal import zoo
    from dynsal.caffe import io
    from dynsal.engines.torch.solver import TorchSolver

    for split in ("train", "val"):
        (folder / f"{split}_h5.txt").write_text(f"{folder}/train.h5\n")
    solver = io.read_solver(folder / "solver.prototxt")
    solver.net_param.CopyFrom(zoo.train_val(net, "hdf5", data_root=str(folder), batch=batch))
    solver.ClearField("net")
    label = f"torch_{device.replace(':', '')}_{precision}"
    solver.snapshot_prefix = str(folder / label)
    log = folder / f"{label}.jsonl"
    torch_solver = TorchSolver(solver, folder, device=device, precision=precision, log_path=log, compile=compile)
    torch_solver.load_weights(str(folder / "init.caffemodel"))
    torch_solver.solve()
    records = [json.loads(line) for line in log.read_text().splitlines()]
    seconds = {r["iteration"]: r["seconds"] for r in records if r["phase"] == "train"}
    last = max(seconds)
    return (last - 1) / (seconds[last] - seconds[1])


def prepare(folder: Path, list_root: str, net: str, height: int, width: int, batch: int, iterations: int) -> None:
    """HDF5 data, the zoo train_val net, a caffemodel of fillers and the solver, in `folder`."""
    from dynsal import zoo
    from dynsal.caffe import io
    from dynsal.engines import load_net

    write_data(folder, list_root, height, width, zoo.get(net).two_stream)
    load_net(zoo.deploy(net, (1, 3, height, width)), None, engine="torch", seed=0).save(folder / "init.caffemodel")
    io.write_text(zoo.train_val(net, "hdf5", data_root=list_root, batch=batch), folder / "train_val.prototxt")
    (folder / "solver.prototxt").write_text(
        f'net: "train_val.prototxt" base_lr: 1e-7 momentum: 0.9 weight_decay: 0.0005 lr_policy: "fixed" '
        f'max_iter: {iterations} display: 1 solver_mode: CPU snapshot_after_train: false snapshot_prefix: "snap"')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--net", default="ssnet")
    parser.add_argument("--size", default="120x160")
    parser.add_argument("--iterations", type=int, default=6)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--devices", nargs="+", default=["cpu"], help="torch devices to time, e.g. cpu cuda")
    parser.add_argument("--precisions", nargs="+", default=["fp32"], choices=["fp32", "tf32", "bf16", "fp16"],
                        help="torch solver precisions on non-CPU devices")
    parser.add_argument("--compile", action="store_true", help="torch.compile the torch solver's nets")
    parser.add_argument("--no-caffe", action="store_true", help="skip real Caffe (no oracle chroot here)")
    args = parser.parse_args()
    height, width = (int(v) for v in args.size.split("x"))

    import torch

    result = {"net": args.net, "size": [height, width], "batch": args.batch, "iterations": args.iterations,
              "cpu_cores": os.cpu_count(), "torch": torch.__version__, "solver": "SGD momentum 0.9, fixed lr",
              "compile": args.compile}
    runs = [(device, precision) for device in args.devices
            for precision in (["fp32"] if device == "cpu" else args.precisions)]
    if args.no_caffe:
        with tempfile.TemporaryDirectory(prefix="dynsal-train-bench-") as tmp:
            folder = Path(tmp)
            prepare(folder, str(folder), args.net, height, width, args.batch, args.iterations)
            rates = {run: torch_rate(folder, args.net, args.batch, args.iterations, *run, compile=args.compile)
                     for run in runs}
    else:
        from dynsal.oracle import Oracle

        oracle = Oracle.ensure()
        work = oracle.workdir()
        try:
            prepare(work.host, work.inner, args.net, height, width, args.batch, args.iterations)
            log = oracle.run(["caffe", "train", "--solver=solver.prototxt", "--weights=init.caffemodel"], work,
                             env={"GLOG_minloglevel": "0", "GLOG_logtostderr": "1"})
            result["caffe_iter_per_s"] = round(caffe_rate(log.stderr, first=1), 4)
            rates = {run: torch_rate(work.host, args.net, args.batch, args.iterations, *run, compile=args.compile)
                     for run in runs}
        finally:
            shutil.rmtree(work.host, ignore_errors=True)
    result.update({f"torch_{device}_{precision}_iter_per_s": round(rate, 4) for (device, precision), rate in
                   rates.items()})
    baseline = result.get("caffe_iter_per_s") or rates.get(("cpu", "fp32"))
    result["ratios_over"] = "caffe (CPU)" if "caffe_iter_per_s" in result else "torch cpu fp32"
    result.update({f"torch_{device}_{precision}_over_baseline": round(rate / baseline, 3)
                   for (device, precision), rate in rates.items()} if baseline else {})
    print(json.dumps({"benchmark": "training iterations/s: torch solver (devices) vs real caffe train (CPU) or "
                      "torch cpu, same solver and data", **result}, indent=2))


if __name__ == "__main__":
    main()
