"""Defect 9: OS faults (full disk, read-only or unwritable folders) give one line with the path and the
errno text, a non-zero exit, nothing half-written that looks complete, and a rerun that resumes."""
from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from tests.data.readers import hdf5_contents, lmdb_contents
from tests.data.synthetic import panning_video, steady_gaze
from tests.engines.test_solver import tiny_solver
from tests.reliability.faults import changed, read_only_folder, run_dynsal, tmpfs, tree

BUILD = ["--resize", "fixed:48x64", "--sigma", "5px", "--no-progress"]


@pytest.fixture()
def diem(tmp_path):
    """Two 6-frame 48×64 videos with the gaze of three observers each: (inputs folder, build arguments)."""
    inputs = tmp_path / "inputs"
    for seed, name in enumerate(("a_64x48", "b_64x48")):
        (inputs / "video").mkdir(parents=True, exist_ok=True)
        panning_video(inputs / "video" / f"{name}.avi", 6, 48, 64, seed=seed)
        steady_gaze(inputs / "gaze", name, 6, (64, 48))
    return inputs, ["--videos", str(inputs / "video"), "--gaze", str(inputs / "gaze"), *BUILD]


@pytest.mark.parametrize("backend, size", [("lmdb", "200k"), ("hdf5", "600k")])
def test_full_disk_in_a_dataset_build_is_one_line_and_resumes(tmp_path, diem, backend, size):
    """make-lmdb (LMDB's `mdb_txn_commit: Input/output error`) and make-hdf5 (HDF5's failed chunk writes, which
    printed dozens of "Exception ignored" tracebacks and crashed with SIGSEGV) on a full tmpfs."""
    inputs, args = diem
    reference = tmp_path / "reference"
    assert run_dynsal([f"make-{backend}", *args, "-o", reference]).returncode == 0
    before = tree(inputs)
    with tmpfs(tmp_path / "small", size) as disk:
        result = run_dynsal([f"make-{backend}", *args, "-o", disk / "data"])
        assert result.returncode == 1
        line = result.error_line()
        assert line.startswith(f"dynsal make-{backend}: error: {disk / 'data'}/.train_{backend}.partial/")
        assert line.endswith("No space left on device; free some space and run the same command again "
                             "(finished work is kept)")
        assert not (disk / "data" / f"train_{backend}_manifest.json").exists()
        subprocess.run(["mount", "-o", "remount,size=20m", str(disk)], check=True)
        resumed = run_dynsal([f"make-{backend}", *args, "-o", disk / "data"])
        assert resumed.returncode == 0, resumed.stderr
        if backend == "lmdb":
            assert lmdb_contents(disk / "data", "train") == lmdb_contents(reference, "train")
        else:
            ours, fresh = hdf5_contents(disk / "data", "train"), hdf5_contents(reference, "train")
            assert all(np.array_equal(ours[k], fresh[k]) for k in fresh)
    assert changed(before, tree(inputs)) == []


@pytest.mark.parametrize("snapshot_format", ["BINARYPROTO", "HDF5"])
def test_full_disk_in_training_names_the_snapshot(tmp_path, monkeypatch, snapshot_format):
    """A snapshot that does not fit: one line naming it, no partial snapshot, the earlier ones intact."""
    solver = Path(tiny_solver(tmp_path, f"snapshot_format: {snapshot_format}", max_iter=200))
    solver.write_text(solver.read_text().replace("snap/tiny", "small/tiny"))
    before = tree(tmp_path)
    with tmpfs(tmp_path / "small", "16k") as disk:
        result = run_dynsal(["train", solver.name, "--engine", "torch", "--no-progress"], cwd=tmp_path)
        assert result.returncode == 1
        line = result.error_line()
        assert line.startswith("dynsal train: error: small/tiny_iter_") and "No space left on device" in line
        failed = line.split("error: ")[1].split(":")[0]
        assert not (tmp_path / failed).exists()
        assert not [p for p in disk.iterdir() if p.name.startswith(".")]  # no temporary file left
        suffix = ".h5" if snapshot_format == "HDF5" else ""
        for model in disk.glob(f"tiny_iter_*.caffemodel{suffix}"):
            assert run_dynsal(["info", model]).returncode == 0
    assert [p for p in changed(before, tree(tmp_path)) if not p.startswith("small")] == []


def test_full_disk_while_writing_the_training_log_names_the_log(tmp_path):
    solver = Path(tiny_solver(tmp_path, max_iter=100000))
    solver.write_text(solver.read_text().replace("snap/tiny", "small/tiny").replace("snapshot: 4", "snapshot: 0"))
    with tmpfs(tmp_path / "small", "8k"):
        result = run_dynsal(["train", solver.name, "--engine", "torch", "--no-progress"], cwd=tmp_path)
    assert result.returncode == 1
    assert result.error_line().startswith("dynsal train: error: small/tiny_log.jsonl: No space left on device")


def _commands(inputs: Path, out: Path, tmp_path: Path):
    solver = Path(tiny_solver(tmp_path, max_iter=2))
    solver.write_text(solver.read_text().replace("snap/tiny", f"{out}/snap/tiny"))
    video = inputs / "video" / "a_64x48.avi"
    log = tmp_path / "log.jsonl"
    log.write_text('{"iteration": 0, "phase": "train", "loss": 1.0, "lr": 0.1, "outputs": {}}\n')
    return {
        "make-lmdb": ["make-lmdb", "--videos", str(inputs / "video"), "--gaze", str(inputs / "gaze"), *BUILD, "-o",
                      out / "data"],
        "make-hdf5": ["make-hdf5", "--videos", str(inputs / "video"), "--gaze", str(inputs / "gaze"), *BUILD, "-o",
                      out / "data"],
        "flow": ["flow", video, "-o", out / "flows"],
        "zoo write": ["zoo", "write", out / "prototxt"],
        "train": ["train", solver, "--engine", "torch", "--no-progress"],
        "plot-log": ["plot-log", log, "-o", out / "curves.png"],
    }


@pytest.mark.parametrize("command", ["make-lmdb", "make-hdf5", "flow", "zoo write", "train", "plot-log"])
def test_unwritable_output_folder_is_one_line(tmp_path, diem, command):
    """Outputs under a folder nobody can write in (chmod 0555; as root, who ignores permissions, a read-only
    tmpfs): one line naming the path, exit 1, nothing written anywhere."""
    inputs, _ = diem
    with read_only_folder(tmp_path / "locked") as locked:
        argv = _commands(inputs, locked, tmp_path)[command]
        before = tree(tmp_path)
        result = run_dynsal(argv, cwd=tmp_path)
        assert result.returncode == 1
        line = result.error_line()
        assert line.startswith(f"dynsal {command.split()[0]}: error: {locked}/"), line
        assert "Read-only file system" in line or "Permission denied" in line
        assert changed(before, tree(tmp_path)) == []


def test_missing_input_file_is_one_line(tmp_path):
    result = run_dynsal(["plot-log", tmp_path / "nothing.jsonl", "-o", tmp_path / "x.png"])
    assert result.returncode == 1
    assert "nothing.jsonl" in result.error_line()
