"""Issue 13, defect 2 (the lock): two runs never write one output at once. The second refuses that input in
one line naming the holder; a lock whose holder died (kill -9) is free again; concurrent runs never corrupt."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys

import pytest

from dynsal.predict.record import read_record
from tests.interrupting import SAFETY_NET_S
from tests.reliability.faults import lock_holder
from tests.reliability.predict_setup import maps_of, net_args, predict, snapshot, tiny_model, video

pytest.importorskip("torch", reason="prediction runs the torch engine")


@pytest.fixture()
def model(tmp_path_factory):
    return tiny_model(tmp_path_factory.mktemp("model"))


def test_a_second_run_refuses_the_input_naming_the_holder(model, tmp_path, capsys):
    clip, other = video(tmp_path / "clip.avi"), video(tmp_path / "other.avi")
    out = tmp_path / "out"
    out.mkdir()
    process = lock_holder(out / ".clip.lock", "dynsal predict")
    try:
        before = snapshot(tmp_path)
        status, text, err = predict(capsys, *net_args(model), str(clip), str(other), "-o", str(out))
        after = snapshot(tmp_path, skip=[out / "other", out / "other_overlay.mp4"])
    finally:
        process.stdin.close()
        process.wait(timeout=SAFETY_NET_S)
    assert status == 1 and len(err.splitlines()) == 1, err
    assert err.startswith(f"dynsal predict: {clip}: {out / 'clip'} is being written by dynsal predict (process "
                          f"{process.pid} on {socket.gethostname()}, since ")
    assert err.rstrip().endswith("); wait for it to finish, or write to another folder")
    assert after == before  # clip untouched; the other input was done
    assert "1 predicted, 0 already complete, 1 failed" in text and len(maps_of(out / "other")) == 4
    assert predict(capsys, *net_args(model), str(clip), "-o", str(out))[0] == 0  # released: it runs


def test_the_lock_of_a_killed_run_is_free(model, tmp_path, capsys):
    clip = video(tmp_path / "clip.avi")
    out = tmp_path / "out"
    out.mkdir()
    process = lock_holder(out / ".clip.lock", "dynsal predict")
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=SAFETY_NET_S)
    assert (out / ".clip.lock").read_text().startswith("dynsal lock ")  # left behind by kill -9
    status, text, err = predict(capsys, *net_args(model), str(clip), "-o", str(out))
    assert status == 0 and "clip: 4 maps" in text, err
    assert sorted(p.name for p in out.iterdir()) == ["clip", "clip_overlay.mp4"]


@pytest.mark.timing_sensitive
def test_concurrent_runs_into_one_folder_never_corrupt(model, tmp_path):
    """Two real processes on the same inputs: each input ends complete exactly once, every refusal is one line."""
    clips = [str(video(tmp_path / f"clip{i}.avi", count=6)) for i in range(3)]
    out = tmp_path / "out"
    command = [sys.executable, "-m", "dynsal", "predict", *net_args(model), *clips, "-o", str(out)]
    runs = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ)
            for _ in range(2)]
    outputs = [run.communicate(timeout=SAFETY_NET_S) for run in runs]
    results = [(run.returncode, text, err) for run, (text, err) in zip(runs, outputs)]
    for status, _, err in results:
        assert "Traceback" not in err and status in (0, 1), err
        lines = [line for line in err.splitlines() if line.startswith("dynsal")]
        assert all("is being written by dynsal predict (process" in line for line in lines), err
        assert bool(lines) == (status == 1), err  # a refusal, and only a refusal, makes the status 1
    done = sum(text.count(" maps in ") for _, text, _ in results)
    assert done == 3  # each input was predicted by exactly one of the runs
    assert sorted(p.name for p in out.iterdir()) == sorted([f"clip{i}" for i in range(3)]
                                                           + [f"clip{i}_overlay.mp4" for i in range(3)])
    for i in range(3):
        record = read_record(out / f"clip{i}")
        assert record["frames"] == 6 and len(maps_of(out / f"clip{i}")) == 6
        assert json.loads((out / f"clip{i}" / "settings.json").read_text())["input"] == clips[i]
