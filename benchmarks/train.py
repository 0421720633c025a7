#!/usr/bin/env python3
"""Training speed: the torch solver vs real `caffe train` (oracle, OpenBLAS), same solver and data,
same run. Prints JSON with iterations/s of both and their ratio.

The net is a zoo train_val (HDF5) at a reduced input size, data made here (random frames and maps);
both engines start from the same caffemodel. Caffe's rate is measured from its own log timestamps
between the first and last displayed iteration; the torch rate from the same iterations of its log.

  python benchmarks/train.py --net ssnet --size 120x160 --iterations 6
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--net", default="ssnet")
    parser.add_argument("--size", default="120x160")
    parser.add_argument("--iterations", type=int, default=6)
    parser.add_argument("--batch", type=int, default=2)
    args = parser.parse_args()
    height, width = (int(v) for v in args.size.split("x"))

    import torch

    from dynsal import zoo
    from dynsal.caffe import io
    from dynsal.engines import load_net
    from dynsal.engines.torch.solver import TorchSolver
    from dynsal.oracle import Oracle

    oracle = Oracle.ensure()
    work = oracle.workdir()
    try:
        two_stream = zoo.get(args.net).two_stream
        write_data(work.host, work.inner, height, width, two_stream)
        load_net(zoo.deploy(args.net, (1, 3, height, width)), None, engine="torch", seed=0).save(
            work.host / "init.caffemodel")
        io.write_text(zoo.train_val(args.net, "hdf5", data_root=work.inner, batch=args.batch),
                      work.host / "train_val.prototxt")
        solver_text = (f'net: "train_val.prototxt" base_lr: 1e-7 momentum: 0.9 weight_decay: 0.0005 '
                       f'lr_policy: "fixed" max_iter: {args.iterations} display: 1 solver_mode: CPU '
                       'snapshot_after_train: false snapshot_prefix: "snap"')
        (work.host / "solver.prototxt").write_text(solver_text)
        result = oracle.run(["caffe", "train", "--solver=solver.prototxt", "--weights=init.caffemodel"], work,
                            env={"GLOG_minloglevel": "0", "GLOG_logtostderr": "1"})
        caffe = caffe_rate(result.stderr, first=1)

        for split in ("train", "val"):
            (work.host / f"{split}_h5.txt").write_text(f"{work.host}/train.h5\n")
        solver = io.read_solver(work.host / "solver.prototxt")
        solver.net_param.CopyFrom(zoo.train_val(args.net, "hdf5", data_root=str(work.host), batch=args.batch))
        solver.ClearField("net")
        solver.snapshot_prefix = str(work.host / "torch")
        torch_solver = TorchSolver(solver, work.host, log_path=work.host / "torch.jsonl")
        torch_solver.load_weights(str(work.host / "init.caffemodel"))
        torch_solver.solve()
        records = [json.loads(line) for line in (work.host / "torch.jsonl").read_text().splitlines()]
        seconds = {r["iteration"]: r["seconds"] for r in records if r["phase"] == "train"}
        last = max(seconds)
        torch_rate = (last - 1) / (seconds[last] - seconds[1])
    finally:
        shutil.rmtree(work.host, ignore_errors=True)
    print(json.dumps({
        "benchmark": "training iterations/s: torch solver vs real caffe train (CPU, same solver and data)",
        "net": args.net, "size": [height, width], "batch": args.batch, "iterations": args.iterations,
        "cpu_cores": os.cpu_count(), "torch": torch.__version__, "solver": "SGD momentum 0.9, fixed lr",
        "caffe_iter_per_s": round(caffe, 4), "torch_iter_per_s": round(torch_rate, 4),
        "torch_over_caffe": round(torch_rate / caffe, 3),
    }, indent=2))


if __name__ == "__main__":
    main()
