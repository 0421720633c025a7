"""Defect 8 (and 10's HDF5 temp names): files get the user's umask, temporary files are created exclusively."""
from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from dynsal import files
from tests.data.synthetic import panning_video, steady_gaze
from tests.engines.test_solver import tiny_solver
from tests.reliability.faults import changed, run_dynsal, tree


def _modes(folder: Path):
    return {str(p.relative_to(folder)): stat.S_IMODE(p.stat().st_mode) for p in folder.rglob("*") if p.is_file()}


@pytest.mark.parametrize("umask", [0o077, 0o002])
def test_written_files_follow_the_umask(tmp_path, umask):
    """zoo write (prototxt), flow (PNG, .flo, JSON), make-lmdb (manifest), make-hdf5 (list file, .h5),
    train (binary and HDF5 snapshots, log, resolved solver): every file is 0666 & ~umask."""
    panning_video(tmp_path / "a_64x48.avi", 4, 48, 64)
    steady_gaze(tmp_path / "gaze", "a_64x48", 4, (64, 48))
    solver = Path(tiny_solver(tmp_path, "snapshot_format: HDF5", max_iter=4))
    solver.write_text(solver.read_text().replace("snapshot: 4", "snapshot: 2"))
    binary = tmp_path / "binary.prototxt"
    binary.write_text(solver.read_text().replace("snapshot_format: HDF5", "").replace("snap/tiny", "snap/bin"))
    commands = [["zoo", "write", "out/zoo"], ["flow", "a_64x48.avi", "-o", "out/flow", "--flo"],
                ["make-lmdb", "--videos", "a_64x48.avi", "--gaze", "gaze", "-o", "out/lmdb", "--resize", "fixed:24x32",
                 "--sigma", "5px", "--no-progress"],
                ["make-hdf5", "--videos", "a_64x48.avi", "--gaze", "gaze", "-o", "out/hdf5", "--resize", "fixed:24x32",
                 "--sigma", "5px", "--no-progress"],
                ["train", solver.name, "--engine", "torch", "--no-progress"],
                ["train", binary.name, "--engine", "torch", "--no-progress"]]
    old = os.umask(umask)
    try:
        for command in commands:
            result = run_dynsal(command, cwd=tmp_path)
            assert result.returncode == 0, result.stderr
    finally:
        os.umask(old)
    modes = {**_modes(tmp_path / "out"), **_modes(tmp_path / "snap")}
    for name in ("zoo/ssnet_deploy.prototxt", "flow/a_64x48/000001.png", "flow/a_64x48/000001.flo",
                 "flow/a_64x48/flow_settings.json", "lmdb/train_lmdb_manifest.json", "hdf5/train_h5.txt",
                 "hdf5/train_h5/train_00000.h5", "tiny_iter_2.caffemodel.h5", "tiny_iter_4.solverstate.h5",
                 "bin_iter_2.caffemodel", "bin_iter_4.solverstate", "tiny_log.jsonl", "tiny_solver.resolved.prototxt"):
        assert name in modes, name
    wanted = 0o666 & ~umask
    assert {name: oct(mode) for name, mode in modes.items() if mode != wanted} == {}


def test_temporary_names_never_follow_a_planted_symlink(tmp_path, monkeypatch):
    """A symlink planted at the next temporary name is skipped, and its target is not touched."""
    victim = tmp_path / "victim"
    victim.write_text("keep me")
    names = iter(["planted", "fresh"])
    monkeypatch.setattr(files.secrets, "token_hex", lambda n: next(names))
    (tmp_path / ".out.bin.planted.tmp").symlink_to(victim)
    files.write_atomic(tmp_path / "out.bin", b"data")
    assert (tmp_path / "out.bin").read_bytes() == b"data" and victim.read_text() == "keep me"
    assert (tmp_path / ".out.bin.planted.tmp").is_symlink()
    assert not (tmp_path / ".out.bin.fresh.tmp").exists()


def test_hdf5_snapshots_ignore_symlinks_at_the_old_predictable_temp_name(tmp_path):
    """Snapshots used to go through `.<name>.tmp`; a symlink planted there must not redirect the write."""
    solver = Path(tiny_solver(tmp_path, "snapshot_format: HDF5", max_iter=4))
    (tmp_path / "snap").mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    for name in ("tiny_iter_4.caffemodel.h5", "tiny_iter_4.solverstate.h5"):
        (tmp_path / "snap" / f".{name}.tmp").symlink_to(victim)
    before = tree(tmp_path)
    result = run_dynsal(["train", solver.name, "--engine", "torch", "--no-progress"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert victim.read_text() == "keep me"
    assert all(name.startswith("snap/") or name == "snap" for name in changed(before, tree(tmp_path)))


def test_failed_write_leaves_no_temporary_file_and_names_the_target(tmp_path):
    class Boom(Exception):
        pass

    with pytest.raises(Boom):
        with files.atomic_output(tmp_path / "x.h5"):
            raise Boom()
    with pytest.raises(IsADirectoryError) as caught:
        (tmp_path / "folder").mkdir()
        files.write_atomic(tmp_path / "folder", b"data")
    assert caught.value.filename == str(tmp_path / "folder")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["folder"]


@pytest.mark.parametrize("umask", [0o077, 0o002])
def test_exports_follow_the_umask(tmp_path, umask):
    """`dynsal export` wrote its .onnx and .pt through mkstemp, 0600 whatever the umask."""
    pytest.importorskip("torch", reason="TorchScript exports need torch")
    (tmp_path / "small.prototxt").write_text(
        'name: "small" input: "x" input_shape { dim: 1 dim: 3 dim: 8 dim: 8 }\n'
        'layer { name: "conv" type: "Convolution" bottom: "x" top: "y" convolution_param { num_output: 2 '
        'kernel_size: 3 weight_filler { type: "xavier" } } }\n')
    old = os.umask(umask)
    try:
        for name in ("net.onnx", "net.pt"):
            result = run_dynsal(["export", "small.prototxt", "-o", f"out/{name}"], cwd=tmp_path)
            assert result.returncode == 0, result.stderr
    finally:
        os.umask(old)
    assert _modes(tmp_path / "out") == {"net.onnx": 0o666 & ~umask, "net.pt": 0o666 & ~umask}
