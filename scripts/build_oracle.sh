#!/usr/bin/env bash
# Build the real-Caffe oracle: a Debian bullseye chroot with BVLC Caffe 1.0 (CPU, OpenBLAS) and pycaffe.
#
# Usage: scripts/build_oracle.sh [DIR]      (default: $DYNSAL_ORACLE_ROOT or /var/cache/dynsal/oracle-bullseye)
#
# Idempotent: a finished chroot carries a stamp file listing its packages; when the stamp matches,
# nothing is done. Needs root (debootstrap, chroot). The packages come from install_caffe_debian.sh,
# the same script docker/Dockerfile.cpu runs. Last line: "...: ready at DIR".
# When bullseye cannot be fetched (debootstrap or the Caffe packages fail), or with DYNSAL_ORACLE=trixie,
# it readies the second oracle instead: the same Caffe from source on Debian trixie, the GPU Docker image's
# file system (scripts/mount_image.sh gpu: built where there is none, mounted in its own folder).
# Recipe: shared/reference/caffe-oracle.md.
set -euo pipefail

ROOT="${1:-${DYNSAL_ORACLE_ROOT:-/var/cache/dynsal/oracle-bullseye}}"
HERE="$(cd "$(dirname "$0")" && pwd)"

build_trixie_oracle() {  # build_trixie_oracle [DIR]: replaces this script
  if [ -n "${1:-}" ]; then
    export DYNSAL_CAFFE_CUDA_ROOT="$1"
  fi
  exec bash "$HERE/mount_image.sh" gpu
}
bullseye_unavailable() {
  echo "oracle: $1; building the from-source trixie oracle instead (scripts/mount_image.sh gpu: the GPU image)" >&2
  build_trixie_oracle
}
if [ "${DYNSAL_ORACLE:-bullseye}" = trixie ]; then
  build_trixie_oracle "${1:-${DYNSAL_ORACLE_ROOT:-}}"
fi
PACKAGES="$(sh "$HERE/install_caffe_debian.sh" --list)"
STAMP="$ROOT/.dynsal-oracle-ready"
# shellcheck source=scripts/chroot_lib.sh
. "$HERE/chroot_lib.sh"
ready_or_root "$STAMP" "$PACKAGES" oracle
need_debootstrap
[ -x "$ROOT/usr/bin/apt-get" ] || echo "oracle: debootstrap bullseye into $ROOT (about a minute)"
new_chroot bullseye || bullseye_unavailable "debootstrap bullseye failed (see $ROOT.debootstrap.log)"

cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
cp "$HERE/install_caffe_debian.sh" "$ROOT/tmp/install_caffe_debian.sh"
echo "oracle: installing $PACKAGES"
in_chroot /bin/sh /tmp/install_caffe_debian.sh || bullseye_unavailable "installing Debian bullseye's Caffe packages failed"
chroot "$ROOT" /usr/bin/env GLOG_minloglevel=2 python3 -c "import caffe, lmdb, h5py; print('oracle: caffe', caffe.__version__)"
echo "$PACKAGES" > "$STAMP"
echo "oracle: ready at $ROOT"
