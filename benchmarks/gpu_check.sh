#!/usr/bin/env bash
# Every figure of issue 17's goals and the CUDA checks in one run of under 10 minutes, for a lent H100/H200
# (the device tool: 15 minutes a session, 10 a command):
#
#   device run:  bash benchmarks/gpu_check.sh        (timeout_s 600; the files come back from $OUT)
#
# Writes 8 files into ${OUT:-gpu_out}/ (the device tool returns at most 8):
#   log.txt              the machine (nvidia-smi, versions, cores), each step's command, exit status and stderr
#   forward_eager.json   STSConvNet 240×320 fp32 (no TF32: Caffe's arithmetic) / TF32 / bf16 at batch 16, 32, 64,
#                        eager; CC and max|Δ| against fp32 (benchmarks/forward.py)
#   forward_compiled.json  the same net at batch 64 in TF32 and bf16, torch.compile'd and replayed from CUDA graphs
#   predict.json         `dynsal predict` end to end vs network only on the same frames, stage shares (1024 frames,
#                        bf16, compiled, DIS flow in one worker process per core)
#   cuda_tests.txt       tests/engines/test_cuda.py: CUDA = CPU for every zoo net, the fast path, predict, training
#   train.json           SSNet training iterations/s: GPU fp32 and bf16 autocast vs the CPU (all cores)
#   profile.json         per-layer and per-layer-type device time of STSConvNet bf16 batch 32 (fused LRN or not)
#   flow.json            RAFT on the GPU next to DIS on the CPU
# Steps run in this order (most wanted first), each within its own time limit and all within $BUDGET seconds
# (default 570) of the script's start; a step that fails or overruns leaves its error in log.txt and the rest go
# on. The end of the output is a summary of the figures against the goals (benchmarks/gpu_summary.py).
# The machine's Python (PyTorch, OpenCV, h5py, pytest) runs dynsal from the checkout, nothing to install.
#
# DEVICE=cpu bash benchmarks/gpu_check.sh: a dry run on a machine without a GPU — tiny sizes, Dynamo's eager
# backend instead of compiling, no CUDA graphs — so that every step runs its real command line and writes its
# file within a couple of minutes (tests/test_gpu_check_script.py runs it).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-gpu_out}"
mkdir -p "$OUT"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
PY="${PYTHON:-python3}"  # the interpreter to run (tests pass their own)
DEVICE="${DEVICE:-cuda}"
BUDGET="${BUDGET:-570}"
LOG="$OUT/log.txt"

if [ "$DEVICE" = cuda ]; then
  SIZE=240x320 BATCHES="16 32 64" BEST=64 FRAMES=1024 PROFILE_BATCH=32 REPEATS=5 ROUNDS=2
  COMPILED_MODES="compile+graphs" GRAPHS="--cuda-graphs" TRAIN_DEVICES="cuda cpu" TRAIN_SIZE=120x160 TRAIN_ITER=6
  FLOW_METHODS=dis,raft FLOW_SECONDS=2
else  # dry run
  SIZE=32x48 BATCHES="1 2" BEST=2 FRAMES=6 PROFILE_BATCH=1 REPEATS=1 ROUNDS=1
  COMPILED_MODES="compile" GRAPHS="" TRAIN_DEVICES="cpu" TRAIN_SIZE=24x32 TRAIN_ITER=3 FLOW_METHODS=dis
  FLOW_SECONDS=0.2
  export DYNSAL_COMPILE_BACKEND=eager
fi
export DYNSAL_COMPILE_CACHE="${DYNSAL_COMPILE_CACHE:-${TMPDIR:-/tmp}/dynsal-gpu-check-compile-cache}"

step() {  # step SECONDS FILE COMMAND...: stdout into $OUT/FILE, stderr into log.txt, within the limit and budget
  local limit=$1 file=$2 left=$((BUDGET - SECONDS))
  shift 2
  if ((left < 15)); then
    echo "== $file skipped: ${left}s of the ${BUDGET}s budget left" | tee -a "$LOG"
    return
  fi
  ((limit > left)) && limit=$left
  echo "== $file ($(date +%T), limit ${limit}s): $*" | tee -a "$LOG"
  timeout -k 10 "$limit" "$@" >"$OUT/$file" 2>>"$LOG"
  echo "   exit $? after $SECONDS s in all" | tee -a "$LOG"
}

{ nvidia-smi || true; $PY -c "import torch, cv2, numpy, sys; print('python', sys.version.split()[0], '| torch',
torch.__version__, 'cuda', torch.version.cuda, 'gpu', torch.cuda.is_available() and torch.cuda.get_device_name(0),
'| cv2', cv2.__version__, '| numpy', numpy.__version__)"; echo "cores: $(nproc)"; } >"$LOG" 2>&1

# shellcheck disable=SC2086  # the lists are meant to split
step 150 forward_eager.json $PY benchmarks/forward.py --no-caffe --device "$DEVICE" --nets stsconv --size "$SIZE" \
  --batch $BATCHES --precisions fp32 tf32 bf16 --modes eager --repeats "$REPEATS" --rounds "$ROUNDS"
# shellcheck disable=SC2086
step 200 forward_compiled.json $PY benchmarks/forward.py --no-caffe --device "$DEVICE" --nets stsconv \
  --size "$SIZE" --batch "$BEST" --precisions bf16 tf32 --modes $COMPILED_MODES --repeats "$((2 * REPEATS))" \
  --rounds "$ROUNDS"
# shellcheck disable=SC2086
step 150 predict.json $PY benchmarks/predict.py --net stsconv --frames "$FRAMES" --batch "$BEST" \
  --size "$SIZE" --device "$DEVICE" --precision bf16 --compile $GRAPHS --repeats 2
# not a CI run (CI=true would ask for oracle tests): the device checks alone
step 150 cuda_tests.txt env -u CI $PY -m pytest -q -p no:cacheprovider -rs --durations=10 tests/engines/test_cuda.py
# shellcheck disable=SC2086
step 100 train.json $PY benchmarks/train.py --no-caffe --devices $TRAIN_DEVICES --precisions fp32 bf16 \
  --net ssnet --size "$TRAIN_SIZE" --batch 4 --iterations "$TRAIN_ITER"
step 60 profile.json $PY benchmarks/layer_profile.py --net stsconv --size "$SIZE" --batch "$PROFILE_BATCH" \
  --device "$DEVICE" --precision bf16 --passes 3
step 60 flow.json $PY benchmarks/flow.py --methods "$FLOW_METHODS" --raft random-large --raft-device "$DEVICE" \
  --seconds "$FLOW_SECONDS"
echo "done in $SECONDS s; results in $OUT" | tee -a "$LOG"
$PY benchmarks/gpu_summary.py "$OUT"
