"""Is pycaffe usable in this Python? Answered by importing it for real, in a child interpreter. And is there
an NVIDIA GPU for Caffe to use (`nvidia_gpu_present`)?

A `caffe` package that is found is not yet one that works: its `_caffe` extension may be built
against another numpy (numpy 1 vs 2), miss a shared library (libcudnn, libboost_python), or abort
inside the import. The import therefore runs in a child process (with the same interpreter and
environment), so that a crash there cannot take this process down; the answer is kept for the life
of the process.
"""
from __future__ import annotations

import functools
import glob
import importlib.util
import os
import signal
import subprocess
import sys
from typing import Optional

PROBE_TIMEOUT_S = 120  # `import caffe` loads skimage, scipy and the CUDA libraries: seconds, not minutes


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""


@functools.cache
def pycaffe_problem() -> Optional[str]:
    """Why `import caffe` fails in this Python (one line), or None when pycaffe imports.

    "no module named 'caffe'" when there is none; otherwise the last line of the child's error
    output (e.g. ``ImportError: libcudnn.so.9: cannot open shared object file``), or the signal that
    killed it, or the timeout.
    """
    spec = importlib.util.find_spec("caffe")
    if spec is None:
        return "no module named 'caffe'"
    where = spec.submodule_search_locations[0] if spec.submodule_search_locations else spec.origin
    env = dict(os.environ, GLOG_minloglevel=os.environ.get("GLOG_minloglevel", "2"))
    try:
        result = subprocess.run([sys.executable, "-c", "import caffe"], capture_output=True, text=True,
                                env=env, timeout=PROBE_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return f"`import caffe` ({where}) did not finish within {PROBE_TIMEOUT_S} s"
    if result.returncode == 0:
        return None
    if result.returncode < 0:
        why = f"killed by signal {_signal_name(-result.returncode)}"
    else:
        why = _last_line(result.stderr) or f"exit status {result.returncode}"
    return f"`import caffe` ({where}) fails: {why}"


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return str(number)


def pycaffe_installed() -> bool:
    """Whether a `caffe` module is found at all (working or not)."""
    return importlib.util.find_spec("caffe") is not None


def nvidia_gpu_present() -> bool:
    """Whether an NVIDIA GPU is usable here: a /dev/nvidia<N> device and a control device that opens
    (a node left by a package in a chroot or image without the driver does not open)."""
    if not glob.glob("/dev/nvidia[0-9]*"):
        return False
    try:
        os.close(os.open("/dev/nvidiactl", os.O_RDWR))
    except OSError:
        return False
    return True
