#!/usr/bin/env bash
# The paper's pipeline on DIEM, one command per step (recipes/diem.md explains each choice).
#
# Usage: recipes/diem.sh DIEM_DIR WORK_DIR [ITERATIONS] [SIZE]
#   DIEM_DIR   the downloaded DIEM folder: video/<name>.mp4 and event_data/<participant>_<name>.txt
#   WORK_DIR   where datasets, nets, snapshots, maps and scores go (created)
#   ITERATIONS training iterations per net (default: the solvers' own max_iter)
#   SIZE       network input HxW (default 240x320, the paper's)
# Set DYNSAL to run another dynsal (default: the `dynsal` command); extra arguments for every
# `dynsal train` can be given in TRAIN_ARGS (e.g. "--device cuda").
set -euo pipefail
DIEM="$(cd "$1" && pwd)"
WORK="$2"
ITERATIONS="${3:-}"
SIZE="${4:-240x320}"
DYNSAL="${DYNSAL:-dynsal}"
TRAIN_ARGS="${TRAIN_ARGS:-}"
mkdir -p "$WORK"
cd "$WORK"
max_iter=()
if [ -n "$ITERATIONS" ]; then max_iter=(--max-iter "$ITERATIONS"); fi

echo "== 1. nets and solvers (prototxt/)"
$DYNSAL zoo write prototxt

echo "== 2. dataset: frames, flow images, maps; DIEM's 20 test videos as val (+ their ground truth)"
data_args=(--videos "$DIEM/video" --gaze "$DIEM/event_data" --split-preset diem -o data --resize "fixed:$SIZE"
           --jobs 2 --no-progress)
$DYNSAL make-lmdb "${data_args[@]}" --splits train
$DYNSAL make-lmdb "${data_args[@]}" --splits val --save-ground-truth ground_truth

echo "== 3. single-stream nets: SSNet on frames, TSNet on flow images"
# shellcheck disable=SC2086
$DYNSAL train prototxt/ssnet_solver.prototxt --engine torch --no-progress "${max_iter[@]}" $TRAIN_ARGS
# shellcheck disable=SC2086
$DYNSAL train prototxt/tsnet_solver.prototxt --engine torch --no-progress "${max_iter[@]}" $TRAIN_ARGS
last() {  # the newest snapshot of a net (highest iteration)
  find snapshots -name "$1_iter_*.caffemodel" | sort -t_ -k3 -n | tail -1
}

echo "== 4. two-stream initialisation and fine-tuning of STSConvNet"
$DYNSAL init-weights --net stsconv --spatial "$(last ssnet)" --temporal "$(last tsnet)" -o snapshots/stsconv_init.caffemodel
# shellcheck disable=SC2086
$DYNSAL train prototxt/stsconv_solver.prototxt --engine torch --no-progress --weights snapshots/stsconv_init.caffemodel \
  "${max_iter[@]}" $TRAIN_ARGS

echo "== 5. saliency maps for the test videos and evaluation"
videos=()
for folder in ground_truth/*/; do videos+=("$DIEM/video/$(basename "$folder").mp4"); done
$DYNSAL predict --net stsconv --weights "$(last stsconv)" --resize "fixed:$SIZE" --engine torch --no-overlay \
  -o maps "${videos[@]}"
$DYNSAL eval maps ground_truth --baselines centre,chance --markdown scores.md --json scores.json
echo "scores: $WORK/scores.md"
