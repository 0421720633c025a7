#!/usr/bin/env bash
# Install dynsal from this checkout for development into one Python environment, which .venv names:
#   - an active virtual environment ($VIRTUAL_ENV) or conda environment ($CONDA_PREFIX) is used as it is, and
#     .venv is made a link to it;
#   - otherwise .venv is a virtual environment made here with `python3 -m venv` (so an externally managed
#     Python, PEP 668 — Debian 12+, Ubuntu 23.04+ — is never written to; no --break-system-packages).
# Either way the README's second command, `.venv/bin/python -m pytest -q`, runs the tests in it.
#
# Into it: the package (editable) with its test tools, then OpenCV contrib's cv2 in place.
# opencv-python-headless (a dependency) and opencv-contrib-python-headless (the test extra: TV-L1 and
# DeepFlow) both provide the module cv2, and pip installs the plain one last; reinstalling contrib, a
# superset, makes its cv2 the one in place.
#
# Usage: bash scripts/install_dev.sh [pip options]   (CI: -q -c .ci/constraints.txt, the torch it tests)
set -euo pipefail
cd "$(dirname "$0")/.."

say() { echo "install_dev: $*"; }
fail() { echo "install_dev: $*" >&2; exit 1; }

active="${VIRTUAL_ENV:-${CONDA_PREFIX:-}}"
if [ -n "$active" ]; then
  if [ -L .venv ] || [ -e .venv ]; then
    [ "$(readlink -f .venv)" = "$(readlink -f "$active")" ] \
      || fail ".venv is another environment than the active $active: deactivate it to use .venv, or move .venv away"
  else
    ln -s "$active" .venv || fail "cannot link .venv to $active"
  fi
  say "installing into the active environment $active (.venv links to it)"
elif [ -x .venv/bin/python ]; then
  say "installing into the virtual environment .venv"
else
  python3 -m venv .venv \
    || fail "python3 -m venv .venv failed: install Python's venv module (Debian/Ubuntu: apt install python3-venv)"
  say "made a virtual environment in .venv ($(.venv/bin/python --version)); the tests run with .venv/bin/python"
fi
python=.venv/bin/python
"$python" -m pip install "$@" -e ".[test]"
contrib="$("$python" -c 'import importlib.metadata as m; print(m.version("opencv-contrib-python-headless"))')"
"$python" -m pip install "$@" --force-reinstall --no-deps "opencv-contrib-python-headless==$contrib"
"$python" -c 'import cv2; cv2.optflow.DualTVL1OpticalFlow_create' \
  || fail "OpenCV contrib's cv2 is not the one in place"
say "done: run the tests with .venv/bin/python -m pytest -q"
