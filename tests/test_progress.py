"""Progress on stderr: a bar on a terminal; complete, throttled lines on a file or a pipe."""
from __future__ import annotations

import io
import re
from types import SimpleNamespace

import pytest
import tqdm.std

from dynsal import progress
from dynsal.progress import Silent, progress_bar, write_line


class Clock:
    """Seconds that only the test advances, read by tqdm and by dynsal.progress: what a bar prints does not
    depend on how fast a busy machine runs the test."""

    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch):
    fake = Clock()
    monkeypatch.setattr(tqdm.std, "time", fake)
    monkeypatch.setattr(progress, "time", SimpleNamespace(monotonic=fake))
    return fake


def lines_of(stream: io.StringIO):
    text = stream.getvalue()
    assert "\r" not in text and "\x1b" not in text, repr(text)  # no terminal control codes in a log
    return text.splitlines()


def test_a_non_terminal_gets_whole_lines_with_count_rate_and_eta(monkeypatch, clock):
    monkeypatch.setenv("DYNSAL_PROGRESS_SECONDS", "0")
    stream = io.StringIO()
    with progress_bar(4, "dynsal predict clip", "frames", stream=stream) as bar:
        for _ in range(4):
            clock.now += 0.1
            bar.update(1)
    lines = lines_of(stream)
    assert lines and all(line.startswith("dynsal predict clip: ") for line in lines)
    assert re.fullmatch(r"dynsal predict clip: 4/4 frames \(100%\), +[\d.]+ frames/s, 00:00 elapsed, ETA 00:00",
                        lines[-1]), lines[-1]
    assert len(lines) == len(set(lines))  # the last state is not printed twice
    assert "" not in lines  # Caffe's parse_log.py fails on an empty line


def test_a_non_terminal_line_comes_at_most_every_interval(monkeypatch, clock):
    monkeypatch.setenv("DYNSAL_PROGRESS_SECONDS", "0.2")
    stream = io.StringIO()
    with progress_bar(None, "dynsal flow", "frames", stream=stream) as bar:
        for _ in range(3):  # shorter than the interval: no line at all
            bar.update(1)
    assert stream.getvalue() == ""
    with progress_bar(None, "dynsal flow", "frames", stream=stream) as bar:
        bar.update(1)
        clock.now += 0.25
        bar.update(1)  # past the interval: one line, the total unknown
    lines = lines_of(stream)
    assert lines[0].startswith("dynsal flow: 2 frames, ") and "ETA" not in lines[0]


def test_quiet_progress_writes_nothing():
    bar = progress_bar(10, "x", enabled=False)
    assert isinstance(bar, Silent)
    with bar:
        bar.update(3)
        bar.set_postfix_str("loss=1")


def test_write_line_keeps_lines_whole():
    stream = io.StringIO()
    write_line("I1128 08:37:30.411908 20617 solver.cpp:289] Solving tiny", stream)
    assert stream.getvalue() == "I1128 08:37:30.411908 20617 solver.cpp:289] Solving tiny\n"


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_slow_rate_is_units_per_second_on_lines_and_bars(monkeypatch):
    """Below one unit a second tqdm's own format reads `2.50s/ frames`; dynsal keeps `0.40 frames/s`. The
    bars' own formatter is asked for their text at 4 frames in 10 s (known and unknown totals)."""
    monkeypatch.setenv("DYNSAL_PROGRESS_SECONDS", "0")
    for stream in (io.StringIO(), _Terminal()):
        for total in (250, None):
            with progress_bar(total, "dynsal predict clip", "frames", stream=stream) as bar:
                text = bar.format_meter(**dict(bar.format_dict, n=4, elapsed=10.0, rate=None))
            assert " 0.40 frames/s" in text and "s/" not in text.replace("frames/s", ""), text
