#!/usr/bin/env bash
# The paper's pipeline on DIEM as SLURM jobs chained by dependencies (docs/cluster.md):
#   dataset (array) -> merge -> SSNet and TSNet training (side by side, N nodes each, requeued at the time
#   limit) -> STSConvNet initialisation -> STSConvNet fine-tuning -> prediction (array) -> evaluation.
#
# Usage: DIEM=/data/DIEM WORK=/scratch/$USER/diem recipes/slurm/pipeline.sh
# Environment (all optional but DIEM and WORK):
#   SHARDS      array tasks of the dataset build and of the prediction (default 8)
#   NODES       nodes per training job (default 2), TASKS_PER_NODE (default 1: one rank per node; one per GPU
#               with GPUS_PER_TASK=1)
#   SIZE        network input HxW (default 240x320); ITERATIONS: every solver's max_iter (default: the solvers')
#   DEVICE      auto, cpu or cuda (default auto); SBATCH_ARGS: options for every sbatch (partition, account,
#               time, e.g. "--partition=gpu --time=24:00:00"); TRAIN_ARGS, DATA_ARGS, PREDICT_ARGS, EVAL_ARGS
#   DYNSAL      the dynsal command (default dynsal)
#   WAIT=1      wait for the evaluation to finish (sbatch --wait) and exit with its status
# A job that fails cancels the jobs depending on it (--kill-on-invalid-dep=yes). Resubmit the failed part
# by hand (its script resumes; see docs/cluster.md), then the stages after it.
set -euo pipefail
: "${DIEM:?set DIEM to the DIEM folder (video/, event_data/)}"
: "${WORK:?set WORK to the folder for datasets, snapshots, maps and scores}"
HERE="$(cd "$(dirname "$0")" && pwd)"
DIEM="$(cd "$DIEM" && pwd)"
mkdir -p "$WORK/logs"
cd "$WORK"
read -r -a dynsal <<< "${DYNSAL:-dynsal}"
read -r -a common <<< "${SBATCH_ARGS:-}"
shards="${SHARDS:-8}"
train_args="${TRAIN_ARGS:-}${ITERATIONS:+ --max-iter $ITERATIONS}"
export DIEM SIZE="${SIZE:-240x320}" DEVICE="${DEVICE:-auto}" SHARDS="$shards" TRAIN_ARGS="$train_args"
gpus=()
[ -n "${GPUS_PER_TASK:-}" ] && gpus=(--gpus-per-task "$GPUS_PER_TASK")

submit() {  # submit NAME [sbatch options...] SCRIPT: prints the job id
  local name="$1"
  shift
  sbatch --parsable --chdir="$WORK" --job-name="dynsal-$name" --kill-on-invalid-dep=yes "${common[@]}" "$@" \
    | cut -d';' -f1
}

"${dynsal[@]}" zoo write prototxt >/dev/null
data=$(submit dataset --array="0-$((shards - 1))" --output="logs/dataset-%A_%a.out" "$HERE/dataset.sbatch")
merge=$(submit merge --dependency="afterok:$data" --output="logs/merge-%j.out" "$HERE/merge.sbatch")
train() {  # train NET DEPENDENCY
  SOLVER="prototxt/$1_solver.prototxt" submit "train-$1" --dependency="afterok:$2" --nodes="${NODES:-2}" \
    --ntasks-per-node="${TASKS_PER_NODE:-1}" "${gpus[@]}" --output="logs/train-$1-%j.out" "$HERE/train.sbatch"
}
ssnet=$(train ssnet "$merge")
tsnet=$(train tsnet "$merge")
init=$(submit init --dependency="afterok:$ssnet:$tsnet" --output="logs/init-%j.out" "$HERE/init.sbatch")
stsconv=$(WEIGHTS=snapshots/stsconv_init.caffemodel train stsconv "$init")
predict=$(submit predict --dependency="afterok:$stsconv" --array="0-$((shards - 1))" \
  --output="logs/predict-%A_%a.out" "$HERE/predict.sbatch")
echo "jobs: dataset $data, merge $merge, ssnet $ssnet, tsnet $tsnet, init $init, stsconv $stsconv, predict $predict"
wait=()
[ "${WAIT:-0}" = 1 ] && wait=(--wait)
evaluation=$(submit eval --dependency="afterok:$predict" --output="logs/eval-%j.out" "${wait[@]}" \
  "$HERE/eval.sbatch")
echo "evaluation: job $evaluation -> $WORK/scores.md"
