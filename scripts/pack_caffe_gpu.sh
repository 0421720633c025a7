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
#                                                 libraries to carry), sm_90, in CI's chroot with the CUDA 13
#                                                 toolkit and cuDNN 9 from PyPI (pinned wheels) in /opt/cuda-13
#        scripts/pack_caffe_gpu.sh OUT --ci-build  the chroot's own CI build (CUDA 12.4), for dry runs on a
#                                                 machine without a GPU
# The chroot is scripts/build_caffe_chroot.sh's (built if missing; $DYNSAL_CAFFE_CUDA_ROOT chooses another).
# Needs root (chroot). XZ_OPT sets the compression (default -6).
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
REPO="$(dirname "$HERE")"
OUT="${1:?usage: scripts/pack_caffe_gpu.sh OUT [--ci-build]}"
MODE="${2:-cuda13}"
# The CUDA 13.0 toolkit as PyPI ships it (nvcc, cicc, headers, cudart, cuBLAS, cuRAND, CCCL) and cuDNN 9.
CUDA13_WHEELS="
nvidia-cuda-nvcc==13.0.88 --hash=sha256:56fe502eb77625a12f25172caa3cdddb4e4c8ba2c8c17dba44b164761b380f03
nvidia-nvvm==13.0.88 --hash=sha256:c5f41ffeb6466944a026dfa5317d7d85355c119bbec279205d22f1869d1054e0
nvidia-cuda-crt==13.0.88 --hash=sha256:2c8043c7c9e02492716426e9919fc78d2c5b3b2a7a768a88e952676b08aa55a4
nvidia-cuda-runtime==13.0.88 --hash=sha256:422a38f7c739ecbdd3a4b6ec7ed0a1d74db43d8e9bc26685f3d845638922b178
nvidia-cuda-cccl==13.0.85 --hash=sha256:e0da7ad981f3a8aff08241b5bfc1af868742a63e2762f53a5171c492ef242649
nvidia-cublas==13.0.2.14 --hash=sha256:0cf238ffdbe46c00cb9aa98e7bca745c223a5ca5a53e686ac8b3e5a08fe80d6c
nvidia-curand==10.4.0.35 --hash=sha256:1aee33a5da6e1db083fe2b90082def8915f30f3248d5896bcec36a579d941bfc
nvidia-cudnn-cu13==9.13.0.50 --hash=sha256:2150b4850725d30653ec3e365f0732e3e2e3eb8633cf3bd2d3117628dea8b4f9
"
say() { echo "caffe-gpu-pack: $*"; }
die() { echo "caffe-gpu-pack: $*" >&2; exit 1; }
case "$MODE" in cuda13|--ci-build) ;; *) die "unknown option $MODE (see the usage at the top of $0)" ;; esac

ROOT="$(bash "$HERE/build_caffe_chroot.sh" | tail -1 | sed 's/.*ready at //')"
[ -d "$ROOT/usr/local/include/caffe" ] || die "no Caffe build chroot at $ROOT"
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
  if [ ! -x "$ROOT/opt/cuda-13/bin/nvcc" ]; then
    say "the CUDA 13 toolkit and cuDNN 9 from PyPI into $ROOT/opt/cuda-13"
    echo "$CUDA13_WHEELS" >"$WORK/requirements.txt"
    python3 -m pip download -q --no-deps --only-binary=:all: --platform manylinux_2_27_x86_64 \
      --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 -d "$WORK/wheels" -r "$WORK/requirements.txt"
    rm -rf "$ROOT/opt/cuda-13"
    # nvidia/cu13/{bin,include,lib,nvvm} is a CUDA toolkit tree; cuDNN's include/ and lib/ join it.
    python3 - "$ROOT/opt/cuda-13" "$WORK"/wheels/*.whl <<'EOF'
import sys, zipfile
from pathlib import Path
top = Path(sys.argv[1])
for wheel in sys.argv[2:]:
    with zipfile.ZipFile(wheel) as z:
        for info in z.infolist():
            parts = Path(info.filename).parts
            if info.is_dir() or parts[0] != "nvidia" or parts[1] not in ("cu13", "cudnn"):
                continue
            target = top.joinpath(*parts[2:])
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(z.read(info))
            target.chmod((info.external_attr >> 16) & 0o777 or 0o644)
EOF
    for lib in libcudart.so.13 libcublas.so.13 libcublasLt.so.13 libcurand.so.10 libcudnn.so.9; do
      ln -sf "$lib" "$ROOT/opt/cuda-13/lib/${lib%.so.*}.so"  # the unversioned names the linker looks for
    done
  fi
  say "building the lean CUDA 13 Caffe (sm_90) in $ROOT/opt/caffe-cuda-13"
  cp -r "$HERE/build_caffe_cuda.sh" "$HERE/caffe-patches" "$WORK/"
  in_chroot /usr/bin/env CUDA_TOOLKIT_ROOT_DIR=/opt/cuda-13 CUDNN_ROOT=/opt/cuda-13 CUDA_ARCH_BIN=90 CUDA_ARCH_PTX= \
    PATH=/opt/cuda-13/bin:/usr/sbin:/usr/bin:/sbin:/bin nice -n "${NICE:-10}" \
    bash /tmp/dynsal-caffe-gpu-pack/build_caffe_cuda.sh --lean --prefix /opt/caffe-cuda-13 --jobs "${JOBS:-$(nproc)}"
  echo "$hash" >"$stamp"
}

if [ "$MODE" = cuda13 ]; then
  build_cuda13_caffe
  PREFIX=/opt/caffe-cuda-13
else
  PREFIX=/usr/local
fi

say "compiling caffe_blobs against the Caffe in $PREFIX"
cp "$REPO/benchmarks/caffe_gpu/caffe_blobs.cpp" "$REPO/benchmarks/caffe_gpu/CMakeLists.txt" "$WORK/"
in_chroot sh -c "cd /tmp/dynsal-caffe-gpu-pack && cmake -S . -B build -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH=$PREFIX >cmake.log 2>&1 && make -C build >make.log 2>&1" \
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
  '^(libcuda|libcudart|libcublas|libcublasLt|libcurand|libcudnn[a-z_]*|libnvidia-[a-z-]*)\.so' "$PREFIX/lib:/opt/cuda-13/lib" \
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
