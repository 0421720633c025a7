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
#
# Stopped (Ctrl-C: dynsal train snapshots and exits 130, which ends this script) or failed? Run the same
# command again: finished datasets are kept, an interrupted build resumes, and each net's training resumes
# from its newest snapshot.
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
if [ ! -f data/train_lmdb_manifest.json ]; then $DYNSAL make-lmdb "${data_args[@]}" --splits train; fi
if [ ! -f data/val_lmdb_manifest.json ] || [ ! -d ground_truth ]; then
  overwrite=()  # a run stopped while writing the ground truth: build val again with it
  if [ -f data/val_lmdb_manifest.json ]; then overwrite=(--overwrite); fi
  $DYNSAL make-lmdb "${data_args[@]}" --splits val --save-ground-truth ground_truth "${overwrite[@]}"
fi

last() {  # the newest snapshot file of a net: last NET caffemodel|solverstate (highest iteration)
  if [ -d snapshots ]; then find snapshots -name "$1_iter_*.$2" | sort -t_ -k3 -n | tail -1; fi
}
train() {  # train NET [ARGS...]: from its newest solverstate when an earlier run left one (then without ARGS)
  local state
  state="$(last "$1" solverstate)"
  if [ -n "$state" ]; then set -- "$1" --resume "$state"; fi
  # shellcheck disable=SC2086
  $DYNSAL train "prototxt/$1_solver.prototxt" "${@:2}" --engine torch --no-progress "${max_iter[@]}" $TRAIN_ARGS
}

echo "== 3. single-stream nets: SSNet on frames, TSNet on flow images"
train ssnet
train tsnet

echo "== 4. two-stream initialisation and fine-tuning of STSConvNet"
if [ -z "$(last stsconv solverstate)" ]; then
  $DYNSAL init-weights --net stsconv --spatial "$(last ssnet caffemodel)" --temporal "$(last tsnet caffemodel)" \
    -o snapshots/stsconv_init.caffemodel
fi
train stsconv --weights snapshots/stsconv_init.caffemodel

echo "== 5. saliency maps for the test videos and evaluation"
videos=()
for folder in ground_truth/*/; do videos+=("$DIEM/video/$(basename "$folder").mp4"); done
$DYNSAL predict --net stsconv --weights "$(last stsconv caffemodel)" --resize "fixed:$SIZE" --engine torch --no-overlay \
  -o maps "${videos[@]}"
$DYNSAL eval maps ground_truth --baselines centre,chance --markdown scores.md --json scores.json
echo "scores: $WORK/scores.md"
