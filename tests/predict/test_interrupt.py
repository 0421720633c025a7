"""Ctrl-C during a pipelined prediction with flow worker processes: one line, exit 130, no process left.

The command stops its worker pool itself on the way out; left to Python's exit hooks, 3.11's
ProcessPoolExecutor races its manager thread and prints an `OSError: [Errno 9] Bad file descriptor`
traceback after the line (seen in 2 of 6 interrupted runs on a loaded 2-core machine)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from dynsal.cli import main
from dynsal.commands import predict as predict_command
from dynsal.predict.predictor import Predictor
from tests.data.synthetic import panning_frames
from tests.interrupting import SAFETY_NET_S, ctrl_c, long_frame_folder, start_dynsal, wait_for, wait_until_gone
from tests.predict.helpers import make_inputs, zoo_weights

pytest.importorskip("torch", reason="prediction tests run the torch engine")

REPO = Path(__file__).resolve().parents[2]
#: frames of the interrupted clip: many minutes of work on any machine
LONG_CLIP = 3000


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    return zoo_weights("stsconv", tmp_path_factory.mktemp("weights"))


def test_the_command_stops_its_workers_when_interrupted(weights, tmp_path, monkeypatch, capsys):
    """Deterministic: a KeyboardInterrupt after the first map reaches `Predictor.close` before `main` returns."""
    video, _ = make_inputs(tmp_path, frames=7)
    pools, close = [], Predictor.close

    def interrupt(*_):
        raise KeyboardInterrupt

    def closing(predictor):
        pools.append(predictor.frame_workers._pool)
        close(predictor)

    monkeypatch.setattr(predict_command, "_frame_done", interrupt)
    monkeypatch.setattr(Predictor, "close", closing)
    status = main(["predict", "--net", "stsconv", "--weights", str(weights), "--engine", "torch", "--device", "cpu",
                   str(video), "-o", str(tmp_path / "out"), "--workers", "2", "--quiet"])
    assert status == 130 and capsys.readouterr().err == "dynsal predict: interrupted\n"
    (pool,) = pools  # closed once, while its worker pool was running
    assert pool is not None and pool._shutdown_thread and not pool._processes


@pytest.mark.timing_sensitive
def test_ctrl_c_is_one_line_and_leaves_no_process(weights, tmp_path):
    """A terminal's Ctrl-C reaches the flow workers and their fork server too: they ignore it, the pipeline
    stops, the command prints one line, exits 130, no process of the group is left and nothing looks done.
    The clip is too long to be over when the first map is written, however fast the machine."""
    clip = long_frame_folder(tmp_path / "clip", panning_frames(8, 96, 128), LONG_CLIP)
    out = tmp_path / "out"
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    process = start_dynsal(["predict", "--net", "stsconv", "--weights", weights, "--engine", "torch", "--device",
                            "cpu", clip, "-o", out, "--workers", "2", "--quiet"], env=env)
    wait_for(lambda: any(out.rglob("*.png")), "first map", process)
    ctrl_c(process)
    _, err = process.communicate(timeout=SAFETY_NET_S)
    assert process.returncode == 130 and err == "dynsal predict: interrupted\n", err
    wait_until_gone(process.pid)
    assert not (out / "clip").exists() and not (out / "clip_overlay.mp4").exists()  # not published as complete
