"""Worker processes of parallel jobs (`--jobs N`) leave Ctrl-C to their parent.

A terminal's Ctrl-C reaches every process of the foreground group: workers that took it would each
print a KeyboardInterrupt traceback. With `ignore_interrupts` as their initializer only the parent
stops (one line, exit 130) and ends the pool.
"""
from __future__ import annotations

import signal


def ignore_interrupts() -> None:
    """Pool initializer: SIGINT is ignored in the worker (its parent terminates the pool)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
