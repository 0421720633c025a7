"""A synthetic evaluation set with several models, for the report's tests, its benchmark and the README's
screenshot: the ground truth of tests/synthetic_gaze.py (frames, density maps, fixations of observers who
follow moving discs) and two made-up models, written as `dynsal predict` writes maps:

    <root>/gt/<video>/{images,maps,fixation}/<frame>.png
    <root>/sharp/<video>/<frame>.png + settings.json     the density blurred a little and shifted a little
    <root>/blurry/<video>/<frame>.png + settings.json    a heavy blur of it mixed with a centre bias and noise

The settings.json files are dynsal-predict records that say they are synthetic (no net made these maps).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, Tuple

import cv2
import numpy as np

from dynsal.evaluate.baselines import centre_bias_map
from tests.synthetic_gaze import write_layout

MODELS = ("sharp", "blurry")


def _model_map(density: np.ndarray, model: str, rng: np.random.Generator) -> np.ndarray:
    h, w = density.shape
    values = density.astype(np.float64)
    if model == "sharp":
        values = np.roll(cv2.GaussianBlur(values, (0, 0), 0.02 * w), max(1, w // 100), axis=1)
    else:
        blurred = cv2.GaussianBlur(values, (0, 0), 0.06 * w)
        values = 0.6 * blurred / max(blurred.max(), 1e-9) + 0.4 * centre_bias_map((h, w)) + 0.15 * rng.random((h, w))
    return np.round(255 * values / max(values.max(), 1e-9)).astype(np.uint8)


def _record(model: str) -> dict:
    return {"format": "dynsal-predict", "version": 1, "files": [], "videos": [],
            "net": f"synthetic ({model}: made from the ground truth by tests/synthetic_eval.py, not by a net)",
            "flow": {"method": "dis", "encoding": "middlebury"}, "postprocessing": {"blur": True, "stretch": True}}


def write_eval_set(root: Path, videos: int = 4, frames: int = 12, size: Tuple[int, int] = (72, 128),
                   seed: int = 0) -> Tuple[Dict[str, Path], Path]:
    """Write the set under `root`; returns ({model: prediction folder}, ground-truth folder)."""
    root = Path(root)
    radius = max(3, min(size) // 12)
    gt = write_layout(root / "gt", list(range(seed, seed + videos)), frames=frames, size=size, radius=radius,
                      observers=8, sigma_px=max(1.5, min(size) / 30))
    rng = np.random.default_rng(seed)
    models = {model: root / model for model in MODELS}
    for video in sorted(p.name for p in gt.iterdir()):
        for model, folder in models.items():
            for density_file in sorted((gt / video / "maps").glob("*.png")):
                density = cv2.imread(str(density_file), cv2.IMREAD_GRAYSCALE)
                (folder / video).mkdir(parents=True, exist_ok=True)  # test data: no need for durable writes
                if not cv2.imwrite(str(folder / video / density_file.name), _model_map(density, model, rng)):
                    raise OSError(f"cannot write {folder / video / density_file.name}")
            (folder / video / "settings.json").write_text(json.dumps(_record(model), indent=2) + "\n")
    return models, gt
