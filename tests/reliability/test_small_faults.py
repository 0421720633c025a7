"""Defect 11 (the items outside prediction): torn training logs, model settings that are not an object,
NaN fixation maps in .mat files, and Ctrl-C with parallel workers."""
from __future__ import annotations

import json
import os
from pathlib import Path

import lmdb
import numpy as np
import pytest

from tests.data.synthetic import diem_row, panning_frames, panning_video, write_gaze
from tests.interrupting import SAFETY_NET_S, ctrl_c, long_frame_folder, start_dynsal, wait_for, wait_until_gone
from tests.reliability.faults import REPO, changed, run_dynsal, tree

#: frames of each interrupted video: many minutes of flow on any machine
LONG_VIDEO = 2000
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


def _long_inputs(tmp_path: Path) -> Path:
    """Two frame folders of `LONG_VIDEO` frames with DIEM gaze on each: many minutes of flow on any machine."""
    videos = tmp_path / "video"
    for seed, name in enumerate(("a_128x96", "b_128x96")):
        long_frame_folder(videos / name, panning_frames(8, 96, 128, seed=seed), LONG_VIDEO)
        rows = [diem_row(frame, (600.0, 450.0, 1), (602.0, 450.0, 1)) for frame in range(1, LONG_VIDEO + 1)]
        write_gaze(tmp_path / "gaze", name, "diem0s", rows)
    return videos


def _samples_committed(out: Path) -> bool:
    """Whether a make-lmdb build into `out` has committed samples (computed by its workers)."""
    for folder in out.glob(".*.partial/frames_lmdb"):
        try:
            with lmdb.open(str(folder), readonly=True, lock=False) as env:
                if env.stat()["entries"]:
                    return True
        except lmdb.Error:  # the writer is still creating the database
            pass
    return False


@pytest.mark.timing_sensitive
@pytest.mark.parametrize("command", ["make-lmdb", "flow"])
def test_ctrl_c_with_two_workers_is_one_line(tmp_path, command):
    """Ctrl-C reaches the whole process group: the workers used to print a KeyboardInterrupt traceback each.
    Now they ignore it, the parent ends the pool and prints one line, exit 130, no worker is left and nothing
    looks finished. The signal comes once the workers' first results are written (they are busy with flow)."""
    videos, out = _long_inputs(tmp_path), tmp_path / "out"
    argv = {"make-lmdb": ["make-lmdb", "--videos", videos, "--gaze", tmp_path / "gaze", "-o", out,
                          "--resize", "native", "--method", "tvl1", "--no-progress", "--jobs", "2"],
            "flow": ["flow", *sorted(videos.iterdir()), "-o", out, "--method", "tvl1", "--jobs", "2", "--quiet"]}
    started = {"make-lmdb": lambda: _samples_committed(out), "flow": lambda: any(out.rglob("*.png"))}
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    process = start_dynsal(argv[command], env=env)
    wait_for(started[command], "result of the workers", process)
    ctrl_c(process)
    out_text, err = process.communicate(timeout=SAFETY_NET_S)
    assert process.returncode == 130, err
    assert err == f"dynsal {command}: interrupted\n"
    wait_until_gone(process.pid)  # no worker is left behind
    assert not list(out.glob("*manifest.json")) and not list(out.glob("*/flow_settings.json"))  # none looks done
