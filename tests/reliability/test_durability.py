"""Power loss: every file is flushed to the disk before the rename that publishes it, and the folder after
it, so a crash leaves the old file or the new one, never an empty file under the new name. Checked by
recording the order of `os.fsync` and `os.replace` calls (a power cut cannot be made in a test)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from dynsal import files
from dynsal.cli import main
from tests.data.synthetic import panning_video, steady_gaze
from tests.reliability.predict_setup import net_args, predict, tiny_model, video


@pytest.fixture()
def events(monkeypatch):
    """('fsync', path) and ('replace', source, target) in the order they happen."""
    recorded = []
    fsync, replace = os.fsync, os.replace

    def recording_fsync(fd):
        recorded.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        fsync(fd)

    def recording_replace(source, target, **kwargs):
        replace(source, target, **kwargs)
        recorded.append(("replace", str(Path(source).resolve()), str(Path(target).resolve())))

    monkeypatch.setattr(os, "fsync", recording_fsync)
    monkeypatch.setattr(os, "replace", recording_replace)
    return recorded


def _synced_before_and_after(events, target: Path) -> bool:
    """True when `target` was renamed into place from a file synced before, and its folder synced after."""
    for i, event in enumerate(events):
        if event[0] == "replace" and event[2] == str(target.resolve()):
            return ("fsync", event[1]) in events[:i] and ("fsync", str(target.parent.resolve())) in events[i:]
    return False


def test_write_atomic_and_atomic_output_sync_the_file_then_the_folder(tmp_path, events):
    files.write_atomic(tmp_path / "a.bin", b"data")
    with files.atomic_output(tmp_path / "b.bin") as tmp:
        tmp.write_bytes(b"by name")
    assert _synced_before_and_after(events, tmp_path / "a.bin")
    assert _synced_before_and_after(events, tmp_path / "b.bin")


def test_a_folder_that_cannot_be_synced_is_no_error(tmp_path, monkeypatch):
    """Some file systems refuse fsync on a folder (EINVAL): the data is written all the same."""
    def refuse(fd):
        raise OSError(22, "Invalid argument")

    monkeypatch.setattr(os, "fsync", lambda fd: None if Path(os.readlink(f"/proc/self/fd/{fd}")).is_file()
                        else refuse(fd))
    files.write_atomic(tmp_path / "a.bin", b"data")
    assert (tmp_path / "a.bin").read_bytes() == b"data"


def test_a_predicted_output_is_on_the_disk_before_it_is_published(tmp_path, events, capsys):
    """Maps, video and settings.json are synced in the staging folder; the output folder is synced after the
    video moves in and after the staging folder is renamed to its final name."""
    model = tiny_model(tmp_path / "model")
    clip, out = video(tmp_path / "clip.avi"), tmp_path / "out"
    status, _, err = predict(capsys, *net_args(model), str(clip), "-o", str(out))
    assert status == 0, err
    final, staging = out / "clip", out / ".clip.partial"
    for name in ("000000.png", "000003.png", "settings.json"):
        assert _synced_before_and_after(events, staging / name), name
    assert ("fsync", str((staging / "clip_overlay.mp4").resolve())) in events
    publish = events.index(("replace", str(staging.resolve()), str(final.resolve())))
    assert ("fsync", str(out.resolve())) in events[publish:]
    video_moved = events.index(("replace", str((staging / "clip_overlay.mp4").resolve()),
                                str((out / "clip_overlay.mp4").resolve())))
    assert ("fsync", str(out.resolve())) in events[video_moved:publish]


@pytest.mark.parametrize("backend", ["lmdb", "hdf5"])
def test_a_dataset_is_on_the_disk_before_its_manifest(tmp_path, events, backend):
    """The moved outputs' folder is synced before the manifest is renamed into place; HDF5 files are synced."""
    panning_video(tmp_path / "a_64x48.avi", 4, 48, 64)
    steady_gaze(tmp_path / "gaze", "a_64x48", 4, (64, 48))
    out = tmp_path / "out"
    assert main([f"make-{backend}", "--videos", str(tmp_path / "a_64x48.avi"), "--gaze", str(tmp_path / "gaze"),
                 "-o", str(out), "--resize", "fixed:24x32", "--sigma", "5px", "--no-progress"]) == 0
    manifest = next(i for i, event in enumerate(events)
                    if event[0] == "replace" and event[2] == str((out / f"train_{backend}_manifest.json").resolve()))
    last_move = max(i for i, event in enumerate(events[:manifest])
                    if event[0] == "replace" and Path(event[2]).name.startswith("train_"))
    assert ("fsync", str(out.resolve())) in events[last_move:manifest]
    if backend == "hdf5":
        assert any(kind == "fsync" and path.endswith(".h5") for kind, path, *_ in events)
