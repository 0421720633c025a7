"""`dynsal train` prints Caffe's console: glog lines that dynsal plot-log and Caffe's own log tools read.

(tests/oracle/test_solver.py compares the lines with a real `caffe train` log, line for line.)
"""
from __future__ import annotations

import datetime
import re

import pytest

from dynsal.cli import main
from dynsal.training.training_log import read_log
from tests.engines.test_solver import records, tiny_solver

pytest.importorskip("torch", reason="the torch solver needs torch")

GLOG = re.compile(r"I\d{4} \d\d:\d\d:\d\d\.\d{6} +\d+ (solver|sgd_solver)\.cpp:\d+\] ")

# The regexes of BVLC Caffe's tools/extra/parse_log.py (parse_log()), verbatim.
REGEX_ITERATION = re.compile(r'Iteration (\d+)')
REGEX_TRAIN_OUTPUT = re.compile(r'Train net output #(\d+): (\S+) = ([\.\deE+-]+)')
REGEX_TEST_OUTPUT = re.compile(r'Test net output #(\d+): (\S+) = ([\.\deE+-]+)')
REGEX_LEARNING_RATE = re.compile(r'lr = ([-+]?[0-9]*\.?[0-9]+([eE]?[-+]?[0-9]+)?)')


def extract_datetime_from_line(line: str, year: int) -> datetime.datetime:
    """tools/extra/extract_seconds.py's reading of glog's prefix (raises ValueError on other lines)."""
    line = line.strip().split()
    month, day = int(line[0][1:3]), int(line[0][3:])
    timestamp = line[1]
    pos = timestamp.rfind('.')
    hour, minute, second = (int(x) for x in timestamp[:pos].split(':'))
    return datetime.datetime(year, month, day, hour, minute, second, int(timestamp[pos + 1:]))


def parse_log_rows(lines):
    """parse_log.py's loop: (train rows, test rows) as {iteration: {output: value, "lr": rate}}."""
    start = next(extract_datetime_from_line(line, 2000) for line in lines if "Solving" in line)  # get_start_time
    assert start is not None
    iteration, rate, train, test = -1, float("nan"), {}, {}
    for line in lines:
        match = REGEX_ITERATION.search(line)
        if match:
            iteration = int(match.group(1))
        if iteration == -1:
            continue
        try:
            extract_datetime_from_line(line, 2000)
        except ValueError:  # parse_log.py skips such lines; any other exception would stop it
            continue
        match = REGEX_LEARNING_RATE.search(line)
        if match:
            rate = float(match.group(1))
        for regex, rows in ((REGEX_TRAIN_OUTPUT, train), (REGEX_TEST_OUTPUT, test)):
            match = regex.search(line)
            if match:
                rows.setdefault(iteration, {"lr": rate})[match.group(2)] = float(match.group(3))
    return train, test


@pytest.fixture
def console(tmp_path, monkeypatch, capsys):
    """stderr of `dynsal train` on the tiny solver (display 2, test every 3, snapshot 4), progress lines
    included (one per update), and the JSON-lines log."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DYNSAL_PROGRESS_SECONDS", "0")
    solver = tiny_solver(tmp_path, "test_iter: 2 test_interval: 3 average_loss: 2")
    (tmp_path / "solver.prototxt").write_text((tmp_path / "solver.prototxt").read_text().replace("display: 1",
                                                                                                "display: 2"))
    assert main(["train", solver, "--engine", "torch"]) == 0
    return capsys.readouterr().err.splitlines(), records(tmp_path / "snap" / "tiny_log.jsonl")


def test_train_prints_caffe_lines_at_display(console):
    lines, log = console
    caffe = [GLOG.sub("", line) for line in lines if GLOG.match(line)]
    assert caffe[:3] == ["Solving tiny", "Learning Rate Policy: step", "Iteration 0, Testing net (#0)"]
    displays = [line for line in caffe if re.match(r"Iteration \d+ \(", line)]
    assert [d.split()[1] for d in displays] == ["0", "2", "4"]
    assert all(re.fullmatch(r"Iteration \d+ \([\d.e+-]+ iter/s, [\d.e+-]+s/2 iters\), loss = [\d.e+-]+", d)
               for d in displays)
    smoothed = {r["iteration"]: r["loss"] for r in log if r["phase"] == "train"}
    assert float(displays[1].rsplit(" ", 1)[1]) == pytest.approx(smoothed[2], rel=1e-5)
    assert "Iteration 2, lr = 0.001" in caffe and "Iteration 4, lr = 0.0005" in caffe
    assert "Snapshotting to binary proto file snap/tiny_iter_4.caffemodel" in caffe
    assert "Snapshotting solver state to binary proto file snap/tiny_iter_4.solverstate" in caffe
    assert [re.sub(r"= \S+", "= v", line) for line in caffe[-4:]] == [
        "Iteration 6, loss = v", "Iteration 6, Testing net (#0)", "    Test net output #0: loss = v (* 1 = v loss)",
        "Optimization Done."]
    assert re.fullmatch(r"    Train net output #0: loss = \S+ \(\* 1 = \S+ loss\)",
                        next(line for line in caffe if "Train net output" in line))
    progress = [line for line in lines if not GLOG.match(line)]
    assert progress and all(line.startswith("dynsal train") for line in progress)


def test_dynsal_plot_log_reads_the_console(console, tmp_path):
    lines, log = console
    (tmp_path / "console.log").write_text("\n".join(lines) + "\n")
    records_ = read_log(tmp_path / "console.log")
    train = {r["iteration"]: r for r in records_ if r["phase"] == "train" and r["loss"] is not None}
    assert sorted(train) == [0, 2, 4, 6]  # 6: Caffe's loss line after the last iteration
    assert [r["iteration"] for r in records_ if r["phase"] == "test"] == [0, 3, 6]
    assert train[4]["lr"] == pytest.approx(0.0005) and "loss" in train[4]["outputs"]
    assert main(["plot-log", str(tmp_path / "console.log"), "-o", str(tmp_path / "curves.png")]) == 0


def test_caffe_parse_log_regexes_read_the_console(console):
    lines, log = console
    train, test = parse_log_rows(lines)
    raw = {r["iteration"]: r["raw_loss"] for r in log if r["phase"] == "train"}
    assert sorted(train) == [0, 2, 4] and sorted(test) == [0, 3, 6]
    for iteration, row in train.items():
        assert row["loss"] == pytest.approx(raw[iteration], rel=1e-5)
    assert train[0]["lr"] != train[0]["lr"]  # NaN: Caffe prints the rate after the outputs, as here
    assert test[3]["lr"] == pytest.approx(0.001) and test[6]["lr"] == pytest.approx(0.0005)
    tests = {r["iteration"]: r["outputs"]["loss"] for r in log if r["phase"] == "test"}
    assert {i: row["loss"] for i, row in test.items()} == pytest.approx(tests, rel=1e-5)


def test_no_test_initialization_and_quiet(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    solver = tiny_solver(tmp_path, "test_iter: 2 test_interval: 3", max_iter=3)
    assert main(["train", solver, "--engine", "torch", "--no-test-initialization", "--quiet"]) == 0
    assert capsys.readouterr().err == ""
    tested = [r["iteration"] for r in records(tmp_path / "snap" / "tiny_log.jsonl") if r["phase"] == "test"]
    assert tested == [3]
    resolved = (tmp_path / "snap" / "tiny_solver.resolved.prototxt").read_text()
    assert "test_initialization: false" in resolved

