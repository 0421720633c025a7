#!/usr/bin/env bash
# The GPU anchor of the torch engine, for a lent H100/H200 (the device tool: no network there, 15 minutes):
# real BVLC Caffe in GPU mode with cuDNN (dynsal's build) against the torch engine, in one run — parity of
# every zoo net, forward and backward, fp32, max|Δ| ≤ 1e-4·max|Caffe|; frames/s of both on STSConvNet 240×320.
#
#   here, as root, once:  bash scripts/pack_caffe_gpu.sh .caffe-gpu        (.caffe-gpu/ is git-ignored)
#   device run:           bash benchmarks/caffe_gpu_check.sh   with carry [".caffe-gpu/caffe-gpu.tar.xz"],
#                         timeout_s 600; the results come back from $OUT
#
# The pack (scripts/pack_caffe_gpu.sh) holds caffe_blobs and every library it needs but the CUDA ones, which
# it takes from the machine (its PyTorch's nvidia-* wheels, /usr/local/cuda): their major versions must be
# those the pack was linked against (caffe/cuda-libraries.txt, copied into caffe_gpu_environment.txt).
# Writes $OUT/caffe_gpu.json (benchmarks/caffe_gpu.py) and $OUT/caffe_gpu_environment.txt.
# Dry run without a GPU (tests/test_caffe_gpu_check.py): DEVICE=cpu SIZE=48x64 REPEATS=2 ROUNDS=1 NETS="ssnet".
# $PYTHON (default python3) is the interpreter that runs.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-gpu_out}"
PACK="${PACK:-.caffe-gpu}"
DEVICE="${DEVICE:-cuda}"
PYTHON="${PYTHON:-python3}"  # the interpreter to run (tests pass their own)
mkdir -p "$OUT"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

UNPACKED="$(mktemp -d)"
trap 'rm -rf "$UNPACKED"' EXIT
tar -xJf "$PACK/caffe-gpu.tar.xz" -C "$UNPACKED" || { echo "no pack at $PACK/caffe-gpu.tar.xz" >&2; exit 1; }
{
  nvidia-smi || true
  "$PYTHON" -c "import torch, numpy; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'cudnn',
torch.backends.cudnn.version(), 'numpy', numpy.__version__)"
  echo "the pack's CUDA libraries: $(tr '\n' ' ' <"$UNPACKED/caffe/cuda-libraries.txt")"
} >"$OUT/caffe_gpu_environment.txt" 2>&1

# shellcheck disable=SC2086
timeout 560 "$PYTHON" benchmarks/caffe_gpu.py --caffe "$UNPACKED/caffe/run" --device "$DEVICE" \
  --size "${SIZE:-240x320}" --repeats "${REPEATS:-20}" --rounds "${ROUNDS:-2}" ${NETS:+--nets $NETS} \
  >"$OUT/caffe_gpu.json"
status=$?
echo "exit $status after $SECONDS s; results in $OUT/caffe_gpu.json"
exit $status
