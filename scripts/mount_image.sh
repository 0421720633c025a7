#!/usr/bin/env bash
# An image's file system as a chroot, for what runs Caffe with chroot rather than a container: the GPU image
# is the trixie oracle (dynsal.oracle, tests/oracle/test_caffe_cuda.py: the CUDA Caffe tests run in the image
# that ships), and the GPU image's build stage is where scripts/pack_caffe_gpu.sh compiles.
#
# Usage: scripts/mount_image.sh gpu|gpu-build [DIR]     last line "image-root: ready at DIR"
#        scripts/mount_image.sh gpu|gpu-build --print-root    DIR's default, doing nothing
#
# The image (localhost/dynsal:gpu or localhost/dynsal:gpu-build) is built first where there is none
# (scripts/build_image.sh; CUDA_ARCH_BIN/CUDA_ARCH_PTX as there). A working container of it, named
# dynsal-KIND-root, is made (again when the image changed) and mounted (`buildah mount`), and DIR becomes a
# symbolic link to its root: writes under DIR go to the container, never to the image. The container gets the
# device files a chroot needs (/dev/null, zero, full, random, urandom) and the stamp .dynsal-image-ready
# holding the image's ID. DIR defaults to /var/cache/dynsal/image-root-KIND ($DYNSAL_CAFFE_CUDA_ROOT for gpu).
# After a rebuild of the image, run this again to mount the new one. Needs root (buildah).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
say() { echo "image-root: $*"; }
die() { echo "image-root: $*" >&2; exit 1; }

KIND="${1:-}"
case "$KIND" in
  gpu) DEFAULT="${DYNSAL_CAFFE_CUDA_ROOT:-/var/cache/dynsal/image-root-gpu}" ;;
  gpu-build) DEFAULT=/var/cache/dynsal/image-root-gpu-build ;;
  *) echo "usage: bash scripts/mount_image.sh gpu|gpu-build [DIR | --print-root]" >&2; exit 2 ;;
esac
if [ "${2:-}" = "--print-root" ]; then
  echo "$DEFAULT"
  exit 0
fi
DIR="${2:-$DEFAULT}"
IMAGE="localhost/dynsal:$KIND"
CONTAINER="dynsal-$KIND-root"
[ "$(id -u)" = 0 ] || die "mounting $IMAGE needs root (buildah mount)"
store() { buildah --storage-driver overlay "$@"; }

if ! store inspect --type image "$IMAGE" >/dev/null 2>&1; then
  say "no image $IMAGE: building it (bash scripts/build_image.sh $KIND)"
  bash "$HERE/build_image.sh" "$KIND" >&2
fi
image_id="$(store inspect --type image --format '{{.FromImageID}}' "$IMAGE")"
if [ "$(store inspect --type container --format '{{.FromImageID}}' "$CONTAINER" 2>/dev/null)" != "$image_id" ]; then
  store rm "$CONTAINER" >/dev/null 2>&1 || true
  store from --pull-never --quiet --name "$CONTAINER" "$IMAGE" >/dev/null
fi
root="$(store mount "$CONTAINER")"
mkdir -p "$root/dev"
for dev in "null 1 3" "zero 1 5" "full 1 7" "random 1 8" "urandom 1 9"; do
  read -r name major minor <<<"$dev"
  [ -c "$root/dev/$name" ] || mknod -m 666 "$root/dev/$name" c "$major" "$minor"
done
echo "$image_id" >"$root/.dynsal-image-ready"
[ ! -e "$DIR" ] || [ -L "$DIR" ] || die "$DIR exists and is not a link this script made: choose another DIR"
mkdir -p "$(dirname "$DIR")"
ln -sfn "$root" "$DIR"
say "$IMAGE (${image_id:0:12}) mounted at $root"
say "ready at $DIR"
