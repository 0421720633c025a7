"""Progress of long work on stderr: a tqdm bar on a terminal, a plain line every few seconds otherwise.

On a terminal the bar redraws in place (rate and ETA). When stderr is a file or a pipe (a log, CI, a
`2>&1 | tee`), the same bar prints one complete line every `line_interval()` seconds (default 5;
`$DYNSAL_PROGRESS_SECONDS` sets it) once the job has run that long, and a last line when it ends, e.g.

    dynsal predict clip: 120/250 frames (48%),  3.21 frames/s, 00:37 elapsed, ETA 00:40

(rates are units per second on both, `0.40 frames/s`, never tqdm's seconds per unit)

so logs stay readable and tools that read them line by line (Caffe's `parse_log.py`) are not
confused: a progress line is never empty, holds no terminal control codes and never starts like a
glog line. Jobs shorter than the interval print no progress line at all.
"""
from __future__ import annotations

import os
import re
import sys
import time
from typing import Any, Optional, TextIO

from tqdm import tqdm

#: seconds between two progress lines when stderr is not a terminal (unless $DYNSAL_PROGRESS_SECONDS)
LINE_INTERVAL = 5.0
INTERVAL_VARIABLE = "DYNSAL_PROGRESS_SECONDS"
_CONTROL = re.compile(r"\x1b\[[0-9;]*[A-Za-z]|\r")
# Rates are always units per second ("0.40 frames/s"): tqdm's own {rate_fmt} turns a rate below one into
# seconds per unit ("2.50s/ frames").
_LINE_FORMAT = ("{desc}: {n_fmt}/{total_fmt}{unit} ({percentage:.0f}%), {rate_noinv_fmt}, {elapsed} elapsed, "
                "ETA {remaining}{postfix}")
_OPEN_LINE_FORMAT = "{desc}: {n_fmt}{unit}, {rate_noinv_fmt}, {elapsed} elapsed{postfix}"  # total unknown
_BAR_FORMAT = "{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}, {rate_noinv_fmt}{postfix}]"  # tqdm's own
_OPEN_BAR_FORMAT = "{desc}: {n_fmt}{unit} [{elapsed}, {rate_noinv_fmt}{postfix}]"


def line_interval() -> float:
    """Seconds between progress lines on a non-terminal: $DYNSAL_PROGRESS_SECONDS, else `LINE_INTERVAL`."""
    text = os.environ.get(INTERVAL_VARIABLE, "")
    try:
        return max(0.0, float(text)) if text else LINE_INTERVAL
    except ValueError:
        return LINE_INTERVAL


def is_terminal(stream: TextIO) -> bool:
    """Whether `stream` is an interactive terminal (False for files, pipes and captured streams)."""
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or closed
        return False


class _Lines:
    """A file for tqdm that turns each redraw (`\\r` + status) into one line of its own, and drops the
    redraws of the first `delay` seconds (a short job prints nothing; tqdm < 4.59, Debian bullseye's, has
    no `delay` of its own)."""

    def __init__(self, stream: TextIO, delay: float):
        self.stream, self.delay, self.opened = stream, delay, time.monotonic()
        self.dropped = False  # whether the last redraw was dropped

    def write(self, text: str) -> None:
        line = _CONTROL.sub("", text).rstrip()
        if not line:
            return
        self.dropped = time.monotonic() - self.opened < self.delay
        if not self.dropped:
            self.stream.write(line + "\n")

    def flush(self) -> None:
        self.stream.flush()


class _LineBar(tqdm):
    """tqdm for a non-terminal: its last line is printed once (tqdm redraws it on close)."""

    def close(self) -> None:
        if getattr(self, "last_print_n", None) == self.n and not self.fp.dropped:
            self.leave = False
        super().close()


class Silent:
    """The progress of a job whose progress is not shown (`--quiet`): every call does nothing."""

    n = 0

    def update(self, n: int = 1) -> None:
        """Nothing (a shown bar advances by `n`)."""

    def set_postfix_str(self, text: str = "", refresh: bool = True) -> None:
        """Nothing (a shown bar appends `text`)."""

    def set_description_str(self, text: str = "", refresh: bool = True) -> None:
        """Nothing (a shown bar changes its label)."""

    def reset(self, total: Optional[int] = None) -> None:
        """Nothing (a shown bar starts again at 0 of `total`)."""

    def close(self) -> None:
        """Nothing (a shown bar ends)."""

    def __enter__(self) -> Silent:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def progress_bar(total: Optional[int], desc: str, unit: str = "it", initial: int = 0, enabled: bool = True,
                 unit_scale: bool = False, leave: bool = False, position: Optional[int] = None,
                 stream: Optional[TextIO] = None):
    """A progress display for `total` units of work (None: unknown), on `stream` (default stderr).

    Args:
        total: units of work, or None when unknown (a stream, a video without a frame count).
        desc: what is being done, e.g. "dynsal predict clip".
        unit: the unit's name in the plural ("frames", "samples"); "B" for bytes.
        initial: units already done (a resumed job).
        enabled: False gives a `Silent` display (`--quiet`).
        unit_scale: scale large counts with k/M/G prefixes (bytes of a download).
        leave: keep the bar on a terminal after it closes (a line is always left on a non-terminal).
        position: the row of a bar shown under another one on a terminal (0 = top).
        stream: where to write (default sys.stderr).

    Returns:
        a tqdm bar (update, set_postfix_str, set_description_str, reset, close) or a `Silent` one.
    """
    if not enabled:
        return Silent()
    stream = stream or sys.stderr
    unit = unit if unit == "B" else f" {unit}"  # "3.2 frames/s", "120/250 frames"
    if is_terminal(stream):
        return tqdm(total=total, initial=initial, desc=desc, unit=unit, unit_scale=unit_scale, file=stream,
                    leave=leave, position=position, dynamic_ncols=True,
                    bar_format=_BAR_FORMAT if total else _OPEN_BAR_FORMAT)
    interval = line_interval()
    return _LineBar(total=total, initial=initial, desc=desc, unit=unit, unit_scale=unit_scale,
                    file=_Lines(stream, interval), leave=True, mininterval=interval, miniters=1,
                    bar_format=_LINE_FORMAT if total else _OPEN_LINE_FORMAT)


def write_line(text: str, stream: Optional[TextIO] = None) -> None:
    """Print one line to `stream` (default stderr) without breaking a bar drawn on a terminal."""
    stream = stream or sys.stderr
    if is_terminal(stream):
        tqdm.write(text, file=stream)
    else:
        stream.write(text + "\n")
        stream.flush()
