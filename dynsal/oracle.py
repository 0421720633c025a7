"""The real-Caffe oracle: BVLC Caffe 1.0 in a chroot. Two of them, chosen by $DYNSAL_ORACLE:

- ``bullseye`` (default): Debian bullseye's packaged CPU build (1.0.0+git20180821.99bd997), Python 3.9;
  `scripts/build_oracle.sh` builds it, and builds the trixie one instead when bullseye cannot be fetched;
- ``trixie``: the same Caffe source built by dynsal with CUDA 13 + cuDNN: the GPU Docker image
  (docker/Dockerfile, Debian trixie, Python 3.13, numpy 2), its file system mounted as a chroot
  (`scripts/mount_image.sh gpu`, which builds the image where there is none), run in CPU mode. It
  outlives bullseye on Debian's mirrors, and it is the image CI builds and tests.

`Oracle` runs Python snippets, Caffe's tools or dynsal itself inside a chroot, exchanging files
through a work folder that lives under the chroot (`Workdir.host` outside = `Workdir.inner` inside).
Each command runs in a private mount namespace with its own /proc, so nothing stays mounted
afterwards. The chroot of the selected oracle: $DYNSAL_ORACLE_ROOT, else its default place
(/var/cache/dynsal/oracle-bullseye, /var/cache/dynsal/image-root-gpu). Building needs root and a
dynsal source checkout (the scripts are not part of the installed package).
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
SCRIPTS = PACKAGE_DIR.parent / "scripts"
#: oracle name -> the command that readies its chroot (idempotently; last line "...: ready at DIR")
BUILD_SCRIPTS = {"bullseye": [SCRIPTS / "build_oracle.sh"], "trixie": [SCRIPTS / "mount_image.sh", "gpu"]}
READY_STAMPS = (".dynsal-oracle-ready", ".dynsal-image-ready")  # written by the two scripts when done
# the GPU image's venv and Caffe tools first, as its ENV PATH has them (absent from bullseye's chroot)
INNER_PATH = "/opt/venv/bin:/opt/caffe/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class OracleCommandError(subprocess.CalledProcessError):
    """A command inside the chroot failed; the message ends with its last lines of stderr."""

    def __str__(self) -> str:
        tail = "\n".join((self.stderr or "").strip().splitlines()[-15:])
        return f"{super().__str__()}\n--- stderr (last lines) ---\n{tail}"


def selected_oracle() -> str:
    """The oracle $DYNSAL_ORACLE names (default "bullseye").

    Raises:
        OracleUnavailable: an unknown name.
    """
    name = os.environ.get("DYNSAL_ORACLE", "bullseye")
    if name not in BUILD_SCRIPTS:
        raise OracleUnavailable(f"DYNSAL_ORACLE={name!r} is no oracle; use one of: {', '.join(BUILD_SCRIPTS)}")
    return name


def oracle_root(name: str | None = None) -> Path:
    """The chroot of an oracle (default: the selected one); $DYNSAL_ORACLE_ROOT for the selected one."""
    selected = selected_oracle()
    name = name or selected
    if name == selected and "DYNSAL_ORACLE_ROOT" in os.environ:
        return Path(os.environ["DYNSAL_ORACLE_ROOT"])
    if name == "trixie":
        return Path(_script_output([*map(str, BUILD_SCRIPTS["trixie"]), "--print-root"]))
    return Path(DEFAULT_ROOT)


def _script_output(argv: Sequence[str]) -> str:
    if not Path(argv[0]).is_file():
        raise OracleUnavailable(f"{argv[0]} not found: the oracles are built from a dynsal source checkout")
    result = subprocess.run(["bash", *argv], capture_output=True, text=True)
    lines = (result.stdout + result.stderr).strip().splitlines()
    if result.returncode != 0:
        raise OracleUnavailable(f"{Path(argv[0]).name} failed: {' | '.join(lines[-5:])}")
    return result.stdout.strip().splitlines()[-1]


def _is_ready(root: Path) -> bool:
    return any((root / stamp).is_file() for stamp in READY_STAMPS)


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
    def ensure(cls, build: bool = True, name: str | None = None) -> Oracle:
        """An oracle (default: the selected one), built first when missing and `build` is true.

        The bullseye build falls back to the trixie oracle when bullseye cannot be fetched; the
        oracle returned is the one the build script reports ready.

        Raises:
            OracleUnavailable: not root, no build script, or the build failed (with its last output).
        """
        name = name or selected_oracle()
        root = oracle_root(name)
        if _is_ready(root):
            return cls(root)
        command = [str(part) for part in BUILD_SCRIPTS[name]]
        if not build:
            raise OracleUnavailable(f"no {name} oracle chroot at {root}; make it with "
                                    f"bash scripts/{' '.join([Path(command[0]).name, *command[1:]])}")
        if os.geteuid() != 0:
            raise OracleUnavailable("the Caffe chroot needs root to build and run (debootstrap or buildah, chroot)")
        ready = _script_output([*command, str(root)])
        built = Path(ready.rpartition("ready at ")[2])
        if not _is_ready(built):
            raise OracleUnavailable(f"building the {name} oracle did not finish: {ready}")
        return cls(built)

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
