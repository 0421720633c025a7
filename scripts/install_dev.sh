#!/usr/bin/env bash
# Install dynsal from this checkout for development: the package (editable) with its test tools, then
# OpenCV contrib's cv2 in place. opencv-python-headless (a dependency) and opencv-contrib-python-headless
# (the test extra: TV-L1 and DeepFlow) both provide the module cv2, and pip installs the plain one last;
# reinstalling contrib, a superset, makes its cv2 the one in place.
#
# Usage: bash scripts/install_dev.sh [pip options]   (CI: -q -c .ci/constraints.txt, the torch it tests)
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install "$@" -e ".[test]"
contrib="$(python3 -c 'import importlib.metadata as m; print(m.version("opencv-contrib-python-headless"))')"
python3 -m pip install "$@" --force-reinstall --no-deps "opencv-contrib-python-headless==$contrib"
python3 -c 'import cv2; cv2.optflow.DualTVL1OpticalFlow_create' \
  || { echo "install_dev: OpenCV contrib's cv2 is not the one in place" >&2; exit 1; }
