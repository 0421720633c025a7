"""Per-stage rates of recipes/slurm on a real SLURM cluster on this machine, against one process, as JSON.

Starts the test suite's local cluster (tests/cluster/local_slurm.py: slurmctld + two slurmd nodes on
loopback; needs Debian's slurmctld, slurmd, slurm-client), makes a DIEM-like folder of `--videos` panning
videos of `--frames` frames at 356-360×640 with 3 viewers' gaze, and times each stage both ways from
scratch: `dynsal flow` and the dataset build (make-lmdb, train + val) as a `--shards`-task array job
(+ the merge job) against one process; `dynsal train prototxt/ssnet_solver.prototxt` under `srun -N2 -n2`
against `srun -n1` (samples/s: each rank runs the full batch); `dynsal predict` (STSConvNet with filler
weights, 240×320) as an array against one process; and the scheduler's own cost (an empty 4-task array
with `sbatch --wait`). Every task gets OMP_NUM_THREADS=1. On a machine whose cores the two "nodes" share,
an array's speed-up is bounded by the cores, not by the shards.

    python benchmarks/cluster.py [--videos 4] [--frames 30] [--shards 2] [--iterations 3]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.cluster.local_slurm import LocalSlurm  # noqa: E402
from tests.data.synthetic import panning_video, steady_gaze  # noqa: E402
from tests.predict.helpers import zoo_weights  # noqa: E402
from tests.test_recipe_diem import VIDEOS  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
RECIPES = REPO / "recipes" / "slurm"


def diem_like(root: Path, frames: int, count: int) -> Path:
    """DIEM's layout: video/<name>.avi (half of the size in its name) and event_data/ (3 viewers)."""
    (root / "video").mkdir(parents=True)
    names = (list(VIDEOS) * count)[:count]
    for index, name in enumerate(names):
        width, height = (int(v) // 2 for v in name.rsplit("_", 1)[1].split("x"))
        panning_video(root / "video" / f"{name}.avi", frames, height, width, seed=index)
        steady_gaze(root / "event_data", name, frames, (width * 2, height * 2))
    return root


def timed(run) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=4, help="at most 4 (DIEM names: 2 train, 2 val)")
    parser.add_argument("--frames", type=int, default=30)
    parser.add_argument("--shards", type=int, default=2)
    parser.add_argument("--iterations", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        python_path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
        cluster = LocalSlurm(tmp / "slurm", {"PYTHONPATH": python_path, "OMP_NUM_THREADS": "1"})
        started = timed(cluster.start)
        try:
            print(json.dumps(measure(cluster, tmp, args, started), indent=1))
        finally:
            cluster.stop()


def measure(cluster: LocalSlurm, tmp: Path, args, started: float) -> dict:
    diem = diem_like(tmp / "DIEM", args.frames, args.videos)
    frames = args.frames * args.videos
    dynsal = [sys.executable, "-m", "dynsal"]
    env = {"DIEM": str(diem), "DYNSAL": " ".join(dynsal), "SIZE": "240x320", "DEVICE": "cpu"}
    cluster.env.update(env)
    array = f"--array=0-{args.shards - 1}"

    def sbatch(name, *options, work=tmp):
        return timed(lambda: cluster.run("sbatch", "--wait", f"--output={tmp}/{name}-%A_%a.out", *options,
                                         cwd=work))

    def one(*command, work=tmp):
        return timed(lambda: cluster.run(*command, cwd=work))

    results = {"cluster start s": round(started, 2)}
    (tmp / "noop.sh").write_text("#!/bin/bash\ntrue\n")
    results["empty 4-task array, sbatch --wait s"] = round(sbatch("noop", "--array=0-3", str(tmp / "noop.sh")), 2)

    videos = sorted(str(p) for p in (diem / "video").iterdir())
    cluster.env.update(VIDEOS=f"{diem}/video/*.avi", OUT=str(tmp / "flows"), FLOW_ARGS="--resize fixed:240x320")
    flow_array = sbatch("flow", array, str(RECIPES / "flow.sbatch"))
    flow_one = one(*dynsal, "flow", *videos, "-o", str(tmp / "flows1"), "--resize", "fixed:240x320", "--no-progress")
    results["flow frames/s"] = {"one process": round(frames / flow_one, 2),
                                f"array of {args.shards}": round(frames / flow_array, 2)}

    del cluster.env["OUT"]  # the dataset's default, data/
    work, single = tmp / "work", tmp / "single"
    work.mkdir()
    single.mkdir()
    build_array = sbatch("dataset", array, str(RECIPES / "dataset.sbatch"), work=work)
    merge = sbatch("merge", str(RECIPES / "merge.sbatch"), work=work)
    build_one = one(*dynsal, "make-lmdb", "--videos", f"{diem}/video", "--gaze", f"{diem}/event_data",
                    "--split-preset", "diem", "-o", "data", "--resize", "fixed:240x320", "--no-progress", work=single)
    manifests = [work / "data" / f"{split}_lmdb_manifest.json" for split in ("train", "val")]
    samples = sum(json.loads(path.read_text())["count"] for path in manifests)
    results["dataset samples/s"] = {"one process": round(samples / build_one, 2),
                                    f"array of {args.shards} + merge": round(samples / (build_array + merge), 2),
                                    "merge alone s": round(merge, 2)}

    subprocess.run([*dynsal, "zoo", "write", "prototxt"], cwd=work, check=True, capture_output=True)
    train = [*dynsal, "train", "prototxt/ssnet_solver.prototxt", "--engine", "torch", "--device", "cpu", "--quiet",
             "--no-test-initialization", "--max-iter", str(args.iterations)]
    batch = 2  # the zoo's train batch per rank
    rates = {}
    for ranks in (1, 2):
        seconds = one("srun", f"-N{ranks}", f"-n{ranks}", *train, work=work)
        rates[f"srun -N{ranks} -n{ranks}"] = round(args.iterations * batch * ranks / seconds, 3)
    results["ssnet training samples/s (240x320, incl. start-up)"] = rates

    weights = zoo_weights("stsconv", tmp)
    cluster.env.update(INPUTS=f"{diem}/video/*.avi", WEIGHTS=str(weights), OUT=str(tmp / "maps"))
    predict_array = sbatch("predict", array, str(RECIPES / "predict.sbatch"))
    predict_one = one(*dynsal, "predict", "--net", "stsconv", "--weights", str(weights), "--resize", "fixed:240x320",
                      "--engine", "torch", "--device", "cpu", "--no-overlay", "--quiet", "-o", str(tmp / "maps1"),
                      *videos)
    results["stsconv prediction frames/s (240x320)"] = {"one process": round(frames / predict_one, 2),
                                                        f"array of {args.shards}": round(frames / predict_array, 2)}
    return {"benchmark": "recipes/slurm stages on a local SLURM cluster (2 slurmd nodes, one host)",
            "input": f"{args.videos} videos × {args.frames} frames, 356-360×640", "cpus": os.cpu_count(),
            "machine": platform.machine(), "results": results}


if __name__ == "__main__":
    main()
