"""Defect 11 (the items outside prediction): torn training logs, model settings that are not an object,
NaN fixation maps in .mat files, and Ctrl-C with parallel workers."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.data.synthetic import panning_video, steady_gaze
from tests.reliability.faults import REPO, changed, run_dynsal, tree

RECORD = {"iteration": 0, "phase": "train", "loss": 1.0, "lr": 0.1, "outputs": {}}


def _log(path: Path, lines) -> Path:
    path.write_text("".join(lines))
    return path


def test_plot_log_keeps_a_log_whose_last_line_is_torn(tmp_path):
    """A run killed while writing leaves half a line without a newline: that line is left out."""
    lines = [json.dumps(dict(RECORD, iteration=i)) + "\n" for i in range(3)] + ['{"iteration": 3, "pha']
    result = run_dynsal(["plot-log", _log(tmp_path / "log.jsonl", lines), "-o", tmp_path / "curves.png"])
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "curves.png").read_bytes().startswith(b"\x89PNG")


@pytest.mark.parametrize("bad, message", [
    ('{"iteration": 1, "pha\n', "log.jsonl:2: not a JSON-lines training log"),
    ('{"iteration": "one", "phase": "train"}\n', "log.jsonl:2: not a training record"),
    ("[1, 2]\n", "log.jsonl:2: not a training record"),
])
def test_plot_log_names_the_bad_line(tmp_path, bad, message):
    """A bad line that is not the torn last one is an error naming its own line (it said line 1 before)."""
    log = _log(tmp_path / "log.jsonl", [json.dumps(RECORD) + "\n", bad, json.dumps(dict(RECORD, iteration=2)) + "\n"])
    before = tree(tmp_path)
    result = run_dynsal(["plot-log", log, "-o", tmp_path / "curves.png"])
    assert result.returncode == 1
    assert message in result.error_line()
    assert changed(before, tree(tmp_path)) == []


def test_model_settings_that_are_not_an_object(tmp_path):
    (tmp_path / "w.caffemodel").write_bytes(b"not read: the settings are checked first")
    (tmp_path / "w.caffemodel.json").write_text("[1, 2]")
    panning_video(tmp_path / "clip.avi", 3, 32, 32)
    before = tree(tmp_path)
    result = run_dynsal(["predict", "--net", "ssnet", "--weights", "w.caffemodel", "clip.avi", "-o", "maps"],
                        cwd=tmp_path)
    assert result.returncode == 1
    assert result.error_line() == ("dynsal predict: error: w.caffemodel.json: a model's settings must be a JSON object "
                                   "with resize, flow and postprocessing entries, not a list")
    assert changed(before, tree(tmp_path)) == []


@pytest.mark.parametrize("values, message", [
    (np.full((8, 8), np.nan), "holds NaN or infinite values"),
    (np.where(np.eye(8) > 0, np.inf, 0.0), "holds NaN or infinite values"),
    (np.full((8, 8), 1 + 1j), "holds numbers, not complex128 values"),
])
def test_non_finite_mat_fixation_maps_are_refused(tmp_path, values, message):
    """docs/metrics.md says NaN/inf fixations are refused; an all-NaN map was read as fixations everywhere."""
    from PIL import Image
    from scipy.io import savemat

    for name in ("pred", "gt"):
        (tmp_path / name / "v" / ("maps" if name == "gt" else "")).mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((8, 8), 128, np.uint8)).save(tmp_path / "pred" / "v" / "0001.png")
    Image.fromarray(np.full((8, 8), 128, np.uint8)).save(tmp_path / "gt" / "v" / "maps" / "0001.png")
    (tmp_path / "gt" / "v" / "fixation").mkdir()
    savemat(tmp_path / "gt" / "v" / "fixation" / "0001.mat", {"I": values})
    result = run_dynsal(["eval", tmp_path / "pred", tmp_path / "gt", "--metrics", "nss", "--no-progress"])
    assert result.returncode == 1
    line = result.error_line()
    assert "0001.mat" in line and message in line


def _slow_inputs(tmp_path: Path):
    videos = tmp_path / "video"
    videos.mkdir()
    for seed, name in enumerate(("a_256x192", "b_256x192")):
        panning_video(videos / f"{name}.avi", 60, 192, 256, seed=seed)
        steady_gaze(tmp_path / "gaze", name, 60, (256, 192))
    return videos


@pytest.mark.parametrize("command", ["make-lmdb", "flow"])
def test_ctrl_c_with_two_workers_is_one_line(tmp_path, command):
    """Ctrl-C reaches the whole process group: the workers used to print a KeyboardInterrupt traceback each.
    Now they ignore it, the parent ends the pool and prints one line, exit 130, and no worker is left."""
    videos = _slow_inputs(tmp_path)
    argv = {"make-lmdb": ["make-lmdb", "--videos", videos, "--gaze", tmp_path / "gaze", "-o", tmp_path / "out",
                          "--resize", "native", "--method", "tvl1", "--no-progress", "--jobs", "2"],
            "flow": ["flow", *sorted(videos.iterdir()), "-o", tmp_path / "out", "--method", "tvl1", "--jobs", "2",
                     "--quiet"]}
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    process = subprocess.Popen([sys.executable, "-m", "dynsal", *map(str, argv[command])], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.time() + 120
    while time.time() < deadline and not any((tmp_path / "out").rglob("*.png" if command == "flow" else "data.mdb")):
        time.sleep(0.1)
    time.sleep(1.0)  # the workers are busy with flow now
    os.killpg(process.pid, signal.SIGINT)  # what a terminal's Ctrl-C does
    out, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert err == f"dynsal {command}: interrupted\n"
    _wait_until_gone(process.pid)  # no worker is left behind


def _wait_until_gone(group: int, seconds: float = 20) -> None:
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    raise AssertionError(f"processes of group {group} still run {seconds} s after the parent ended")
