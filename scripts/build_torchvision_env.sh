#!/usr/bin/env bash
# Build the environment the RAFT tests run in: a venv with torch and torchvision of matching builds,
# plus dynsal (editable, with its data dependencies). The main environment's CPU torch 2.13.0 has no
# torchvision that imports beside it, so `dynsal.data.raft` is tested here.
#
# Usage: scripts/build_torchvision_env.sh [DIR]   (default: $DYNSAL_TORCHVISION_ENV or
#                                                   /var/cache/dynsal/torchvision-venv)
# Idempotent: a stamp records the pins and the checkout; when it matches, nothing is done.
# Prints the venv's python as its last line.
set -euo pipefail

DIR="${1:-${DYNSAL_TORCHVISION_ENV:-/var/cache/dynsal/torchvision-venv}}"
REPO="$(cd "$(dirname "$0")/.." && pwd)"
case "$(uname -m)" in
  x86_64) PINS="torch==2.14.1 torchvision==0.29.1" ;;   # the pair this machine kind keeps on disk
  aarch64) PINS="torch==2.9.1 torchvision==0.24.1" ;;
  *) echo "torchvision env: no known torch/torchvision pair for $(uname -m)" >&2; exit 2 ;;
esac
STAMP="$DIR/.dynsal-torchvision-ready"
WANT="$PINS $REPO"

if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$WANT" ]; then
  echo "torchvision env: installing $PINS and dynsal into $DIR (about a minute)" >&2
  mkdir -p "$(dirname "$DIR")"
  [ -x "$DIR/bin/python" ] || "${PYTHON:-python3}" -m venv "$DIR"
  "$DIR/bin/python" -m pip install -q $PINS -e "$REPO[data]" >"$DIR.install.log" 2>&1 \
    || { echo "torchvision env: pip install failed, see $DIR.install.log" >&2; exit 1; }
  "$DIR/bin/python" -c "import torchvision.models.optical_flow, dynsal" \
    || { echo "torchvision env: torchvision or dynsal does not import in $DIR" >&2; exit 1; }
  echo "$WANT" > "$STAMP"
fi
echo "$DIR/bin/python"
