"""`--shard slurm` on a real SLURM cluster: array jobs give what one machine gives.

A 3-task `sbatch --wait --array` of `make-lmdb --shard slurm` then the merge equals a one-machine
build record for record, byte for byte; a task killed mid-way (SIGKILL after its first video is committed) and
resubmitted alone resumes to the same dataset; `predict --shard slurm` over 4 videos as a 3-task array
writes the maps one run writes.
"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from dynsal.cli import main
from tests.data.readers import lmdb_contents, lmdb_files
from tests.data.synthetic import panning_video, steady_gaze
from tests.predict.helpers import zoo_weights

LENGTHS = {"a_64x48": 4, "b_64x48": 3, "c_64x48": 3, "d_64x48": 2, "e_64x48": 2, "f_64x48": 2}
#: a make-lmdb run that dies by SIGKILL at the first sample after its first committed video
KILLED_MID_WAY = """
import os, signal, sys
from dynsal.cli import main
from dynsal.data.lmdb_writer import LmdbWriter
commit, put, committed = LmdbWriter.commit, LmdbWriter.put, []
def commit_and_arm(self):
    commit(self)
    committed.append(True)
def put_or_die(self, sample):
    if committed:
        os.kill(os.getpid(), signal.SIGKILL)
    put(self, sample)
LmdbWriter.commit, LmdbWriter.put = commit_and_arm, put_or_die
sys.exit(main(sys.argv[1:]))
"""


@pytest.fixture(scope="module")
def diem(tmp_path_factory):
    """Six panning videos of 4, 3, 3, 2, 2, 2 frames with three viewers' gaze each: (videos, gaze)."""
    root = tmp_path_factory.mktemp("diem")
    videos, gaze = root / "video", root / "gaze"
    videos.mkdir()
    for seed, (name, count) in enumerate(LENGTHS.items()):
        panning_video(videos / f"{name}.avi", count, 48, 64, seed=seed)
        steady_gaze(gaze, name, count, (64, 48))
    return videos, gaze


def array_script(folder: Path, name: str, command: str) -> Path:
    """A batch script running `command` (with $PY = this Python), its output in folder/logs."""
    (folder / "logs").mkdir(exist_ok=True)
    script = folder / f"{name}.sh"
    script.write_text(f"#!/bin/bash\n#SBATCH -o {folder}/logs/{name}-%a.out\nset -e\nPY={sys.executable}\n{command}\n")
    return script


def dataset(root: Path):
    """What a built split is: every LMDB record's key and value bytes (what Caffe's Data layer reads), the
    databases' data.mdb files and the manifest's bytes."""
    return lmdb_contents(root), lmdb_files(root), (root / "train_lmdb_manifest.json").read_bytes()


def make_lmdb_args(diem, out: Path):
    return ["make-lmdb", "--videos", str(diem[0]), "--gaze", str(diem[1]), "--splits", "train", "--resize",
            "fixed:24x32", "--sigma", "5px", "--mirror", "-o", str(out), "--no-progress"]


def test_make_lmdb_array_then_merge_equals_one_machine(slurm, diem, tmp_path):
    out = tmp_path / "sharded"
    args = " ".join(make_lmdb_args(diem, out))
    script = array_script(tmp_path, "build", f"$PY -m dynsal {args} --shard slurm")
    slurm.run("sbatch", "--wait", "--array=0-2", str(script), cwd=tmp_path)
    shards = sorted(p.name for p in (out / "shards").iterdir())
    assert shards == ["train_0of3", "train_1of3", "train_2of3"]
    assert main(make_lmdb_args(diem, out) + ["--merge-only"]) == 0
    assert main(make_lmdb_args(diem, tmp_path / "one")) == 0
    assert dataset(out) == dataset(tmp_path / "one")  # byte for byte


def test_a_killed_task_resubmitted_alone_resumes(slurm, diem, tmp_path, capsys):
    out = tmp_path / "sharded"
    args = " ".join(make_lmdb_args(diem, out))
    (tmp_path / "kill.py").write_text(KILLED_MID_WAY)
    script = array_script(tmp_path, "build", f'if [ "$SLURM_ARRAY_TASK_ID" = 1 ] && [ -n "$KILL_TASK_1" ]; then\n'
                          f"  $PY {tmp_path / 'kill.py'} {args} --shard slurm/3\nelse\n"
                          f"  $PY -m dynsal {args} --shard slurm/3\nfi")
    slurm.env["KILL_TASK_1"] = "1"
    try:
        failed = slurm.run("sbatch", "--wait", "--array=0-2", str(script), cwd=tmp_path, check=False)
    finally:
        del slurm.env["KILL_TASK_1"]
    assert failed.returncode != 0  # the killed task fails the array
    progress = json.loads((out / "shards" / "train_1of3" / ".train_lmdb.partial" / "progress.json").read_text())
    assert len(progress["done"]) == 1  # killed after one of its two videos
    assert main(make_lmdb_args(diem, out) + ["--merge-only"]) == 1
    err = capsys.readouterr().err
    assert "train_1of3: shard not finished" in err and "(not finished: shard 1 of 3)" in err
    slurm.run("sbatch", "--wait", "--array=1", str(script), cwd=tmp_path)  # task 1 alone, resuming
    assert main(make_lmdb_args(diem, out) + ["--merge-only"]) == 0
    assert main(make_lmdb_args(diem, tmp_path / "one")) == 0
    assert dataset(out) == dataset(tmp_path / "one")


def maps(folder: Path):
    """{video: {png name: map}} of a predict output folder."""
    return {video.name: {p.name: cv2.imread(str(p), cv2.IMREAD_UNCHANGED) for p in sorted(video.glob("*.png"))}
            for video in sorted(folder.iterdir()) if video.is_dir()}


def test_predict_array_equals_one_run(slurm, tmp_path):
    videos = [panning_video(tmp_path / f"v{i}.avi", n, 40, 56, seed=i) for i, n in enumerate((5, 3, 2, 2))]
    weights = zoo_weights("stsconv", tmp_path)
    common = ["--net", "stsconv", "--weights", str(weights), "--engine", "torch", "--device", "cpu", "--workers",
              "0", "--no-overlay", "--npz", "--quiet", *map(str, videos)]
    script = array_script(tmp_path, "predict", f"$PY -m dynsal predict {' '.join(common)} -o {tmp_path / 'array'} "
                          "--shard slurm")
    slurm.run("sbatch", "--wait", "--array=0-2", str(script), cwd=tmp_path)
    logs = [(tmp_path / "logs" / f"predict-{i}.out").read_text() for i in range(3)]
    done = [re.findall(r"^(v\d): \d maps", log, re.M) for log in logs]
    assert done == [["v0"], ["v1"], ["v2", "v3"]]  # balanced by frames: 5 | 3 | 2 + 2 (not v0 + v3 | v1 | v2)
    assert main(["predict", *common, "-o", str(tmp_path / "one")]) == 0
    array, one = maps(tmp_path / "array"), maps(tmp_path / "one")
    assert sorted(one) == ["v0", "v1", "v2", "v3"] and array.keys() == one.keys()
    for video in one:
        assert array[video].keys() == one[video].keys()
        assert all(np.array_equal(array[video][name], one[video][name]) for name in one[video])
        with np.load(tmp_path / "array" / video / "maps.npz") as a, np.load(tmp_path / "one" / video / "maps.npz") as b:
            assert all(np.array_equal(a[k], b[k]) for k in b.files)
