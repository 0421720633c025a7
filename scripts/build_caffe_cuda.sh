#!/usr/bin/env bash
# Build BVLC Caffe with CUDA + cuDNN from source: one pinned snapshot + dynsal's patches, pycaffe for
# the given Python. The one build recipe behind docker/Dockerfile and CI's chroot
# (scripts/build_caffe_chroot.sh); run it inside the system that will run Caffe.
#
# Usage: scripts/build_caffe_cuda.sh [--prefix DIR] [--source TARBALL] [--python PY | --lean] [--jobs N]
#        scripts/build_caffe_cuda.sh --list-deps      (the apt packages it needs, Debian ≥ 13 / Ubuntu ≥ 24.04)
#
#   --prefix DIR      install prefix (default /opt/caffe): DIR/bin/caffe + tools, DIR/lib/libcaffe.so,
#                     DIR/python/caffe (pycaffe, put on PY's path by a caffe.pth file)
#   --source TARBALL  the source tarball (default: downloaded from the Debian archive); its sha256 is checked
#   --python PY       the Python whose headers and numpy pycaffe is built against (default python3)
#   --lean            the C++ library and tools only: no pycaffe, OpenCV, LMDB or LevelDB (what
#                     scripts/pack_caffe_gpu.sh needs, with the fewest libraries to carry)
#   --jobs N          parallel compile jobs (default: number of CPUs)
# Environment:
#   CUDA_ARCH_BIN     GPU architectures to compile machine code for (default "70 75 80 86 89 90": Volta to Hopper)
#   CUDA_ARCH_PTX     architectures to embed PTX for, JIT-compiled on newer GPUs (default "90"; "" for none)
#   CUDA_HOST_COMPILER  the C++ compiler nvcc uses (default: nvcc's own choice)
#   CUDA_TOOLKIT_ROOT_DIR  the CUDA toolkit to build with (default: the one of the nvcc on PATH)
#   CUDNN_ROOT        where cuDNN's include/ and lib/ are (e.g. a venv's nvidia/cudnn), else the system's
#
# The source: BVLC Caffe master of 2018-08-21 (commit 99bd997), as Debian packages it
# (caffe_1.0.0+git20180821.99bd997.orig.tar.gz) — the same Caffe the bullseye oracle runs.
# The patches (scripts/caffe-patches/*.patch, applied in name order) each name the API fact they rely on.
set -euo pipefail

SOURCE_NAME="caffe_1.0.0+git20180821.99bd997.orig.tar.gz"
SOURCE_SHA256="e0eb3f06794f7402c77b7dec8e8480273ee1a1bb192e9122b621a69d4147ad0c"
# Plain HTTP, as apt uses for these mirrors: the pinned sha256 is what vouches for the file (and HTTPS
# through a proxy with its own certificate authority fails in a fresh chroot).
SOURCE_URLS=(
  "http://deb.debian.org/debian/pool/main/c/caffe/$SOURCE_NAME"
  "http://archive.debian.org/debian/pool/main/c/caffe/$SOURCE_NAME"
  "http://snapshot.debian.org/archive/debian/20210815T000000Z/pool/main/c/caffe/$SOURCE_NAME"
)
DEPS="cmake make g++ patch ca-certificates curl libboost-filesystem-dev libboost-system-dev libboost-thread-dev
 libboost-python-dev libgflags-dev libgoogle-glog-dev libhdf5-dev libleveldb-dev liblmdb-dev libsnappy-dev
 libopenblas-dev libopencv-dev libprotobuf-dev protobuf-compiler python3-dev"

HERE="$(cd "$(dirname "$0")" && pwd)"
PATCHES="$HERE/caffe-patches"
PREFIX=/opt/caffe
SOURCE=""
PYTHON=python3
JOBS="$(nproc)"
LEAN=""

say() { echo "caffe-cuda: $*"; }
die() { echo "caffe-cuda: $*" >&2; exit 1; }

while [ $# -gt 0 ]; do
  case "$1" in
    --list-deps) echo $DEPS; exit 0 ;;
    --prefix) PREFIX="$2"; shift 2 ;;
    --source) SOURCE="$2"; shift 2 ;;
    --python) PYTHON="$2"; shift 2 ;;
    --jobs) JOBS="$2"; shift 2 ;;
    --lean) LEAN=1; shift ;;
    *) die "unknown argument $1 (see the usage at the top of $0)" ;;
  esac
done

command -v nvcc >/dev/null || [ -x "${CUDA_TOOLKIT_ROOT_DIR:-/nonexistent}/bin/nvcc" ] \
  || die "nvcc not found: install the CUDA toolkit first (Debian: nvidia-cuda-toolkit)"
[ -n "$LEAN" ] || "$PYTHON" -c "import numpy" 2>/dev/null \
  || die "$PYTHON has no numpy: pycaffe is built against the numpy of that Python"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/caffe-cuda-build.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

if [ -z "$SOURCE" ]; then
  SOURCE="$WORK/$SOURCE_NAME"
  for url in "${SOURCE_URLS[@]}"; do
    say "fetching $url"
    curl -fsSL --retry 2 -o "$SOURCE" "$url" && break
    rm -f "$SOURCE"
  done
  [ -f "$SOURCE" ] || die "could not fetch $SOURCE_NAME from the Debian archive; pass --source with a copy"
fi
echo "$SOURCE_SHA256  $SOURCE" | sha256sum --check --quiet \
  || die "$SOURCE: sha256 differs from $SOURCE_SHA256 (not Debian's $SOURCE_NAME)"

say "unpacking and patching"
mkdir "$WORK/src"
tar -xzf "$SOURCE" -C "$WORK/src"
for p in "$PATCHES"/*.patch; do
  patch -d "$WORK/src" -p1 --quiet --forward <"$p" || die "patch $(basename "$p") does not apply"
done

CMAKE_ARGS=(
  -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX="$PREFIX" -DCMAKE_INSTALL_RPATH="$PREFIX/lib"
  -DCMAKE_INSTALL_RPATH_USE_LINK_PATH=ON
  -DCPU_ONLY=OFF -DUSE_CUDNN=ON -DUSE_NCCL=OFF -DBLAS=Open -DBUILD_docs=OFF -DBUILD_matlab=OFF
  -Dpython_version=3 -DPYTHON_EXECUTABLE="$(command -v "$PYTHON")"
  -DCUDA_ARCH_NAME=Manual -DCUDA_ARCH_BIN="${CUDA_ARCH_BIN:-70 75 80 86 89 90}" -DCUDA_ARCH_PTX="${CUDA_ARCH_PTX-90}"
)
[ -n "${CUDA_HOST_COMPILER:-}" ] && CMAKE_ARGS+=(-DCUDA_HOST_COMPILER="$CUDA_HOST_COMPILER")
[ -n "${CUDA_TOOLKIT_ROOT_DIR:-}" ] && CMAKE_ARGS+=(-DCUDA_TOOLKIT_ROOT_DIR="$CUDA_TOOLKIT_ROOT_DIR")
[ -n "$LEAN" ] && CMAKE_ARGS+=(-DBUILD_python=OFF -DUSE_OPENCV=OFF -DUSE_LMDB=OFF -DUSE_LEVELDB=OFF)
if [ -n "${CUDNN_ROOT:-}" ]; then
  [ -e "$CUDNN_ROOT/lib/libcudnn.so" ] \
    || die "$CUDNN_ROOT/lib/libcudnn.so missing: link it to libcudnn.so.<major> (the name the linker looks for)"
  CMAKE_ARGS+=(-DCUDNN_INCLUDE="$CUDNN_ROOT/include" -DCUDNN_LIBRARY="$CUDNN_ROOT/lib/libcudnn.so")
fi

say "configuring (CUDA architectures: ${CUDA_ARCH_BIN:-70 75 80 86 89 90}, PTX: ${CUDA_ARCH_PTX-90})"
mkdir "$WORK/build"
cmake -S "$WORK/src" -B "$WORK/build" "${CMAKE_ARGS[@]}" >"$WORK/cmake.log" 2>&1 \
  || { tail -30 "$WORK/cmake.log" >&2; die "cmake failed"; }
grep -qE "cuDNN +: +Yes" "$WORK/cmake.log" || { grep -A40 "Dependencies:" "$WORK/cmake.log" >&2; die "cmake did not find cuDNN"; }
[ -n "$LEAN" ] || grep -q -- "-- Python:" "$WORK/cmake.log" \
  || die "cmake did not find Python, numpy and Boost.Python for $PYTHON"

say "compiling with $JOBS jobs"
make -C "$WORK/build" -j"$JOBS" >"$WORK/make.log" 2>&1 || { grep -B5 -A10 "error" "$WORK/make.log" | tail -60 >&2; die "make failed"; }
make -C "$WORK/build" install >"$WORK/install.log" 2>&1 || { tail -30 "$WORK/install.log" >&2; die "make install failed"; }

if [ -z "$LEAN" ]; then
  SITE="$("$PYTHON" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")"
  mkdir -p "$SITE"
  echo "$PREFIX/python" >"$SITE/caffe.pth"
  GLOG_minloglevel=2 "$PYTHON" -c "import caffe; caffe.set_mode_cpu(); print('caffe-cuda: pycaffe', caffe.__version__, 'at', caffe.__file__)"
fi
say "installed in $PREFIX"
