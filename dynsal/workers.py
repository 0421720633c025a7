"""Worker processes of parallel jobs (`--jobs N`, predict's flow workers) leave Ctrl-C to their parent
and never outlive it. Every pool dynsal runs is started by `WorkerProcesses`: a multiprocessing Pool
(`pool()`: make-lmdb/make-hdf5, flow) or a concurrent.futures executor (`executor()`: predict's flow
workers, eval), with the same start-up rules below.

A terminal's Ctrl-C reaches every process of the foreground group: workers that took it would each
print a KeyboardInterrupt traceback (or, while still starting, a "Fatal Python error"). Workers are
started inside `interrupts_ignored`: SIGINT is ignored while they start, and a process started with
SIGINT ignored keeps ignoring it (Python installs its KeyboardInterrupt handler only where SIGINT was
not ignored at start-up, and forked children inherit the disposition). So the parent alone takes a
Ctrl-C: it prints one line, ends the pool and exits 130. A Ctrl-C in the milliseconds the workers
take to start is ignored (press it again).

A parent that dies without ending its pool (`kill -9`, the OOM killer) would leave its workers
waiting for work forever, and with them multiprocessing's fork server (which lives while a worker
holds its "alive" pipe) and resource tracker (which lives while anyone holds its pipe). Each worker's
initialiser therefore calls `exit_with(parent pid)`: the worker ends when that process ends.
"""
from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import select
import signal
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_all_start_methods, get_context
from multiprocessing.pool import Pool
from typing import Iterator, Optional, Sequence, Type

import cv2

from dynsal.errors import DynsalError

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
POLL_SECONDS = 1.0  # the parent check where the kernel cannot wake us (no pidfd)


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


def _start_worker(parent: int, one_opencv_thread: bool) -> None:
    """Every worker's initialiser: Ctrl-C is the parent's to handle, the worker ends with `parent`
    (`exit_with`), and with `one_opencv_thread` OpenCV uses one thread (one frame worker per core)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    exit_with(parent)
    if one_opencv_thread:
        cv2.setNumThreads(1)


@dataclass(frozen=True)
class WorkerProcesses:
    """How dynsal starts `count` worker processes (the module docstring's rules), as a Pool or an executor.

    Attributes:
        count: the processes.
        start_method: "spawn", "forkserver" (spawn where the platform has no fork server: workers forked from
            a clean server process, inheriting no thread of this one), or None: the platform's default.
        preload: modules the fork server imports once, before it forks the workers.
        one_opencv_thread: OpenCV single-threaded in each worker (frame work: one worker per core).
        error: what is raised where processes cannot start here (e.g. no /dev/shm for their semaphores),
            with `hint` (what to do) in its message.
    """

    count: int
    start_method: Optional[str] = "spawn"
    preload: Sequence[str] = ()
    one_opencv_thread: bool = False
    error: Type[DynsalError] = DynsalError
    hint: str = "run with --jobs 1"

    def pool(self) -> Pool:
        """A multiprocessing Pool, its workers started now; leaving its `with` (or `terminate()`) ends them at
        once, work in progress included."""
        with self._starting():
            return self._context().Pool(self.count, initializer=_start_worker, initargs=self._initargs())

    def executor(self) -> ProcessPoolExecutor:
        """A ProcessPoolExecutor: its workers start as work is submitted, so submit inside `interrupts_ignored()`;
        `shutdown` lets running work finish."""
        with self._starting():
            return ProcessPoolExecutor(self.count, mp_context=self._context(), initializer=_start_worker,
                                       initargs=self._initargs())

    def _context(self):
        method = self.start_method
        if method == "forkserver" and method not in get_all_start_methods():
            method = "spawn"
        context = get_context(method)
        if method == "forkserver" and self.preload:
            context.set_forkserver_preload(list(self.preload))
        return context

    def _initargs(self) -> tuple:
        return os.getpid(), self.one_opencv_thread

    @contextlib.contextmanager
    def _starting(self) -> Iterator[None]:
        try:
            with interrupts_ignored():
                yield
        except (OSError, ImportError) as exc:
            hint = f"; {self.hint}" if self.hint else ""
            raise self.error(f"cannot start {self.count} worker processes ({exc}){hint}") from exc


def exit_with(parent: int) -> None:
    """End this worker process as soon as process `parent` (the dynsal command that made the pool) ends,
    however it ends. Call it first in the worker's initialiser.

    Two mechanisms: where `parent` is this process's parent on Linux, the kernel's parent-death signal
    (`prctl(PR_SET_PDEATHSIG, SIGKILL)`; it fires when the parent *thread* that started this process
    ends, so pools must be made in a thread that lives as long as them: dynsal makes them in the main
    thread, and a fork server's main thread forks predict's workers); and in every case a daemon thread
    that waits for `parent` to end (on a pidfd where Linux has them, else checking every second) and
    then exits the process. A parent already gone when this runs ends the worker at once.
    """
    if os.getppid() == parent and sys.platform.startswith("linux"):
        _set_parent_death_signal()
    if not process_alive(parent):
        os._exit(1)
    threading.Thread(target=_exit_when_gone, args=(parent,), name="dynsal-parent-watch", daemon=True).start()


def _set_parent_death_signal() -> None:
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        return  # the watch thread still ends the worker
    if os.getppid() == 1:  # the parent died before the signal was armed
        os._exit(1)


def process_alive(pid: int) -> bool:
    """Whether process `pid` exists (signal 0 reaches it)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _exit_when_gone(parent: int) -> None:
    try:
        handle = os.pidfd_open(parent)
    except (AttributeError, OSError):  # no pidfd here (Python < 3.9, Linux < 5.3, other systems), or gone
        handle = None
    if handle is not None:
        select.select([handle], [], [])  # readable when the process has ended
    else:
        while process_alive(parent):
            time.sleep(POLL_SECONDS)
    os._exit(1)
