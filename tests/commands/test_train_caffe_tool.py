"""`dynsal train --engine caffe` hands `caffe train` a solver it can run here: a fake `caffe` tool on PATH
records the command line and the resolved solver it was given."""
from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

import pytest

from dynsal.caffe import io
from dynsal.caffe.schema import pb
from dynsal.cli import main
from dynsal.engines import pycaffe_probe

REPO = Path(__file__).resolve().parents[2]
FAKE_CAFFE = """#!/bin/sh
echo "$@" > "$(dirname "$0")/args.txt"
for arg in "$@"; do case "$arg" in --solver=*) cp "${arg#--solver=}" "$(dirname "$0")/solver.prototxt" ;; esac; done
"""


@pytest.fixture()
def fake_caffe(tmp_path, monkeypatch) -> Path:
    tool = tmp_path / "bin" / "caffe"
    tool.parent.mkdir()
    tool.write_text(FAKE_CAFFE)
    tool.chmod(tool.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{tool.parent}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.chdir(tmp_path)
    shutil.copytree(REPO / "prototxt", tmp_path / "prototxt")
    return tool.parent


@pytest.mark.parametrize("gpu_present", [False, True])
def test_a_gpu_solver_trains_on_the_cpu_where_there_is_no_gpu(fake_caffe, monkeypatch, capfd, gpu_present):
    monkeypatch.setattr("dynsal.trainer.nvidia_gpu_present", lambda: gpu_present)
    assert main(["train", "prototxt/stsmax_solver.prototxt", "--engine", "caffe", "--weights", "w.caffemodel",
                 "--max-iter", "10"]) == 0
    solver = io.read_solver(fake_caffe / "solver.prototxt")
    assert solver.max_iter == 10
    expected = pb.SolverParameter.GPU if gpu_present else pb.SolverParameter.CPU
    assert solver.solver_mode == expected
    assert ("there is none here: caffe train runs on the CPU" in capfd.readouterr().err) != gpu_present
    assert "--weights=w.caffemodel" in (fake_caffe / "args.txt").read_text()


def test_gpu_flag_leaves_the_solver_mode_to_caffe(fake_caffe, monkeypatch):
    monkeypatch.setattr("dynsal.trainer.nvidia_gpu_present", lambda: False)
    assert main(["train", "prototxt/stsmax_solver.prototxt", "--engine", "caffe", "--gpu", "0"]) == 0
    assert io.read_solver(fake_caffe / "solver.prototxt").solver_mode == pb.SolverParameter.GPU
    assert "--gpu=0" in (fake_caffe / "args.txt").read_text()


def test_nvidia_gpu_present_needs_an_opening_control_device():
    assert pycaffe_probe.nvidia_gpu_present() == (bool(list(Path("/dev").glob("nvidia[0-9]*")))
                                                  and os.access("/dev/nvidiactl", os.R_OK | os.W_OK))
