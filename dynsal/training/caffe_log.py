"""Caffe's training console: the lines `caffe train` prints, in glog's format, for the torch solver.

Each line is what BVLC Caffe 1.0 logs at that point (same words, same file:line, numbers printed as
C++'s default stream format, i.e. `%g` with 6 significant digits), behind glog's prefix
`Lmmdd hh:mm:ss.uuuuuu thread file:line] `, e.g.

    I0210 13:39:22.381027 25210 solver.cpp:239] Iteration 100 (3.125 iter/s, 32s/100 iters), loss = 0.693147
    I0210 13:39:22.381050 25210 solver.cpp:258]     Train net output #0: loss = 0.693147 (* 1 = 0.693147 loss)
    I0210 13:39:22.381060 25210 sgd_solver.cpp:112] Iteration 100, lr = 0.01

so what reads Caffe's logs reads dynsal's console too: `dynsal plot-log`
(`dynsal.training.training_log`), Caffe's `tools/extra/parse_log.py` and `extract_seconds.py` (which
take the times from the prefix and the start from the `Solving` line).
"""
from __future__ import annotations

import datetime
import threading
from typing import Optional, TextIO

from dynsal.progress import write_line

#: where Caffe 1.0 logs each message (src/caffe/solver.cpp, solvers/sgd_solver.cpp)
SOLVING = "solver.cpp:289"
LR_POLICY = "solver.cpp:290"
RESTORING = "solver.cpp:296"
STOPPED_EARLY = "solver.cpp:311"
FINAL_LOSS = "solver.cpp:327"
DONE = "solver.cpp:332"
TESTING = "solver.cpp:347"
TEST_LOSS = "solver.cpp:401"
TEST_OUTPUT = "solver.cpp:414"
DISPLAY = "solver.cpp:239"
TRAIN_OUTPUT = "solver.cpp:258"
SNAPSHOT_BINARY = "solver.cpp:464"
SNAPSHOT_HDF5 = "solver.cpp:474"
LEARNING_RATE = "sgd_solver.cpp:112"
CLIPPING = "sgd_solver.cpp:99"
STATE_BINARY = "sgd_solver.cpp:284"
STATE_HDF5 = "sgd_solver.cpp:296"


def number(value: float) -> str:
    """A float as C++'s `ostream << value` prints it by default (6 significant digits, like %g)."""
    return format(float(value), "g")


def glog_prefix(source: str, now: Optional[datetime.datetime] = None) -> str:
    """glog's INFO prefix: `I` + month, day, time with microseconds, thread id (width 5), `file:line] `."""
    now = now or datetime.datetime.now()
    return (f"I{now:%m%d} {now:%H:%M:%S}.{now.microsecond:06d} {threading.get_native_id():5d} "
            f"{source}] ")


def _output_line(kind: str, index: int, name: str, value: float, loss_weight: float) -> str:
    """`    Train net output #k: name = v (* w = l loss)` (the part in brackets only for loss outputs)."""
    line = f"    {kind} net output #{index}: {name} = {number(value)}"
    if loss_weight:
        line += f" (* {number(loss_weight)} = {number(loss_weight * value)} loss)"
    return line


class CaffeConsole:
    """Writes Caffe's solver messages to `stream` (default stderr); `enabled=False` writes nothing."""

    def __init__(self, stream: Optional[TextIO] = None, enabled: bool = True):
        self.stream, self.enabled = stream, enabled

    def info(self, source: str, message: str) -> None:
        """One INFO line logged at `source` (file:line)."""
        if self.enabled:
            write_line(glog_prefix(source) + message, self.stream)

    def solving(self, net_name: str, lr_policy: str) -> None:
        self.info(SOLVING, f"Solving {net_name}")
        self.info(LR_POLICY, f"Learning Rate Policy: {lr_policy}")

    def restoring(self, path: str) -> None:
        self.info(RESTORING, f"Restoring previous solver status from {path}")

    def display(self, iteration: int, per_second: float, lapse: float, display: int, loss: float) -> None:
        self.info(DISPLAY, f"Iteration {iteration} ({number(per_second)} iter/s, {number(lapse)}s/{display} iters), "
                           f"loss = {number(loss)}")

    def train_output(self, index: int, name: str, value: float, loss_weight: float) -> None:
        self.info(TRAIN_OUTPUT, _output_line("Train", index, name, value, loss_weight))

    def learning_rate(self, iteration: int, rate: float) -> None:
        self.info(LEARNING_RATE, f"Iteration {iteration}, lr = {number(rate)}")

    def clipping(self, norm: float, limit: float, factor: float) -> None:
        self.info(CLIPPING, f"Gradient clipping: scaling down gradients (L2 norm {number(norm)} > {number(limit)}) "
                            f"by scale factor {number(factor)}")

    def testing(self, iteration: int, net_index: int) -> None:
        self.info(TESTING, f"Iteration {iteration}, Testing net (#{net_index})")

    def test_loss(self, loss: float) -> None:
        self.info(TEST_LOSS, f"Test loss: {number(loss)}")

    def test_output(self, index: int, name: str, value: float, loss_weight: float) -> None:
        self.info(TEST_OUTPUT, _output_line("Test", index, name, value, loss_weight))

    def final_loss(self, iteration: int, loss: float) -> None:
        self.info(FINAL_LOSS, f"Iteration {iteration}, loss = {number(loss)}")

    def snapshot(self, model_path, state_path, hdf5: bool) -> None:
        if hdf5:
            self.info(SNAPSHOT_HDF5, f"Snapshotting to HDF5 file {model_path}")
            self.info(STATE_HDF5, f"Snapshotting solver state to HDF5 file {state_path}")
        else:
            self.info(SNAPSHOT_BINARY, f"Snapshotting to binary proto file {model_path}")
            self.info(STATE_BINARY, f"Snapshotting solver state to binary proto file {state_path}")

    def done(self, stopped_early: bool) -> None:
        if stopped_early:
            self.info(STOPPED_EARLY, "Optimization stopped early.")
        else:
            self.info(DONE, "Optimization Done.")
