#!/bin/sh
# Install Debian bullseye's packaged BVLC Caffe 1.0 (CPU, OpenBLAS) with pycaffe and the Python
# libraries dynsal uses there. Run as root INSIDE a Debian bullseye system: the oracle chroot
# (scripts/build_oracle.sh copies and runs this file) and docker/Dockerfile.cpu use this one script.
# Without libopenblas0-pthread Caffe falls back to the reference BLAS, ~15x slower.
set -eu
# The Python libraries dynsal and its tests use beside pycaffe.
PYTHON_PACKAGES="python3-lmdb python3-h5py python3-opencv python3-scipy python3-pil python3-tqdm python3-pytest"
PACKAGES="python3-caffe caffe libopenblas0-pthread $PYTHON_PACKAGES"
case "${1:-}" in
  --list) echo "$PACKAGES"; exit 0 ;;
esac
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $PACKAGES >/dev/null
apt-get clean
rm -rf /var/lib/apt/lists/*
