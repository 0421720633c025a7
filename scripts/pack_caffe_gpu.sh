#!/usr/bin/env bash
# Pack real Caffe for a GPU machine that cannot fetch anything (benchmarks/caffe_gpu_check.sh runs it there):
# caffe_blobs (benchmarks/caffe_gpu/) linked against a CUDA + cuDNN Caffe, with every library it needs except
# the CUDA ones — glibc and its loader included, so it runs whatever that machine's Linux — in
# OUT/caffe-gpu.tar.xz (unpacks to caffe/). caffe/run starts it with the pack's loader; the CUDA runtime,
# cuBLAS, cuRAND and cuDNN come from the machine (its PyTorch's nvidia-* wheels, /usr/local/cuda,
# $CAFFE_CUDA_LIBS), so their major versions must be the ones the build linked (caffe/cuda-libraries.txt).
#
# Usage: scripts/pack_caffe_gpu.sh OUT            Caffe for CUDA 13 (the lent H100/H200 run PyTorch cu130):
#                                                 a lean build (no pycaffe/OpenCV/LMDB/LevelDB: fewer
#                                                 libraries to carry), sm_90, compiled in the GPU image's
#                                                 build stage with its CUDA 13 compiler and the cuDNN,
#                                                 cuBLAS, cuRAND and CUDA runtime of its venv (torch's)
#        scripts/pack_caffe_gpu.sh OUT --ci-build  the GPU image's own Caffe (/opt/caffe, full build), for dry
#                                                 runs on a machine without a GPU
# The build stage is localhost/dynsal:gpu-build (scripts/build_image.sh gpu-build, cached after
# `build_image.sh gpu`; CUDA_ARCH_BIN defaults to 90 here, CI's setting), mounted by scripts/mount_image.sh.
# Needs root (buildah, chroot). XZ_OPT sets the compression (default -6).
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
REPO="$(dirname "$HERE")"
OUT="${1:?usage: scripts/pack_caffe_gpu.sh OUT [--ci-build]}"
MODE="${2:-cuda13}"
export CUDA_ARCH_BIN="${CUDA_ARCH_BIN-90}"
say() { echo "caffe-gpu-pack: $*"; }
die() { echo "caffe-gpu-pack: $*" >&2; exit 1; }
case "$MODE" in cuda13|--ci-build) ;; *) die "unknown option $MODE (see the usage at the top of $0)" ;; esac

ROOT="$(bash "$HERE/mount_image.sh" gpu-build | tail -1 | sed 's/.*ready at //')"
[ -d "$ROOT/opt/caffe/include/caffe" ] || die "no Caffe build stage at $ROOT"
say "the GPU image's build stage at $ROOT"
# the venv's CUDA 13 tree (nvidia/cu13: nvcc, headers, cudart, cuBLAS, cuRAND) and cuDNN, as paths inside ROOT
CUDA="$(cd "$ROOT" && echo opt/venv/lib/python3*/site-packages/nvidia)"
[ -x "$ROOT/$CUDA/cu13/bin/nvcc" ] || die "no CUDA 13 compiler in $ROOT/$CUDA/cu13 (the image's build stage)"
mkdir -p "$OUT"
[ ! -e "$OUT/caffe" ] || [ -f "$OUT/caffe/.dynsal-caffe-gpu-pack" ] \
  || die "$OUT/caffe exists and is not a pack this script made: choose another OUT"
rm -rf "$OUT/caffe" "$OUT/caffe-gpu.tar.xz"
WORK="$ROOT/tmp/dynsal-caffe-gpu-pack"
rm -rf "$WORK"
mkdir -p "$WORK"
trap 'rm -rf "$WORK"' EXIT

# shellcheck source=scripts/chroot_lib.sh
. "$HERE/chroot_lib.sh"

build_cuda13_caffe() {  # the lean CUDA 13 Caffe in $ROOT/opt/caffe-cuda-13, once per script + patches
  local stamp="$ROOT/opt/caffe-cuda-13/.dynsal-ready" hash
  hash="$(cat "$0" "$HERE/build_caffe_cuda.sh" "$HERE"/caffe-patches/*.patch | sha256sum | cut -c1-12)"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$hash" ]; then
    return
  fi
  say "building the lean CUDA 13 Caffe (sm_90) in $ROOT/opt/caffe-cuda-13"
  cp -r "$HERE/build_caffe_cuda.sh" "$HERE/caffe-patches" "$WORK/"
  # thrust and CUB for g++ too (nvcc finds include/cccl by itself), as in docker/Dockerfile
  in_chroot /usr/bin/env CUDA_TOOLKIT_ROOT_DIR="/$CUDA/cu13" CUDNN_ROOT="/$CUDA/cudnn" CUDA_ARCH_BIN=90 CUDA_ARCH_PTX= \
    CPLUS_INCLUDE_PATH="/$CUDA/cu13/include/cccl" \
    PATH="/$CUDA/cu13/bin:/usr/sbin:/usr/bin:/sbin:/bin" nice -n "${NICE:-10}" \
    bash /tmp/dynsal-caffe-gpu-pack/build_caffe_cuda.sh --lean --prefix /opt/caffe-cuda-13 --jobs "${JOBS:-$(nproc)}"
  echo "$hash" >"$stamp"
}

if [ "$MODE" = cuda13 ]; then
  build_cuda13_caffe
  PREFIX=/opt/caffe-cuda-13
else
  PREFIX=/opt/caffe
fi

say "compiling caffe_blobs against the Caffe in $PREFIX"
cp "$REPO/benchmarks/caffe_gpu/caffe_blobs.cpp" "$REPO/benchmarks/caffe_gpu/CMakeLists.txt" "$WORK/"
in_chroot env CPLUS_INCLUDE_PATH="/$CUDA/cu13/include/cccl" sh -c "cd /tmp/dynsal-caffe-gpu-pack && cmake -S . -B build \
  -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH=$PREFIX >cmake.log 2>&1 && make -C build >make.log 2>&1" \
  || { tail -n 20 "$WORK"/cmake.log "$WORK"/make.log >&2 || true; die "compiling caffe_blobs failed"; }

say "collecting its libraries (all but CUDA's), resolved inside the chroot"
cat >"$WORK/collect.sh" <<'EOF'
set -eu
cd /tmp/dynsal-caffe-gpu-pack
mkdir -p caffe/bin caffe/lib
cp build/caffe_blobs caffe/bin/
LD_LIBRARY_PATH="$2" ldd build/caffe_blobs >ldd.txt
if grep -q "not found" ldd.txt; then cat ldd.txt >&2; exit 1; fi
: >caffe/cuda-libraries.txt
awk '/=> \// {print $1, $3} /^\t\/.*ld-linux/ {print "ld-linux-x86-64.so.2", $1}' ldd.txt |
  while read -r name path; do
    if echo "$name" | grep -qE "$1"; then echo "$name" >>caffe/cuda-libraries.txt; else cp -L "$path" "caffe/lib/$name"; fi
  done
EOF
in_chroot sh /tmp/dynsal-caffe-gpu-pack/collect.sh \
  '^(libcuda|libcudart|libcublas|libcublasLt|libcurand|libcudnn[a-z_]*|libnvidia-[a-z-]*)\.so' "$PREFIX/lib:/$CUDA/cu13/lib:/$CUDA/cudnn/lib" \
  || die "collecting caffe_blobs' libraries failed"
mv "$WORK/caffe" "$OUT/caffe"
cat >"$OUT/caffe/run" <<'EOF'
#!/bin/sh
# caffe_blobs with this pack's loader and libraries, and the machine's CUDA libraries: $CAFFE_CUDA_LIBS,
# the lib folders of the nvidia-* wheels of its python3 (PyTorch's), /usr/local/cuda, the driver's.
here="$(cd "$(dirname "$0")" && pwd)"
path="$here/lib${CAFFE_CUDA_LIBS:+:$CAFFE_CUDA_LIBS}"
wheels="$(python3 -c 'import glob, os, nvidia
print(" ".join(sorted({os.path.dirname(p) for b in nvidia.__path__ for p in glob.glob(b + "/**/lib*.so*", recursive=True)})))' \
  2>/dev/null || true)"
for dir in $wheels /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib /usr/local/nvidia/lib64 \
           /usr/lib/x86_64-linux-gnu; do
  [ -d "$dir" ] && path="$path:$dir"
done
exec "$here/lib/ld-linux-x86-64.so.2" --library-path "$path" "$here/bin/caffe_blobs" "$@"
EOF
chmod +x "$OUT/caffe/run"
touch "$OUT/caffe/.dynsal-caffe-gpu-pack"
XZ_OPT="${XZ_OPT:--6}" tar -cJf "$OUT/caffe-gpu.tar.xz" -C "$OUT" caffe
say "$(du -sh "$OUT/caffe" | cut -f1) unpacked, $(du -h "$OUT/caffe-gpu.tar.xz" | cut -f1) packed: $OUT/caffe-gpu.tar.xz"
say "needs from the machine: $(sort -u "$OUT/caffe/cuda-libraries.txt" | tr '\n' ' ')"
