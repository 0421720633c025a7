#!/usr/bin/env bash
# Every GPU check and figure in one run, for a lent H100/H200 (the device tool: 15 minutes a session).
#
#   device run:  bash benchmarks/gpu_check.sh        (timeout_s 600; results come back from $OUT)
#
# Writes to ${OUT:-gpu_out}/: environment.txt, cuda_tests.txt (tests/engines/test_cuda.py: CUDA fp32
# = CPU forward/backward for every zoo net, precisions near fp32, GPU training = CPU trajectory),
# forward_cuda.json + forward_cpu.json (throughput per precision, CPU fp32 in the same run as the
# baseline), predict_cuda.json (end to end vs network only), train.json (iterations/s, cuda vs cpu),
# flow.json (RAFT on the GPU next to DIS on the CPU). Each step has its own time limit so that one
# slow step cannot eat the others; a step that fails leaves its error in its file and the rest go on.
# The machine has PyTorch, torchvision, OpenCV (no contrib), h5py and pytest; dynsal runs from the
# checkout (PYTHONPATH), with nothing to install. `DEVICE=cpu bash benchmarks/gpu_check.sh` is a dry
# run of the script itself on a machine without a GPU (steps then hit their limits; look for errors).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-gpu_out}"
mkdir -p "$OUT"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
PY=python3
DEVICE="${DEVICE:-cuda}"

step() {  # step SECONDS FILE COMMAND...: run with a time limit, stdout+stderr into $OUT/FILE
  local limit=$1 file=$2
  shift 2
  echo "== $file ($(date +%T), limit ${limit}s): $*"
  timeout "$limit" "$@" >"$OUT/$file" 2>&1
  echo "   exit $? after $SECONDS s in all"
}

{ nvidia-smi; $PY -c "import torch, torchvision, cv2, numpy; print('torch', torch.__version__, 'cuda', torch.version.cuda,
'gpu', torch.cuda.is_available() and torch.cuda.get_device_name(0), '| torchvision', torchvision.__version__, '| cv2', cv2.__version__,
'| numpy', numpy.__version__)"; nproc; } >"$OUT/environment.txt" 2>&1

step 150 cuda_tests.txt $PY -m pytest -q -p no:cacheprovider tests/engines/test_cuda.py
step 120 forward_cuda.json $PY benchmarks/forward.py --no-caffe --device "$DEVICE" --nets ssnet stsconv --batch 8 \
  --repeats 10 --rounds 2 --precisions fp32 tf32 bf16 fp16
step 60 forward_cpu.json $PY benchmarks/forward.py --no-caffe --device cpu --nets ssnet stsconv --batch 1 \
  --repeats 2 --rounds 1 --precisions fp32
step 90 predict_cuda.json $PY benchmarks/predict.py --net stsconv --frames 96 --batch 8 --workers 8 --device "$DEVICE"
step 90 train.json $PY benchmarks/train.py --no-caffe --devices "$DEVICE" cpu --net ssnet --size 120x160 --iterations 8
step 60 flow.json $PY benchmarks/flow.py --methods dis,raft --raft random-large --raft-device "$DEVICE" --seconds 2
echo "done in $SECONDS s; results in $OUT"
