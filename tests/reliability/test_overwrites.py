"""Defect 10: dataset builds never replace what dynsal did not make, and trust a staging progress file only
for the outputs a build of its split makes; two builds of one split and format never run at once."""
from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from dynsal.cli import main
from dynsal.data import build as B
from dynsal.errors import DataError
from tests.data.readers import lmdb_contents
from tests.data.synthetic import panning_video, steady_gaze
from tests.interrupting import SAFETY_NET_S
from tests.reliability.faults import changed, lock_holder, run_dynsal, tree


@pytest.fixture()
def inputs(tmp_path):
    folder = tmp_path / "inputs"
    (folder / "video").mkdir(parents=True)
    panning_video(folder / "video" / "a_64x48.avi", 4, 48, 64)
    steady_gaze(folder / "gaze", "a_64x48", 4, (64, 48))
    return ["--videos", str(folder / "video"), "--gaze", str(folder / "gaze"), "--resize", "fixed:24x32", "--sigma",
            "5px", "--no-progress"]


@pytest.mark.parametrize("backend, existing", [("lmdb", "train_frames_lmdb"), ("lmdb", "train_maps_lmdb"),
                                               ("hdf5", "train_h5.txt"), ("hdf5", "train_h5")])
def test_an_output_without_manifest_is_not_replaced(tmp_path, inputs, backend, existing):
    """make-lmdb replaced an existing `train_frames_lmdb` that no manifest records; now it refuses, touching
    nothing (not even a staging folder), and replaces it only with --overwrite."""
    out = tmp_path / "out"
    out.mkdir()
    target = out / existing
    if existing.endswith(".txt"):
        target.write_text("the user's own list\n")
    else:
        target.mkdir()
        (target / "data.mdb").write_text("the user's own data")
    before = tree(tmp_path)
    result = run_dynsal([f"make-{backend}", *inputs, "-o", out])
    assert result.returncode == 1
    assert result.error_line() == (f"dynsal make-{backend}: error: {target}: exists, and no finished-dataset manifest "
                                   f"(train_{backend}_manifest.json) says dynsal made it; move it away, or pass "
                                   "--overwrite to replace it")
    assert changed(before, tree(tmp_path)) == []
    assert run_dynsal([f"make-{backend}", *inputs, "-o", out, "--overwrite"]).returncode == 0
    assert (out / f"train_{backend}_manifest.json").is_file()


def _interrupted_while_moving(tmp_path: Path, inputs, monkeypatch) -> Path:
    """A build stopped after recording its moves in progress.json, before making them (Ctrl-C there)."""
    def stop(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(B, "_move_outputs", stop)
    assert main(["make-lmdb", *inputs, "-o", str(tmp_path / "out")]) == 130
    monkeypatch.undo()
    progress = tmp_path / "out" / ".train_lmdb.partial" / "progress.json"
    assert "moves" in json.loads(progress.read_text())
    return progress


@pytest.mark.parametrize("forged", [
    lambda root, victim: [str(root / ".train_lmdb.partial" / "frames_lmdb"), str(victim)],
    lambda root, victim: [str(victim), str(root / "train_frames_lmdb")],
    lambda root, victim: [str(root / ".train_lmdb.partial" / ".."), str(root / "train_x")],
    lambda root, victim: "not a pair",
])
def test_forged_moves_in_progress_json_are_refused(tmp_path, inputs, monkeypatch, forged):
    """A forged `moves` entry made a rerun remove a folder outside the dataset (the move's target)."""
    progress = _interrupted_while_moving(tmp_path, inputs, monkeypatch)
    victim = tmp_path / "elsewhere" / "precious"
    victim.mkdir(parents=True)
    (victim / "thesis.tex").write_text("keep me")
    state = json.loads(progress.read_text())
    state["moves"].insert(0, forged(tmp_path / "out", victim))
    progress.write_text(json.dumps(state))
    before = tree(tmp_path)
    result = run_dynsal(["make-lmdb", *inputs, "-o", tmp_path / "out"])
    assert result.returncode == 1
    line = result.error_line()
    assert line.startswith(f"dynsal make-lmdb: error: {progress}: records a move ") and "delete" in line
    assert changed(before, tree(tmp_path)) == []


def test_a_genuine_interrupted_move_finishes_from_another_folder(tmp_path, inputs, monkeypatch):
    """Only the names are taken from progress.json, so a rerun naming the dataset another way (an absolute path,
    from another working folder) still finishes the moves, and ends with the uninterrupted build's records."""
    _interrupted_while_moving(tmp_path, inputs, monkeypatch)
    (tmp_path / "elsewhere").mkdir()
    result = run_dynsal(["make-lmdb", *inputs, "-o", (tmp_path / "out").resolve()], cwd=tmp_path / "elsewhere")
    assert result.returncode == 0, result.stderr
    assert not (tmp_path / "out" / ".train_lmdb.partial").exists()
    assert run_dynsal(["make-lmdb", *inputs, "-o", tmp_path / "fresh"]).returncode == 0
    assert lmdb_contents(tmp_path / "out") == lmdb_contents(tmp_path / "fresh")


@pytest.mark.parametrize("backend", ["lmdb", "hdf5"])
def test_a_second_build_of_the_split_is_refused_naming_the_first(tmp_path, inputs, backend):
    """While a build holds the split's lock, another is refused in one line naming it, touching nothing;
    the other format, and the same one once the lock is free, build."""
    out = tmp_path / "out"
    process = lock_holder(out / f".train_{backend}.lock", f"dynsal make-{backend}")
    try:
        before = tree(tmp_path)
        result = run_dynsal([f"make-{backend}", *inputs, "-o", out])
        after = tree(tmp_path)
        other = "hdf5" if backend == "lmdb" else "lmdb"
        assert run_dynsal([f"make-{other}", *inputs, "-o", out]).returncode == 0
    finally:
        process.stdin.close()
        process.wait(timeout=SAFETY_NET_S)
    assert result.returncode == 1
    line = result.error_line()
    assert line.startswith(f"dynsal make-{backend}: error: the train {backend} dataset in {out} is being written by "
                           f"dynsal make-{backend} (process {process.pid} on {socket.gethostname()}, since ")
    assert line.endswith("); wait for it to finish, or write to another folder")
    assert changed(before, after) == []
    assert run_dynsal([f"make-{backend}", *inputs, "-o", out]).returncode == 0
    assert not list(out.glob(".*.lock"))


def test_a_refused_build_leaves_no_folder_it_made(tmp_path, inputs, monkeypatch):
    """The lock's folder is made before the build's checks; when they refuse, the folders made for it go."""
    def refuse(*args):
        raise DataError("refused")

    monkeypatch.setattr(B, "_build_locked", refuse)
    assert main(["make-lmdb", *inputs, "-o", str(tmp_path / "new" / "out")]) == 1
    assert not (tmp_path / "new").exists()
