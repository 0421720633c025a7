"""End to end (issue 5): synthetic videos with gaze → `dynsal make-hdf5` → `dynsal train` (TSNet, torch
engine, CPU, reduced input size) → `dynsal predict` on held-out videos → the trained net beats the
centre-bias baseline by NSS.

Nothing is hard-coded: the net starts from the zoo's fillers (xavier, bilinear deconv1), sees only
the flow images and maps of the training videos, and is scored on other videos (other seeds) that
play no part in training. Seeds are fixed (videos, gaze, dataset order, fillers), so the run is
deterministic for a given torch build and thread count.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from dynsal import evaluate as E
from dynsal import metrics as M
from dynsal import zoo
from dynsal.caffe.io import write_text
from dynsal.caffe.schema import pb
from dynsal.cli import main
from tests.synthetic_gaze import write_layout

SIZE = (32, 48)  # H×W of the videos and of the net's input (the paper's nets take 240×320)
RESIZE = f"fixed:{SIZE[0]}x{SIZE[1]}"
VIDEO = dict(frames=30, size=SIZE, objects=2, radius=5, observers=6, sigma_px=3.0)
TRAIN_SEEDS = list(range(8))  # 8 videos × 30 frames = 240 training samples
HELD_OUT_SEEDS = [100, 101, 102, 103]  # 4 other videos, 120 frames scored
BATCH, ITERATIONS, BASE_LR, SOLVER_SEED = 4, 100, 3e-5, 1


def solver_for(net_path: Path, prefix: Path) -> pb.SolverParameter:
    """Adam (Caffe's), fixed rate, no weight decay: trains TSNet from its fillers in 100 iterations.

    Held-out NSS after 100 iterations of batch 4 with these videos, by base_lr and solver seed:
    2e-4 → 0.52 (seed 1; the loss spikes early, the net mostly learns where objects tend to be),
    5e-5 → 2.14 / 2.03 / 0.84 (seeds 1 / 2 / 3), 3e-5 → 1.77 / 1.91 / 1.88 / 1.88 (seeds 1-4).
    """
    return pb.SolverParameter(
        net=str(net_path), type="Adam", base_lr=BASE_LR, momentum=0.9, momentum2=0.999, delta=1e-8,
        lr_policy="fixed", weight_decay=0.0, max_iter=ITERATIONS, display=0, snapshot=0,
        snapshot_prefix=str(prefix), random_seed=SOLVER_SEED, solver_mode=pb.SolverParameter.CPU)


def mean_nss(maps, fixation_files) -> float:
    return float(np.mean([M.nss(m, E.read_fixations(f)) for m, f in zip(maps, fixation_files)]))


def test_tsnet_trained_on_synthetic_gaze_beats_centre_bias(tmp_path):
    # 1. videos: bright textured discs moving along the borders over a static texture, gaze on them
    train_root, held_out = tmp_path / "layout" / "train", tmp_path / "held_out"
    write_layout(train_root, TRAIN_SEEDS, **VIDEO)
    write_layout(held_out, HELD_OUT_SEEDS, **VIDEO)

    # 2. training set with dynsal's builder (flow images as data1, for TSNet), train split only
    data = tmp_path / "data"
    assert main(["make-hdf5", "--layout", str(tmp_path / "layout"), "--splits", "train", "-o", str(data),
                 "--resize", RESIZE, "--data1", "flow", "--no-progress"]) == 0
    manifest = json.loads((data / "train_hdf5_manifest.json").read_text())
    assert manifest["count"] == len(TRAIN_SEEDS) * VIDEO["frames"]
    assert not any(f"video{s:03d}" in key for key in manifest["keys"] for s in HELD_OUT_SEEDS)

    # 3. train TSNet from its fillers with the torch engine
    net_path, solver_path = tmp_path / "tsnet_train_val.prototxt", tmp_path / "tsnet_solver.prototxt"
    write_text(zoo.train_val("tsnet", "hdf5", data_root=str(data), batch=BATCH), net_path)
    write_text(solver_for(net_path, tmp_path / "snapshots" / "tsnet"), solver_path)
    started = time.time()
    assert main(["train", str(solver_path), "--engine", "torch", "--no-progress"]) == 0
    seconds = time.time() - started
    weights = tmp_path / "snapshots" / f"tsnet_iter_{ITERATIONS}.caffemodel"
    assert weights.is_file()
    log = [json.loads(line) for line in (tmp_path / "snapshots" / "tsnet_log.jsonl").read_text().splitlines()]
    losses = [r["raw_loss"] for r in log if r["phase"] == "train"]
    assert len(losses) == ITERATIONS
    assert np.mean(losses[-10:]) < 0.25 * np.mean(losses[:3]), losses  # measured: ≈ 640 → ≈ 70

    # 4. predict the held-out videos (their <video>/images frame folders) with the last snapshot
    predictions = tmp_path / "predictions"
    videos = sorted(p for p in held_out.iterdir() if p.is_dir())
    assert main(["predict", "--net", "tsnet", "--weights", str(weights), "--engine", "torch", "--resize", RESIZE,
                 "--no-overlay", "--batch", "8", "-o", str(predictions), *(str(v / "images") for v in videos)]) == 0

    # 5. NSS on the held-out fixations: trained net vs the centre-bias baseline (and a positional prior)
    fixations = [f for video in videos for f in sorted((video / "fixation").glob("*.png"))]
    predicted = [E.read_map(predictions / f.parent.parent.name / f.name) for f in fixations]
    assert len(predicted) == len(HELD_OUT_SEEDS) * VIDEO["frames"]
    trained = mean_nss(predicted, fixations)
    centre = mean_nss([E.centre_bias_map(SIZE)] * len(fixations), fixations)
    # the mean map of the training videos: where gaze goes on average (the borders), without motion
    prior = np.mean([E.read_map(p).astype(np.float64) for p in sorted(train_root.glob("*/maps/*.png"))], axis=0)
    positional = mean_nss([prior] * len(fixations), fixations)
    print(f"training: {ITERATIONS} iterations in {seconds:.0f} s; held-out NSS: trained TSNet {trained:.3f}, "
          f"centre bias {centre:.3f}, mean training map {positional:.3f}")
    # measured (torch 2.13.0 CPU, 2 threads): trained 1.77, centre bias -0.08, mean training map 1.15;
    # training took 50-60 s on an idle 2-core machine (up to ~3× that under load)
    assert trained > centre + 1.0
    # the net follows the moving objects, not only the places they tend to be
    assert trained > positional + 0.3
