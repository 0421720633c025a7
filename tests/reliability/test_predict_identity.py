"""Issue 30: a changed input was taken as already done. A video replaced under the same name (same frame
count, other content) kept the old video's maps as "already complete", and so did a truncated download once
the complete file was copied over it. Now settings.json records the input's identity (size, modification
time, SHA-256; one hash over a frame folder's frames), a rerun compares it by content and refuses a change
naming it (`--overwrite` redoes it), and an input that changes while it is read is refused."""
from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest

from dynsal.errors import DataError
from dynsal.files import sha256_file
from dynsal.predict.inputs import expand_inputs
from dynsal.predict.predictor import Predictor
from tests.reliability.predict_setup import frame_folder, maps_of, net_args, predict, snapshot, tiny_model, video

pytest.importorskip("torch", reason="prediction runs the torch engine")

REFUSAL_END = "; rerun with --overwrite to replace them, or choose another output folder (-o)\n"


def replace_with(target, source):
    """Put `source`'s bytes at `target` as a re-download would (a new file renamed over the old one)."""
    shutil.copyfile(source, target.with_name(target.name + ".new"))
    os.replace(target.with_name(target.name + ".new"), target)


def test_a_video_replaced_under_its_name_is_refused_naming_the_change(tmp_path, capsys):
    model = tiny_model(tmp_path / "m")
    clip = video(tmp_path / "clip.avi", 4, seed=0)
    other = video(tmp_path / "other" / "clip.avi", 4, seed=7)  # same name and frame count
    out = tmp_path / "out"
    assert predict(capsys, *net_args(model), str(clip), "-o", str(out))[0] == 0
    recorded = json.loads((out / "clip" / "settings.json").read_text())["input_identity"]
    assert recorded == {"kind": "file", "size": clip.stat().st_size, "mtime_ns": clip.stat().st_mtime_ns,
                        "sha256": sha256_file(clip)}
    old, new = sha256_file(clip), sha256_file(other)
    replace_with(clip, other)
    before = snapshot(tmp_path)
    status, text, err = predict(capsys, *net_args(model), str(clip), "-o", str(out))
    assert status == 1 and len(err.splitlines()) == 1, err
    assert err.startswith(f"dynsal predict: {clip}: {out / 'clip'} holds the maps of another request (input content: "
                          f"sha256 {old[:12]}… → {new[:12]}… (") and err.endswith(REFUSAL_END), err
    assert text.startswith("done: 0 predicted, 0 already complete, 1 failed")
    assert snapshot(tmp_path) == before  # nothing touched
    status, text, err = predict(capsys, *net_args(model), str(clip), "-o", str(out), "--overwrite")
    assert status == 0 and "clip: 4 maps in" in text, err
    assert predict(capsys, *net_args(model), str(other), "-o", str(tmp_path / "fresh"))[0] == 0
    ours, fresh = maps_of(out / "clip"), maps_of(tmp_path / "fresh" / "clip")
    assert ours.keys() == fresh.keys() and all(np.array_equal(ours[k], fresh[k]) for k in ours)  # the new video's
    assert json.loads((out / "clip" / "settings.json").read_text())["input_identity"]["sha256"] == new
    assert predict(capsys, *net_args(model), str(clip), "-o", str(out))[1].startswith("clip: already complete")


def test_the_content_decides_not_the_modification_time(tmp_path, capsys):
    """`touch` keeps the output complete; other bytes under the old time (cp -p, rsync -t) do not."""
    model = tiny_model(tmp_path / "m")
    clip = video(tmp_path / "clip.avi", 4, seed=0)
    out = tmp_path / "out"
    assert predict(capsys, *net_args(model), str(clip), "-o", str(out))[0] == 0
    stamp = clip.stat()
    os.utime(clip, ns=(stamp.st_atime_ns, stamp.st_mtime_ns + 10 ** 9))
    assert predict(capsys, *net_args(model), str(clip), "-o", str(out))[1].startswith("clip: already complete")
    replace_with(clip, video(tmp_path / "other" / "clip.avi", 4, seed=7))
    os.utime(clip, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))  # the recorded time
    status, text, err = predict(capsys, *net_args(model), str(clip), "-o", str(out))
    assert status == 1 and "input content: sha256 " in err and "same modification time)" in err, err


def test_a_truncated_video_completed_later_is_redone_not_kept(tmp_path, capsys):
    """A 20-frame MJPG cut at 60% gave maps for the frames that decode; after the complete file was copied
    over it, the rerun said "already complete" and kept them."""
    model = tiny_model(tmp_path / "m")
    complete = video(tmp_path / "download" / "clip.avi", 20)
    clip = tmp_path / "clip.avi"
    clip.write_bytes(complete.read_bytes()[:int(complete.stat().st_size * 0.6)])
    out = tmp_path / "out"
    status, text, err = predict(capsys, *net_args(model), str(clip), "-o", str(out))
    decoded = len(maps_of(out / "clip"))
    assert status == 0 and 0 < decoded < 20 and "decoding stopped after frame" in err
    assert text.endswith("done: 1 predicted (1 truncated), 0 already complete, 0 failed\n"), text
    settings = json.loads((out / "clip" / "settings.json").read_text())
    assert (settings["declared_frames"], settings["decoded_frames"]) == (20, decoded)
    status, text, err = predict(capsys, *net_args(model), str(clip), "-o", str(out))  # the same truncated file
    assert status == 0 and text.endswith("done: 0 predicted, 1 already complete (1 truncated), 0 failed\n")
    replace_with(clip, complete)
    status, text, err = predict(capsys, *net_args(model), str(clip), "-o", str(out))
    assert status == 1 and text.startswith("done: 0 predicted, 0 already complete, 1 failed"), text
    assert "input content: sha256 " in err and "(size " in err, err
    assert len(maps_of(out / "clip")) == decoded
    status, text, err = predict(capsys, *net_args(model), str(clip), "-o", str(out), "--overwrite")
    assert status == 0 and err == "" and text.endswith("done: 1 predicted, 0 already complete, 0 failed\n"), err
    settings = json.loads((out / "clip" / "settings.json").read_text())
    assert len(maps_of(out / "clip")) == settings["frames"] == 20 and "declared_frames" not in settings


def test_a_frame_folder_with_a_replaced_frame_is_refused(tmp_path, capsys):
    model = tiny_model(tmp_path / "m")
    shots = frame_folder(tmp_path / "shots", count=4)
    out = tmp_path / "out"
    assert predict(capsys, *net_args(model), str(shots), "-o", str(out))[0] == 0
    recorded = json.loads((out / "shots" / "settings.json").read_text())["input_identity"]
    assert recorded["kind"] == "frames" and recorded["frames"] == 4
    frame = shots / "frame_002.png"
    frame.write_bytes((shots / "frame_000.png").read_bytes())
    status, text, err = predict(capsys, *net_args(model), str(shots), "-o", str(out))
    assert status == 1 and "holds the maps of another request (input content: sha256 " in err, err
    frame_folder(tmp_path / "shots", count=4)  # the original frames again: the same input
    assert predict(capsys, *net_args(model), str(shots), "-o", str(out))[1].startswith("shots: already complete")
    (shots / "frame_003.png").unlink()
    status, text, err = predict(capsys, *net_args(model), str(shots), "-o", str(out))
    assert status == 1 and "(frames 4 → 3, size " in err, err


def test_an_input_that_changes_while_it_is_read_is_not_kept(tmp_path):
    """A download still being written when predict reads it: the maps would mix two contents."""
    model = tiny_model(tmp_path / "m")
    clip = video(tmp_path / "clip.avi", 4)
    predictor = Predictor(None, str(model[0]), str(model[1]), engine="torch")
    [item] = expand_inputs([str(clip)])

    def grow(prediction):
        with open(clip, "ab") as handle:
            handle.write(b"more")

    with pytest.raises(DataError, match=f"{clip}: changed while dynsal read it \\(size "):
        predictor.predict_input(item, tmp_path / "out", on_frame=grow)
    assert not (tmp_path / "out" / "clip").exists() and not (tmp_path / "out" / ".clip.partial").exists()
