#!/usr/bin/env bash
# Run the tests marked `timing_sensitive` (Ctrl-C, kill -9, stop signals, concurrent runs) once more while
# stress-ng keeps every CPU busy, so a test that depends on the machine's speed fails here rather than on a
# user's busy laptop. The load is stopped when the script ends, however it ends.
#
# usage: scripts/ci_under_load.sh [PYTEST ARGUMENTS...]
#   $PYTHON       the interpreter whose pytest runs the tests (default python3)
#   $LOAD_CPUS    stress-ng CPU workers (default: one per CPU, `nproc`)
# stress-ng is installed with apt-get when missing (needs root, as the chroot builds do).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v stress-ng >/dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq stress-ng >/dev/null
fi

# --timeout: a load left behind by a killed CI job (no trap runs on SIGKILL) still ends
stress-ng --cpu "${LOAD_CPUS:-$(nproc)}" --timeout 30m --quiet &
load=$!
trap 'kill "$load" 2>/dev/null || true; wait "$load" 2>/dev/null || true' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# CI= : the CI guard's required kinds (real-Caffe parity, CUDA Caffe, RAFT) are the main run's to check; this
# run selects none of them. pytest exits 5 when the marker selects no test.
CI= "${PYTHON:-python3}" -m pytest -q -m timing_sensitive "$@"
