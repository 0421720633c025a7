"""Worker processes of parallel jobs (`--jobs N`) leave Ctrl-C to their parent.

A terminal's Ctrl-C reaches every process of the foreground group: workers that took it would each
print a KeyboardInterrupt traceback (or, while still starting, a "Fatal Python error"). Workers are
started inside `interrupts_ignored`: SIGINT is ignored while they start, and a process started with
SIGINT ignored keeps ignoring it (Python installs its KeyboardInterrupt handler only where SIGINT was
not ignored at start-up, and forked children inherit the disposition). So the parent alone takes a
Ctrl-C: it prints one line, ends the pool and exits 130. A Ctrl-C in the milliseconds the workers
take to start is ignored (press it again).
"""
from __future__ import annotations

import contextlib
import signal
from typing import Iterator


@contextlib.contextmanager
def interrupts_ignored() -> Iterator[None]:
    """Ignore SIGINT while worker processes start (they keep ignoring it); restored afterwards. Outside
    the main thread, where signal handlers cannot be set, nothing changes."""
    try:
        old = signal.signal(signal.SIGINT, signal.SIG_IGN)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)
