"""Real Caffe on a GPU (dynsal's CUDA + cuDNN build) against the torch engine, in one run, as JSON.

Parity: every zoo net with random weights, forward (deploy, 48×64) and backward (+ EuclideanLoss, the
first of three input sets where no ReLU gate is flipped by rounding): every blob, parameter and
gradient of the torch engine within 1e-4·max|Caffe's| (fp32; tests/engines/parity.py's rule).
Speed: frames/s of both on STSConvNet at 240×320, batch 1 (best and median of `--repeats` forwards
after a warm-up, each ending with the device synchronised; alternating rounds, one machine).

Caffe runs through caffe_blobs (benchmarks/caffe_gpu/caffe_blobs.cpp), given as the command that
starts it: on a GPU machine the `run` launcher of the self-contained pack scripts/pack_caffe_gpu.sh
makes. `--device cpu` is the dry run (Caffe in CPU mode, torch on the CPU). Exit status 1 when a
parity check fails.

    python benchmarks/caffe_gpu.py --caffe PACK/run [--device cuda] [--nets ssnet stsconv]
                                   [--speed-net stsconv] [--size 240x320] [--repeats 20] [--rounds 2]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.forward import random_weights, time_passes, timing  # noqa: E402
from dynsal import zoo  # noqa: E402
from dynsal.caffe import io  # noqa: E402
from dynsal.caffe.caffemodel import attach_blobs  # noqa: E402
from tests.engines.nets import zoo_loss_net  # noqa: E402
from tests.engines.parity import compare, decision_flips  # noqa: E402

PARITY_HW = (48, 64)
BACKWARD_RUNS = 3


def _write_net(folder: Path, name: str, net_param, weights) -> tuple:
    prototxt, caffemodel = folder / f"{name}.prototxt", folder / f"{name}.caffemodel"
    io.write_text(net_param, prototxt)
    io.write_binary(attach_blobs(net_param, weights), caffemodel)
    return prototxt, caffemodel


def _save_inputs(folder: Path, feed) -> Path:
    folder.mkdir(parents=True)
    for blob, array in feed.items():
        np.save(folder / f"{blob}.npy", np.ascontiguousarray(array, dtype=np.float32))
    return folder


def _inputs(name: str, hw, seed: int):
    rng = np.random.default_rng(seed)
    return {blob: rng.standard_normal((1, 3) + tuple(hw)).astype(np.float32) for blob in zoo.input_names(zoo.get(name))}


def caffe_results_npz(folder: Path) -> Path:
    """caffe_blobs' output folder as the .npz + .json pair tests/engines/parity.compare reads."""
    arrays = {}
    for path in folder.glob("*.npy"):
        prefix, _, rest = path.stem.partition("__")
        arrays[prefix + "/" + rest.replace("__", "/")] = np.load(path)
    npz = folder.with_suffix(".npz")
    np.savez(npz, **arrays)
    blobs, inputs, outputs = ((folder / "names.txt").read_text().split("\n") + ["", ""])[:3]
    Path(str(npz) + ".json").write_text(json.dumps(dict(blobs=blobs.split(), inputs=inputs.split(),
                                                        outputs=outputs.split())))
    return npz


def plan(folder: Path, nets, speed_net: str, speed_hw, repeats: int, rounds: int, gpu: bool):
    """Write the nets, inputs and caffe_blobs' job file; returns (jobs path, parity runs, speed feed)."""
    lines = ["mode gpu 0" if gpu else "mode cpu"]
    runs = {}
    for index, name in enumerate(nets):
        deploy = zoo.deploy(name, (1, 3) + PARITY_HW)
        prototxt, caffemodel = _write_net(folder, name, deploy, random_weights(deploy, index))
        lines.append(f"net {prototxt} {caffemodel} TEST")
        feed = _save_inputs(folder / f"{name}_in", _inputs(name, PARITY_HW, index))
        lines.append(f"run {feed} {folder / f'{name}_out'} 0")
        runs[(name, "forward")] = [(prototxt, caffemodel, feed, folder / f"{name}_out")]
        loss = folder / f"{name}_loss.prototxt"
        io.write_text(zoo_loss_net(name, (1, 3) + PARITY_HW), loss)
        lines.append(f"net {loss} {caffemodel} TEST")
        runs[(name, "backward")] = []
        for run in range(BACKWARD_RUNS):
            seed = 100 * (run + 1) + index
            inputs = dict(_inputs(name, PARITY_HW, seed), label=np.random.default_rng(seed).standard_normal(
                (1, 1) + PARITY_HW).astype(np.float32))
            feed = _save_inputs(folder / f"{name}_loss{run}_in", inputs)
            lines.append(f"run {feed} {folder / f'{name}_loss{run}_out'} 1")
            runs[(name, "backward")].append((loss, caffemodel, feed, folder / f"{name}_loss{run}_out"))
    deploy = zoo.deploy(speed_net, (1, 3) + tuple(speed_hw))
    prototxt, caffemodel = _write_net(folder, "speed", deploy, random_weights(deploy, 99))
    speed_feed = _save_inputs(folder / "speed_in", _inputs(speed_net, speed_hw, 99))
    lines.append(f"net {prototxt} {caffemodel} TEST")
    lines += [f"time {speed_feed} {repeats} {folder / f'speed_seconds{r}.txt'}" for r in range(rounds)]
    for out in [o for entries in runs.values() for *_, o in entries]:
        out.mkdir()
    jobs = folder / "jobs.txt"
    jobs.write_text("\n".join(lines) + "\n")
    return jobs, runs, (prototxt, caffemodel, speed_feed)


def _feed(folder: Path):
    return {p.stem: np.load(p) for p in folder.glob("*.npy")}


def check_parity(runs, device: str) -> dict:
    """{net: {forward: problems, backward: problems, decision_flips: [...]}} of the torch engine vs Caffe
    (backward compared on the first run without a near-tie decision flip, tests/engines/parity.py)."""
    from dynsal.engines import load_net

    report = {}
    for (name, kind), entries in runs.items():
        row = report.setdefault(name, {})
        net = load_net(entries[0][0], entries[0][1], engine="torch", device=device)
        if kind == "forward":
            _, _, feed, out = entries[0]
            net.forward(**_feed(feed))
            row["forward"] = compare(net, caffe_results_npz(out), backward=False)
            continue
        row["backward"], row["decision_flips"] = None, []
        for _, _, feed, out in entries:
            npz = caffe_results_npz(out)
            net.forward(**_feed(feed))
            problems = compare(net, npz, backward=False)
            flips = decision_flips(net, npz)
            row["decision_flips"].append(flips)
            if problems or not flips:
                if not problems:
                    net.backward()
                    problems = compare(net, npz, backward=True)
                row["backward"] = problems
                break
        if row["backward"] is None:
            row["backward"] = ["every run flipped a decision (ReLU gate, MAX choice) by rounding: "
                               "backward not compared"]
    return report


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--caffe", required=True, help="the command that starts caffe_blobs (e.g. PACK/run)")
    parser.add_argument("--device", default="cuda", help="cuda (Caffe GPU mode, device 0) or cpu (dry run)")
    parser.add_argument("--nets", nargs="+", default=list(zoo.NETS), choices=list(zoo.NETS))
    parser.add_argument("--speed-net", default="stsconv", choices=list(zoo.NETS))
    parser.add_argument("--size", default="240x320", help="H×W of the speed measurement")
    parser.add_argument("--repeats", type=int, default=20, help="timed forwards per round")
    parser.add_argument("--rounds", type=int, default=2, help="alternating Caffe / torch timing rounds")
    parser.add_argument("--timeout", type=float, default=540, help="seconds allowed to Caffe's part")
    args = parser.parse_args(argv)

    import torch

    from dynsal.engines import load_net

    speed_hw = tuple(int(v) for v in args.size.lower().split("x"))
    gpu = args.device.startswith("cuda")
    folder = Path(tempfile.mkdtemp(prefix="dynsal-caffe-gpu-"))
    try:
        jobs, runs, (prototxt, caffemodel, speed_feed) = plan(folder, args.nets, args.speed_net, speed_hw,
                                                              args.repeats, args.rounds, gpu)
        caffe = subprocess.run(shlex.split(args.caffe) + [str(jobs)], capture_output=True, text=True,
                               timeout=args.timeout)
        if caffe.returncode != 0:
            print(json.dumps(dict(benchmark="caffe_gpu", error="caffe_blobs failed",
                                  stderr=caffe.stderr[-4000:])), flush=True)
            return 1
        parity = check_parity(runs, args.device)
        net = load_net(prototxt, caffemodel, engine="torch", device=args.device)
        feed = _feed(speed_feed)
        torch_seconds = []
        for _ in range(args.rounds):
            torch_seconds += time_passes(net, feed, args.repeats)[0]
        caffe_seconds = [float(s) for r in range(args.rounds)
                         for s in (folder / f"speed_seconds{r}.txt").read_text().split()]
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    speed = dict(caffe=timing(caffe_seconds, 1), torch=timing(torch_seconds, 1))
    speed["torch_over_caffe_frames_per_s"] = speed["torch"]["frames_per_s"] / speed["caffe"]["frames_per_s"]
    failed = sorted(name for name, row in parity.items() if row["forward"] or row["backward"])
    print(json.dumps(dict(
        benchmark="caffe_gpu", device=args.device, precision="fp32", parity_rule="max|Δ| ≤ 1e-4·max|Caffe|",
        parity_size=f"{PARITY_HW[0]}x{PARITY_HW[1]}", parity_failed=failed, parity=parity,
        speed_net=args.speed_net, speed_size=args.size, repeats=args.repeats, rounds=args.rounds, speed=speed,
        machine=dict(platform=platform.platform(), cpus=os.cpu_count(), torch=torch.__version__,
                     gpu=torch.cuda.get_device_name(0) if gpu else None),
        caffe_stderr_tail=caffe.stderr[-1500:]), indent=2))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
