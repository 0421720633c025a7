"""Issue 13, defect 1: `dynsal predict` writes only inside the output folder, never on or around an input,
and replaces only what it made. Each refusal is one line, exit status 1, with nothing touched."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys

import pytest

from tests.interrupting import SAFETY_NET_S
from tests.reliability.predict_setup import frame_folder, maps_of, net_args, predict, snapshot, tiny_model, video

pytest.importorskip("torch", reason="prediction runs the torch engine")

#: `python -c _PARKED_PREDICT N ARGS`: `dynsal ARGS`, parked (it prints "parked", then waits for stdin to close)
#: after the N-th map is written, so a test kills it at a state it has seen
_PARKED_PREDICT = """
import sys
from dynsal.cli import main
from dynsal.commands import predict

frame_done, maps = predict._frame_done, []

def parking(*args):
    maps.append(frame_done(*args))
    if len(maps) == int(sys.argv[1]):
        print("parked", flush=True)
        sys.stdin.read()
    return maps[-1]

predict._frame_done = parking
sys.exit(main(sys.argv[2:]))
"""


@pytest.fixture()
def model(tmp_path_factory):
    return tiny_model(tmp_path_factory.mktemp("model"))


def refused(capsys, root, *args, skip=()):
    """Run predict; assert it refused in one line with nothing under `root` touched; return the line."""
    before = snapshot(root, skip)
    status, out, err = predict(capsys, *args)
    assert status == 1 and len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert snapshot(root, skip) == before
    return err.strip()


def test_frames_written_over_their_own_folder_are_refused(model, tmp_path, monkeypatch, capsys):
    """`cd d && dynsal predict shots -o .` replaced the input frames with maps."""
    frame_folder(tmp_path / "shots")
    monkeypatch.chdir(tmp_path)
    line = refused(capsys, tmp_path, *net_args(model), "shots", "-o", ".")
    assert line == ("dynsal predict: error: the output shots would be the input shots itself; choose an output "
                    "folder (-o) outside the inputs")


def test_dhf1k_annotation_folder_is_not_replaced(model, tmp_path, capsys):
    """`dynsal predict dhf/annotation/0001/images -o dhf/annotation` deleted 0001/{images,maps,fixation}."""
    video_dir = tmp_path / "dhf" / "annotation" / "0001"
    frame_folder(video_dir / "images")
    frame_folder(video_dir / "maps")
    frame_folder(video_dir / "fixation")
    line = refused(capsys, tmp_path, *net_args(model), str(video_dir / "images"), "-o", str(video_dir.parent))
    assert f"the output {video_dir} would replace a folder holding the input {video_dir / 'images'}" in line


def test_input_dot_is_named_after_its_folder_and_never_holds_the_output(model, tmp_path, monkeypatch, capsys):
    """Input `.` removed the whole output folder (its name was '')."""
    shots = frame_folder(tmp_path / "shots")
    monkeypatch.chdir(shots)
    line = refused(capsys, tmp_path, *net_args(model), ".")  # default -o saliency: inside the frame folder
    assert "the output saliency/shots would be inside the input folder ." in line
    (tmp_path / "out" / "other").mkdir(parents=True)  # the output folder's other contents stay
    before = snapshot(tmp_path, skip=[tmp_path / "out"])
    status, out, _ = predict(capsys, *net_args(model), ".", "-o", str(tmp_path / "out"))
    assert status == 0 and snapshot(tmp_path, skip=[tmp_path / "out"]) == before
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["other", "shots", "shots_overlay.mp4"]
    assert len(maps_of(tmp_path / "out" / "shots")) == 4


def test_input_dotdot_writes_only_inside_the_named_output(model, tmp_path, monkeypatch, capsys):
    """Input `..` with `-o results/run1` wiped results/run0 (the name '..' made the output results/run1/..)."""
    run0 = frame_folder(tmp_path / "results" / "run0")
    (run0 / "notes").mkdir()
    (tmp_path / "results" / "run1").mkdir()
    monkeypatch.chdir(run0 / "notes")
    before = snapshot(tmp_path, skip=[tmp_path / "results" / "run1"])
    status, out, err = predict(capsys, *net_args(model), "..", "-o", "../../run1")
    assert status == 0, err
    assert snapshot(tmp_path, skip=[tmp_path / "results" / "run1"]) == before
    assert sorted(p.name for p in (tmp_path / "results" / "run1").iterdir()) == ["run0", "run0_overlay.mp4"]


def test_a_partial_named_input_beside_its_namesake(model, tmp_path, capsys):
    """Inputs x.partial.mp4 and x.mp4 in one run: the second's unfinished outputs deleted the first's maps."""
    first, second = video(tmp_path / "x.partial.mp4"), video(tmp_path / "x.mp4", count=3)
    status, out, err = predict(capsys, *net_args(model), str(first), str(second), "-o", str(tmp_path / "out"))
    assert status == 0, err
    assert len(maps_of(tmp_path / "out" / "x.partial")) == 4 and len(maps_of(tmp_path / "out" / "x")) == 3
    assert json.loads((tmp_path / "out" / "x.partial" / "settings.json").read_text())["input"] == str(first)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["x", "x.partial", "x.partial_overlay.mp4",
                                                                    "x_overlay.mp4"]


def test_two_inputs_with_one_output_name_are_refused_naming_both(model, tmp_path, capsys):
    first, second = video(tmp_path / "a" / "clip.avi"), frame_folder(tmp_path / "b" / "clip")
    line = refused(capsys, tmp_path, *net_args(model), str(first), str(second), "-o", str(tmp_path / "out"))
    assert f"{first} and {second} would both write outputs named 'clip'" in line
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("planted", ["folder", "video", "partial", "lock"])
def test_what_dynsal_did_not_make_is_never_replaced(model, tmp_path, capsys, planted):
    """A folder/file of the user's at any path dynsal would write (or, for --overwrite, replace) is refused."""
    clip = video(tmp_path / "clip.avi")
    out = tmp_path / "out"
    path = {"folder": out / "clip", "video": out / "clip_overlay.mp4", "partial": out / ".clip.partial",
            "lock": out / ".clip.lock"}[planted]
    if planted in ("folder", "partial"):
        path.mkdir(parents=True)
        (path / "mine.png").write_bytes(b"the user's")
    else:
        path.parent.mkdir(parents=True)
        path.write_bytes(b"the user's")
    line = refused(capsys, tmp_path, *net_args(model), str(clip), "-o", str(out))
    assert line == (f"dynsal predict: error: {path} exists and was not made by dynsal predict; move it away or "
                    "choose another output folder (-o)")


def test_overwrite_replaces_only_what_dynsal_wrote(model, tmp_path, capsys):
    clip = video(tmp_path / "clip.avi")
    out = tmp_path / "out"
    assert predict(capsys, *net_args(model), str(clip), "-o", str(out))[0] == 0
    (out / "clip" / "notes.txt").write_text("mine")
    line = refused(capsys, tmp_path, *net_args(model), str(clip), "-o", str(out), "--overwrite")
    assert line == (f"dynsal predict: error: {out / 'clip'} holds notes.txt, which dynsal did not write; move it "
                    "out before --overwrite replaces the folder")
    (out / "clip" / "notes.txt").unlink()
    (out / "keep.txt").write_text("mine")
    status, text, err = predict(capsys, *net_args(model), str(clip), "-o", str(out), "--overwrite", "--no-overlay",
                                "--end", "2")
    assert status == 0 and "clip: 2 maps" in text, err
    # the old overlay was dynsal's and no longer matches the maps: gone; the user's file stays
    assert sorted(p.name for p in out.iterdir()) == ["clip", "keep.txt"]
    assert sorted(p.name for p in (out / "clip").iterdir()) == ["000000.png", "000001.png", "settings.json"]


def test_a_killed_run_leaves_nothing_that_looks_complete_and_resumes(model, tmp_path, capsys):
    """What kill -9 leaves (a marked `.clip.partial`, a lock file) is dropped and the input redone."""
    clip = video(tmp_path / "clip.avi")
    out = tmp_path / "out"
    assert predict(capsys, *net_args(model), str(clip), "-o", str(tmp_path / "clean"))[0] == 0
    (out / ".clip.partial").mkdir(parents=True)
    (out / ".clip.partial" / ".dynsal-partial").write_bytes(b"")
    (out / ".clip.partial" / "000000.png").write_bytes(b"half a PNG")
    (out / ".clip.lock").write_text("dynsal lock {}")
    status, text, err = predict(capsys, *net_args(model), str(clip), "-o", str(out))
    assert status == 0 and "clip: 4 maps" in text, err
    assert sorted(p.name for p in out.iterdir()) == ["clip", "clip_overlay.mp4"]
    clean, resumed = maps_of(tmp_path / "clean" / "clip"), maps_of(out / "clip")
    assert clean.keys() == resumed.keys() and all((clean[k] == resumed[k]).all() for k in clean)


def test_an_interrupted_replacement_is_finished_by_the_next_run(model, tmp_path, capsys):
    """Killed between the renames of a commit (new output staged, old one moved aside): the rerun finishes it."""
    clip = video(tmp_path / "clip.avi")
    out = tmp_path / "out"
    assert predict(capsys, *net_args(model), str(clip), "-o", str(out), "--end", "3")[0] == 0
    assert predict(capsys, *net_args(model), str(clip), "-o", str(tmp_path / "new"), "--end", "3")[0] == 0
    shutil.copytree(tmp_path / "new" / "clip", out / ".clip.partial")  # staged, its record written last
    (out / "clip").rename(out / ".clip.replaced")  # the old output, moved aside
    status, text, err = predict(capsys, *net_args(model), str(clip), "-o", str(out), "--end", "3")
    assert status == 0 and "already complete" in text, err
    assert sorted(p.name for p in out.iterdir()) == ["clip", "clip_overlay.mp4"]
    assert len(maps_of(out / "clip")) == 3


@pytest.mark.timing_sensitive
def test_kill_9_mid_run_then_rerun_gives_the_uninterrupted_maps(model, tmp_path, capsys):
    """A real `kill -9` while maps are being written (the run parked after its third map, so it cannot have
    ended first): nothing looks complete, and the rerun ends equal to a run that was never interrupted."""
    clip = video(tmp_path / "clip.avi", count=60)
    out = tmp_path / "out"
    command = [sys.executable, "-c", _PARKED_PREDICT, "3", "predict", *net_args(model), str(clip), "-o", str(out)]
    process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                               text=True, env=os.environ)
    assert process.stdout.readline() == "parked\n"
    assert len(list((out / ".clip.partial").glob("*.png"))) == 3
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=SAFETY_NET_S)
    assert process.returncode == -signal.SIGKILL
    assert not (out / "clip").exists() and not (out / "clip_overlay.mp4").exists()
    status, text, err = predict(capsys, *net_args(model), str(clip), "-o", str(out))
    assert status == 0 and "clip: 60 maps" in text, err
    assert sorted(p.name for p in out.iterdir()) == ["clip", "clip_overlay.mp4"]
    assert predict(capsys, *net_args(model), str(clip), "-o", str(tmp_path / "clean"))[0] == 0
    clean, resumed = maps_of(tmp_path / "clean" / "clip"), maps_of(out / "clip")
    assert clean.keys() == resumed.keys() and all((clean[k] == resumed[k]).all() for k in clean)
