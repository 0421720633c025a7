"""The real-Caffe oracle: BVLC Caffe 1.0 (Debian bullseye's CPU build) in a chroot.

`scripts/build_oracle.sh` builds the chroot (idempotently; needs root). `Oracle` runs Python
snippets, Caffe's tools or dynsal itself inside it, exchanging files through a work folder that
lives under the chroot (`Workdir.host` outside = `Workdir.inner` inside). Each command runs in a
private mount namespace with its own /proc, so nothing stays mounted afterwards.

The chroot location: $DYNSAL_ORACLE_ROOT, default /var/cache/dynsal/oracle-bullseye.
Building needs a dynsal source checkout (the script is not part of the installed package).
"""
from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Sequence

from dynsal.errors import OracleUnavailable

DEFAULT_ROOT = "/var/cache/dynsal/oracle-bullseye"
PACKAGE_DIR = Path(__file__).resolve().parent
BUILD_SCRIPT = PACKAGE_DIR.parent / "scripts" / "build_oracle.sh"
READY_STAMP = ".dynsal-oracle-ready"
INNER_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class OracleCommandError(subprocess.CalledProcessError):
    """A command inside the chroot failed; the message ends with its last lines of stderr."""

    def __str__(self) -> str:
        tail = "\n".join((self.stderr or "").strip().splitlines()[-15:])
        return f"{super().__str__()}\n--- stderr (last lines) ---\n{tail}"


def oracle_root() -> Path:
    return Path(os.environ.get("DYNSAL_ORACLE_ROOT", DEFAULT_ROOT))


@dataclass
class Workdir:
    """A folder shared with the chroot: `host` is its path here, `inner` the same folder inside."""

    host: Path
    inner: str

    def inside(self, *parts: str) -> str:
        """The in-chroot path of a file in this folder."""
        return "/".join([self.inner, *parts])


class Oracle:
    """Runs commands inside the Caffe chroot at `root`."""

    def __init__(self, root: Path):
        self.root = Path(root)

    @classmethod
    def ensure(cls, build: bool = True) -> Oracle:
        """The oracle, built first when missing and `build` is true.

        Raises:
            OracleUnavailable: not root, no build script, or the build failed (with its last output).
        """
        root = oracle_root()
        if (root / READY_STAMP).is_file():
            return cls(root)
        if not build:
            raise OracleUnavailable(f"no oracle chroot at {root}; build it with scripts/build_oracle.sh")
        if os.geteuid() != 0:
            raise OracleUnavailable("the Caffe chroot needs root to build and run (debootstrap, chroot)")
        if not BUILD_SCRIPT.is_file():
            raise OracleUnavailable(f"{BUILD_SCRIPT} not found: build the oracle from a dynsal source checkout")
        result = subprocess.run(["bash", str(BUILD_SCRIPT), str(root)], capture_output=True, text=True)
        if result.returncode != 0 or not (root / READY_STAMP).is_file():
            tail = (result.stdout + result.stderr).strip().splitlines()[-5:]
            raise OracleUnavailable(f"building the Caffe chroot failed: {' | '.join(tail)}")
        return cls(root)

    def workdir(self) -> Workdir:
        """A new exchange folder under the chroot's /tmp holding a copy of the dynsal package."""
        host = Path(tempfile.mkdtemp(prefix="dynsal-oracle-", dir=self.root / "tmp"))
        shutil.copytree(PACKAGE_DIR, host / "src" / "dynsal", ignore=shutil.ignore_patterns("__pycache__"))
        return Workdir(host, "/" + str(host.relative_to(self.root)))

    def run(self, argv: Sequence[str], workdir: Workdir, env: Dict[str, str] | None = None,
            timeout: float = 600, check: bool = True) -> subprocess.CompletedProcess:
        """Run `argv` inside the chroot, in `workdir`, with dynsal importable; returns the result.

        Raises:
            OracleCommandError: non-zero exit when `check` (its stderr ends the message).
        """
        inner_env = {"PATH": INNER_PATH, "HOME": workdir.inner, "LANG": "C.UTF-8", "GLOG_minloglevel": "2",
                     "PYTHONPATH": workdir.inside("src"), "PYTHONDONTWRITEBYTECODE": "1",
                     "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", str(os.cpu_count() or 1))}
        inner_env.update(env or {})
        inner = " ".join(["cd", shlex.quote(workdir.inner), "&&", "exec", "env", "-i"]
                         + [shlex.quote(f"{k}={v}") for k, v in inner_env.items()]
                         + [shlex.quote(a) for a in argv])
        root = shlex.quote(str(self.root))
        script = f"mount -t proc proc {root}/proc && exec chroot {root} /bin/sh -c {shlex.quote(inner)}"
        result = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
                                capture_output=True, text=True, timeout=timeout)
        if check and result.returncode != 0:
            raise OracleCommandError(result.returncode, list(argv), result.stdout, result.stderr)
        return result

    def python(self, code: str, workdir: Workdir, **kwargs) -> subprocess.CompletedProcess:
        """Run Python 3.9 code (pycaffe, numpy 1.19, protobuf 3.12 available) inside the chroot."""
        script = workdir.host / "snippet.py"
        script.write_text(code)
        return self.run(["python3", workdir.inside("snippet.py")], workdir, **kwargs)
