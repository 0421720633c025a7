"""Caffe log parsing (the oracle test feeds it real `caffe train` output)."""
from __future__ import annotations

import json

import pytest

from dynsal.errors import FormatError
from dynsal.training.training_log import parse_caffe_log, read_log

CAFFE_LOG = """\
I1126 10:00:00.000001  1234 solver.cpp:218] Iteration 0 (0 iter/s, 0.01s/10 iters), loss = 1.5
I1126 10:00:00.000002  1234 solver.cpp:237]     Train net output #0: loss = 1.5 (* 1 = 1.5 loss)
I1126 10:00:00.000003  1234 sgd_solver.cpp:105] Iteration 0, lr = 0.01
I1126 10:00:01.000000  1234 solver.cpp:330] Iteration 10, Testing net (#0)
I1126 10:00:01.000001  1234 solver.cpp:397]     Test net output #0: loss = 0.9 (* 1 = 0.9 loss)
I1126 10:00:01.000002  1234 solver.cpp:218] Iteration 10, loss = 1.1
I1126 10:00:01.000003  1234 sgd_solver.cpp:105] Iteration 10, lr = 0.005
"""


def test_parse_caffe_log():
    records = parse_caffe_log(CAFFE_LOG.splitlines())
    assert [(r["iteration"], r["phase"]) for r in records] == [(0, "train"), (10, "train"), (10, "test")]
    assert records[0] == {"iteration": 0, "phase": "train", "loss": 1.5, "lr": 0.01, "outputs": {"loss": 1.5}}
    assert records[1]["lr"] == 0.005 and records[2]["outputs"] == {"loss": 0.9}


def test_read_log_both_formats(tmp_path):
    (tmp_path / "caffe.log").write_text(CAFFE_LOG)
    assert len(read_log(tmp_path / "caffe.log")) == 3
    record = {"iteration": 3, "phase": "train", "loss": 0.5, "lr": 0.1, "outputs": {}}
    (tmp_path / "dynsal.jsonl").write_text(json.dumps(record) + "\n")
    assert read_log(tmp_path / "dynsal.jsonl") == [record]
    (tmp_path / "empty.log").write_text("nothing here\n")
    with pytest.raises(FormatError, match="no Caffe training lines"):
        read_log(tmp_path / "empty.log")


def test_plot_log_command(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    from dynsal.cli import main

    (tmp_path / "caffe.log").write_text(CAFFE_LOG)
    lines = [json.dumps({"iteration": i, "phase": "train", "loss": 1.0 / (i + 1), "lr": 0.01, "outputs": {}})
             for i in range(5)]
    (tmp_path / "torch.jsonl").write_text("\n".join(lines) + "\n")
    out = tmp_path / "plots" / "curves.png"
    assert main(["plot-log", str(tmp_path / "caffe.log"), str(tmp_path / "torch.jsonl"),
                 "--labels", "caffe,torch", "-o", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 5000
    assert main(["plot-log", str(tmp_path / "caffe.log"), "--labels", "a,b", "-o", str(out)]) == 1
    assert "--labels gives 2 labels for 1 logs" in capsys.readouterr().err
