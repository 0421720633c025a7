"""dynsal.lock: a run refused while the holder has taken the lock but not yet written its name waits for the
name (the race seen in CI: two predict runs, one refused between the other's lock and its write); the lock is
a record lock owned by the open file (not the process); a file system that cannot lock is named."""
from __future__ import annotations

import errno
import fcntl
import json
import os

import pytest

from dynsal import lock
from dynsal.errors import OutputError
from dynsal.lock import LOCK_HEADER, OutputLock
from tests.interrupting import SAFETY_NET_S

HOLDER = {"command": "dynsal predict", "pid": 4321, "host": "somehost", "since": 0.0}


@pytest.fixture()
def taken(tmp_path):
    """A lock file held (dynsal's record lock) through another open file description, still empty."""
    path = tmp_path / ".clip.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT)
    assert lock.try_lock(fd)
    yield path, fd
    os.close(fd)


def test_a_name_written_after_the_refusal_began_is_reported(taken, monkeypatch):
    """The holder writes its name once the refused run has read the file and found none (seen, not timed)."""
    path, fd = taken
    read, seen = lock._holder, []

    def holder(raw):
        seen.append(raw)
        if len(seen) == 1:  # the refused run has found no name yet: the holder writes it now
            os.write(fd, (LOCK_HEADER + json.dumps(HOLDER)).encode())
        return read(raw)

    monkeypatch.setattr(lock, "_holder", holder)
    monkeypatch.setattr(lock, "NAME_WAIT_S", SAFETY_NET_S)  # the refused run waits for the name, not for a time
    with pytest.raises(OutputError) as refused, OutputLock(path, "out/clip", "dynsal predict"):
        pass
    assert seen[0] == "" and len(seen) == 2
    assert str(refused.value).startswith("out/clip is being written by dynsal predict (process 4321 on somehost, ")
    assert path.read_text() == LOCK_HEADER + json.dumps(HOLDER)  # the refused run changed nothing


def test_a_holder_that_never_names_itself_is_reported_after_the_wait(taken, monkeypatch):
    path, fd = taken
    os.write(fd, (LOCK_HEADER + '{"command": "dynsal pre').encode())  # a name cut short
    monkeypatch.setattr(lock, "NAME_WAIT_S", 0.1)
    with pytest.raises(OutputError, match=r"^out/clip is being written by another process \(it has not written "
                                          r"its name into the lock file\); wait for it to finish"):
        with OutputLock(path, "out/clip", "dynsal predict"):
            pass


def test_the_lock_belongs_to_the_open_file_not_the_process(tmp_path):
    """Record locks, but open-file-description ones: a second lock in the same process is refused, and opening
    and closing the file elsewhere in the process (as is_dynsal_lock does) keeps the lock (a classic
    per-process fcntl lock would be shared, and dropped by that close)."""
    path = tmp_path / ".clip.lock"
    with OutputLock(path, "out/clip", "dynsal predict"):
        assert lock.is_dynsal_lock(path)  # opens and closes the file
        with pytest.raises(OutputError, match=r"^out/clip is being written by dynsal predict \(process "):
            with OutputLock(path, "out/clip", "dynsal predict"):
                pass
        probe = os.open(path, os.O_RDWR)
        try:
            assert not lock.try_lock(probe)
        finally:
            os.close(probe)
    probe = os.open(tmp_path / "again", os.O_RDWR | os.O_CREAT)
    try:
        assert lock.try_lock(probe)
    finally:
        os.close(probe)


def test_a_file_system_without_locks_is_named(tmp_path, monkeypatch):
    def no_locks(fd, *args):
        raise OSError(errno.ENOLCK, os.strerror(errno.ENOLCK))

    monkeypatch.setattr(fcntl, "fcntl", no_locks)
    monkeypatch.setattr(fcntl, "lockf", no_locks)
    with pytest.raises(OutputError, match=f"^{tmp_path}/.clip.lock: the file system of {tmp_path} cannot lock files "
                                          r"\(No locks available\), so dynsal cannot keep two runs from writing "
                                          "out/clip at once; write to a folder on a file system with POSIX locks"):
        with OutputLock(tmp_path / ".clip.lock", "out/clip", "dynsal predict"):
            pass
