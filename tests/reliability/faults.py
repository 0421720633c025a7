"""Tools for the fault tests: run dynsal in a subprocess (optionally under a memory limit), record a folder
tree to prove nothing outside an output was touched, make full or read-only file systems (tmpfs, as root),
and hold an output's lock from another process.
"""
from __future__ import annotations

import contextlib
import functools
import os
import re
import resource
import stat
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Dict, Iterator, List, NamedTuple, Optional, Sequence, Tuple

import pytest

from tests.interrupting import SAFETY_NET_S

REPO = Path(__file__).resolve().parents[2]

_HOLD = """
import sys
from pathlib import Path
from dynsal.lock import OutputLock
with OutputLock(Path(sys.argv[1]), "held output", sys.argv[2]):
    print("held", flush=True)
    sys.stdin.read()
"""


def lock_holder(lock_path: Path, command: str) -> subprocess.Popen:
    """A process holding the lock file `lock_path` as `command` until its stdin closes."""
    process = subprocess.Popen([sys.executable, "-c", _HOLD, str(lock_path), command], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, text=True, env=os.environ)
    assert process.stdout.readline() == "held\n"
    return process


class Result(NamedTuple):
    returncode: int
    stdout: str
    stderr: str

    def error_line(self) -> str:
        """The one line dynsal printed on stderr (asserting it is one line and no traceback)."""
        lines = [line for line in self.stderr.splitlines() if line.strip()]
        assert "Traceback" not in self.stderr and "Exception ignored" not in self.stderr, self.stderr
        assert len(lines) == 1, self.stderr
        return lines[0]


def run_dynsal(args: Sequence[str], cwd: Optional[Path] = None, memory_bytes: Optional[int] = None,
               env: Optional[Dict[str, str]] = None, timeout: float = SAFETY_NET_S) -> Result:
    """`python -m dynsal ARGS` in a subprocess of this checkout; `memory_bytes` caps its address space
    (RLIMIT_AS), so a regression that allocates from an untrusted size fails instead of eating the machine."""
    def limit():
        if memory_bytes:
            resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))

    full_env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
                **(env or {})}
    done = subprocess.run([sys.executable, "-m", "dynsal", *map(str, args)], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=timeout, preexec_fn=limit)
    return Result(done.returncode, done.stdout, done.stderr)


@functools.cache
def import_address_space(module: str) -> int:
    """Bytes of address space (VmPeak) a fresh Python reaches by importing `module` of this checkout — what a
    `memory_bytes` limit must leave above its margin: torch's CUDA builds map over 3 GB at import, the CPU
    build under 1 GB."""
    code = f"import {module}, re; print(re.search(r'VmPeak:\\s+(\\d+) kB', open('/proc/self/status').read())[1])"
    done = subprocess.run([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": str(REPO)},
                          capture_output=True, text=True, timeout=300, check=True)
    return int(re.fullmatch(r"\d+\n", done.stdout)[0]) * 1024


def tree(root: Path) -> Dict[str, Tuple[int, ...]]:
    """{relative path: (mode, size, mtime_ns)} of every file and symlink under `root`, (mode,) of every folder
    (a folder's own mtime changes when something is made and removed in it: its entries are what count)."""
    out = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(folder) / name
            info = path.lstat()
            is_dir = stat.S_ISDIR(info.st_mode)
            out[str(path.relative_to(root))] = (info.st_mode,) if is_dir else (info.st_mode, info.st_size,
                                                                                info.st_mtime_ns)
    return out


def changed(before: Dict, after: Dict) -> List[str]:
    """Paths added, removed or modified between two `tree` records."""
    return sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))


@contextlib.contextmanager
def tmpfs(folder: Path, size: str, read_only: bool = False) -> Iterator[Path]:
    """Mount a tmpfs of `size` (e.g. "2m") on `folder` (read-only when asked); skip when mounting is not
    allowed (not root, no mount namespace rights). Unmounted afterwards."""
    folder.mkdir(parents=True, exist_ok=True)
    options = f"size={size},mode=0777" + (",ro" if read_only else "")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, f"dynsal-test-{uuid.uuid4().hex[:8]}",
                           str(folder)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip() or 'mount failed'}); needs root")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=True)


def fill_up(folder: Path, leave: int = 0) -> None:
    """Fill the file system of `folder` until at most `leave` bytes are free."""
    chunk = b"\0" * 4096
    with open(folder / "filler", "wb") as handle:
        try:
            while os.statvfs(folder).f_bavail * os.statvfs(folder).f_frsize > leave:
                handle.write(chunk)
                handle.flush()
        except OSError:
            pass


@contextlib.contextmanager
def read_only_folder(folder: Path) -> Iterator[Path]:
    """An empty folder nothing can be written in: chmod 0555 for a normal user; as root (who ignores
    permissions) a read-only tmpfs mounted on it."""
    if os.geteuid() != 0:
        folder.mkdir(parents=True, exist_ok=True)
        folder.chmod(0o555)
        try:
            yield folder
        finally:
            folder.chmod(0o755)
        return
    with tmpfs(folder, "1m", read_only=True) as mounted:
        yield mounted
