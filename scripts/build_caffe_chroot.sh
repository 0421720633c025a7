#!/usr/bin/env bash
# CUDA + cuDNN Caffe built from BVLC source without a GPU or Docker: scripts/build_caffe_cuda.sh run in a
# Debian trixie chroot. CUDA 12.4 comes from Debian's non-free nvidia-cuda-toolkit (its nvcc takes g++ <= 13
# as host compiler: g++-13 beside trixie's g++ 14), cuDNN 9 from PyPI's nvidia-cudnn-cu12. CI builds and
# tests it; it is also the second, from-source oracle (DYNSAL_ORACLE=trixie), run in CPU mode.
#
# Usage: scripts/build_caffe_chroot.sh [DIR]     build (idempotent), last line "caffe-cuda: ready at DIR"
#        scripts/build_caffe_chroot.sh --print-root    the default DIR, without building
#
# DIR defaults to /var/cache/dynsal/caffe-cuda-<hash> ($DYNSAL_CAFFE_CUDA_ROOT overrides), <hash> keyed by this
# script, build_caffe_cuda.sh, the patches and the architectures: a change to any of them builds anew.
# Environment: CUDA_ARCH_BIN (default "90": CI compiles machine code for ONE architecture, Hopper, to save
# time; the Docker image builds Volta to Hopper), CUDA_ARCH_PTX (default: none), JOBS (default: CPUs),
# NICE (default 10). Needs root (debootstrap, chroot). Inside: Caffe in /usr/local (bin/caffe and tools,
# lib/libcaffe.so, python/caffe on python3's path), cuDNN in /usr/local/{include,lib}.
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
export CUDA_ARCH_BIN="${CUDA_ARCH_BIN:-90}" CUDA_ARCH_PTX="${CUDA_ARCH_PTX:-}"
# cuDNN 9.8 = the cuDNN of the Docker image's base (nvidia/cuda:12.8.1-cudnn-devel-ubuntu24.04).
CUDNN_WHEEL="nvidia-cudnn-cu12==9.8.0.87"
CUDNN_WHEEL_SHA256="d6b02cd0e3e24aa31d0193a8c39fec239354360d7d81055edddb69f35d53a4c8"
TOOLCHAIN="nvidia-cuda-toolkit g++-13"
HASH="$({ cat "$0" "$HERE/chroot_lib.sh" "$HERE/build_caffe_cuda.sh" "$HERE"/caffe-patches/*.patch
          echo "$CUDA_ARCH_BIN|$CUDA_ARCH_PTX"; } | sha256sum | cut -c1-12)"

if [ "${1:-}" = "--print-root" ]; then
  echo "${DYNSAL_CAFFE_CUDA_ROOT:-/var/cache/dynsal/caffe-cuda-$HASH}"
  exit 0
fi
ROOT="${1:-${DYNSAL_CAFFE_CUDA_ROOT:-/var/cache/dynsal/caffe-cuda-$HASH}}"
STAMP="$ROOT/.dynsal-caffe-cuda-ready"

say() { echo "caffe-cuda: $*"; }
# shellcheck source=scripts/chroot_lib.sh
. "$HERE/chroot_lib.sh"
ready_or_root "$STAMP" "$HASH" caffe-cuda
START=$SECONDS
need_debootstrap
[ -x "$ROOT/usr/bin/apt-get" ] || say "debootstrap trixie into $ROOT"
new_chroot trixie main,contrib,non-free \
  || { echo "caffe-cuda: debootstrap failed, see $ROOT.debootstrap.log" >&2; exit 1; }
cp /etc/resolv.conf "$ROOT/etc/resolv.conf"

PACKAGES="$TOOLCHAIN $(bash "$HERE/build_caffe_cuda.sh" --list-deps) python3-numpy python3-protobuf python3-skimage python3-six \
$(sh "$HERE/install_caffe_debian.sh" --list-python)"
say "installing the CUDA toolkit and Caffe's build dependencies (about 2.4 GB to download)"
# shellcheck disable=SC2086
in_chroot /usr/bin/env DEBIAN_FRONTEND=noninteractive sh -c \
  "apt-get update -qq && apt-get install -y -qq --no-install-recommends $PACKAGES >/dev/null && apt-get clean"

say "cuDNN from PyPI ($CUDNN_WHEEL): headers and libcudnn.so.9"
WHEELS="$(mktemp -d)"
trap 'rm -rf "$WHEELS"' EXIT
echo "$CUDNN_WHEEL --hash=sha256:$CUDNN_WHEEL_SHA256" >"$WHEELS/requirements.txt"
python3 -m pip download -q --no-deps --only-binary=:all: --platform manylinux_2_27_x86_64 -d "$WHEELS" \
  -r "$WHEELS/requirements.txt"
# libcudnn.so.9 is cuDNN 9's front library: it loads libcudnn_ops/cnn/engines_* (1 GB) only when a GPU runs
# cuDNN, which never happens here (no GPU; CPU mode), so only the headers and it are installed.
python3 - "$WHEELS"/nvidia_cudnn_cu12-*.whl "$ROOT/usr/local" <<'EOF'
import sys, zipfile
from pathlib import Path
wheel, prefix = sys.argv[1], Path(sys.argv[2])
with zipfile.ZipFile(wheel) as z:
    for name in z.namelist():
        if name.startswith("nvidia/cudnn/include/") or name == "nvidia/cudnn/lib/libcudnn.so.9":
            target = prefix / ("include" if "/include/" in name else "lib") / Path(name).name
            target.write_bytes(z.read(name))
EOF
ln -sf libcudnn.so.9 "$ROOT/usr/local/lib/libcudnn.so"  # the unversioned name the linker looks for

say "building Caffe (CUDA architectures: $CUDA_ARCH_BIN, PTX: ${CUDA_ARCH_PTX:-none})"
rm -rf "$ROOT/tmp/dynsal-caffe"
mkdir -p "$ROOT/tmp/dynsal-caffe"
cp -r "$HERE/build_caffe_cuda.sh" "$HERE/caffe-patches" "$ROOT/tmp/dynsal-caffe/"
in_chroot /usr/bin/env CUDA_ARCH_BIN="$CUDA_ARCH_BIN" CUDA_ARCH_PTX="$CUDA_ARCH_PTX" CUDA_HOST_COMPILER=/usr/bin/g++-13 \
  nice -n "${NICE:-10}" \
  bash /tmp/dynsal-caffe/build_caffe_cuda.sh --prefix /usr/local --python python3 --jobs "${JOBS:-$(nproc)}"
in_chroot /sbin/ldconfig
rm -rf "$ROOT/tmp/dynsal-caffe"
echo "$HASH" >"$STAMP"
say "built in $((SECONDS - START)) s"
say "ready at $ROOT"
