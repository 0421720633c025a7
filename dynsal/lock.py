"""An exclusive lock on one output, so two runs never write the same output at once.

The lock is a POSIX record lock (fcntl) on the whole of a small lock file that names its holder (command,
process id, host, start time): the kind NFS (v3 through NLM, v4 natively) and Lustre pass on to the server, so
runs on different cluster nodes sharing a folder exclude each other (`flock` is not shared between clients
everywhere). Where Linux has them (3.15+) it is an open-file-description lock (F_OFD_SETLK): owned by the open
file like flock's, so a process that opens and closes the same file elsewhere (or takes a second OutputLock on
it) does not drop or share it, as classic per-process fcntl locks would; elsewhere `fcntl.lockf`. A file
system that cannot lock at all (Lustre mounted without `flock`, some FUSE and SMB mounts) gets one line saying
so. The kernel (or the server) releases the lock when the holder exits in any way (kill -9 included), so a
lock is never stale; a second run that finds it held fails at once with one line naming the holder (no
waiting, no timeout to tune). The holder writes its name just after it takes the lock, so a run refused in
between re-reads the file for up to `NAME_WAIT_S` seconds to name it. The holder removes the lock file while
still holding the lock; a run that opened the old file before the removal sees that the path no longer refers
to its file and starts again.
"""
from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import struct
import time
from pathlib import Path
from typing import Optional

from dynsal.errors import OutputError

#: the first bytes of every lock file dynsal writes; a file at the lock's path without them is not dynsal's
LOCK_HEADER = "dynsal lock "
#: how long a refused run waits at most for the holder to write its name (it does so right after taking the lock;
#: a busy machine or a file server can delay that write by seconds, and the wait ends as soon as the name is there)
NAME_WAIT_S = 10.0


#: fcntl's open-file-description lock command where the platform has it (Linux), else None (fcntl.lockf)
_OFD_SETLK = getattr(fcntl, "F_OFD_SETLK", None)
#: errors meaning "held by someone else" (EACCES: some systems answer a conflicting F_SETLK so)
_HELD = (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK)


def try_lock(fd: int) -> bool:
    """Take an exclusive record lock on the whole file open at `fd` without waiting; False when another open
    file (any process, any NFS client) holds it.

    Raises:
        OSError: the file system cannot lock (ENOLCK, ENOSYS, EOPNOTSUPP, ...).
    """
    try:
        if _OFD_SETLK is not None:  # struct flock: l_type, l_whence, l_start, l_len, l_pid (0 for OFD locks)
            fcntl.fcntl(fd, _OFD_SETLK, struct.pack("hhqqi4x", fcntl.F_WRLCK, os.SEEK_SET, 0, 0, 0))
        else:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno in _HELD:
            return False
        raise
    return True


def _holder(raw: str) -> Optional[dict]:
    """The holder named in a lock file's contents, or None while it has not (fully) written its name."""
    if not raw.startswith(LOCK_HEADER):
        return None
    try:
        holder = json.loads(raw[len(LOCK_HEADER):])
        return holder if isinstance(holder, dict) and {"command", "pid", "host", "since"} <= holder.keys() else None
    except ValueError:
        return None


def _holder_text(fd: int) -> str:
    """`dynsal predict (process 123 on host, since 2025-01-01 10:00:00)` from the lock file open at `fd`,
    waiting up to `NAME_WAIT_S` for a holder that has taken the lock but not yet written its name."""
    deadline = time.monotonic() + NAME_WAIT_S
    while True:
        holder = _holder(os.pread(fd, 4096, 0).decode("utf-8", "replace"))
        if holder is not None:
            try:
                since = time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(holder["since"]))
                return f"{holder['command']} (process {holder['pid']} on {holder['host']}, since {since})"
            except (TypeError, ValueError, OverflowError, OSError):
                break
        if time.monotonic() >= deadline:
            break
        time.sleep(0.02)
    return "another process (it has not written its name into the lock file)"


def is_dynsal_lock(path: Path) -> bool:
    """True when `path` is a regular file that is empty or starts with dynsal's lock header."""
    if path.is_symlink() or not path.is_file():
        return False
    with open(path, "rb") as handle:
        start = handle.read(len(LOCK_HEADER))
    return start in (b"", LOCK_HEADER.encode())


class OutputLock:
    """Hold `path` (a lock file) exclusively while one output is written.

    Args:
        path: the lock file, beside the output it guards.
        what: the output it guards, as the refusal names it (e.g. `out/clip`).
        command: what holds the lock, as a refusal names it (e.g. `dynsal predict`).

    Use as a context manager; entering raises `OutputError` naming the holder when another process
    holds the lock, or when something that is not dynsal's lock file is at `path`.
    """

    def __init__(self, path: Path, what: str, command: str):
        self.path, self.what, self.command = Path(path), what, command
        self._fd: Optional[int] = None

    def _refuse_foreign(self) -> None:
        if self.path.exists() or self.path.is_symlink():
            if not is_dynsal_lock(self.path):
                raise OutputError(f"{self.path}: exists and is not a dynsal lock file; move it away so dynsal can "
                                  f"lock {self.what}")

    def __enter__(self) -> OutputLock:
        while True:
            self._refuse_foreign()
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o666)
            except OSError as exc:
                raise OutputError(f"{self.path}: cannot create the lock file ({exc.strerror or exc}); check that "
                                  f"{self.path.parent} is a folder you can write to") from None
            try:
                locked = try_lock(fd)
            except OSError as exc:
                os.close(fd)
                raise OutputError(f"{self.path}: the file system of {self.path.parent} cannot lock files "
                                  f"({exc.strerror or exc}), so dynsal cannot keep two runs from writing "
                                  f"{self.what} at once; write to a folder on a file system with POSIX locks (NFS "
                                  "with lockd, Lustre mounted with -o flock, a local disk)") from None
            if not locked:
                try:
                    holder = _holder_text(fd)
                finally:
                    os.close(fd)
                raise OutputError(f"{self.what} is being written by {holder}; wait for it to finish, or "
                                  "write to another folder") from None
            try:
                same = os.stat(self.path, follow_symlinks=False).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)  # the holder removed the file we opened after we opened it: try the new one
        holder = {"command": self.command, "pid": os.getpid(), "host": socket.gethostname(),
                  "since": time.time()}
        self._fd = fd
        try:
            os.ftruncate(fd, 0)
            os.write(fd, (LOCK_HEADER + json.dumps(holder)).encode())
        except OSError:  # e.g. a full disk: the lock holds without its holder's name; the output's own writes fail
            pass
        return self

    def __exit__(self, *exc_info) -> None:
        try:
            self.path.unlink(missing_ok=True)
        finally:
            os.close(self._fd)
            self._fd = None
