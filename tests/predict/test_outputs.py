"""Output writers: PNG names, float maps, overlay videos that decode back, atomic completion."""
from __future__ import annotations

import json

import cv2
import numpy as np

from dynsal.predict.outputs import VideoOutputs, heat_overlay, is_complete


def test_video_outputs_complete_atomically(tmp_path):
    outputs = VideoOutputs(tmp_path, "clip", fps=10, npz=True, overlay=True, side_by_side=True)
    rng = np.random.default_rng(0)
    for i in range(3):
        frame = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
        saliency = rng.integers(0, 256, (48, 64), dtype=np.uint8)
        outputs.add(f"{i + 1:06d}", frame, saliency)
    assert not is_complete(tmp_path, "clip") and (tmp_path / "clip.partial").is_dir()
    final = outputs.finish({"net": "ssnet"})
    assert final == tmp_path / "clip" and not (tmp_path / "clip.partial").exists()
    assert sorted(p.name for p in final.glob("*.png")) == ["000001.png", "000002.png", "000003.png"]
    assert json.loads((final / "settings.json").read_text()) == {"net": "ssnet"}
    maps = np.load(final / "maps.npz")
    assert maps["maps"].shape == (3, 48, 64) and maps["maps"].max() <= 1.0 and list(maps["frames"])[0] == "000001"
    for kind, width in (("overlay", 64), ("side_by_side", 128)):
        capture = cv2.VideoCapture(str(tmp_path / f"clip_{kind}.mp4"))
        frames = []
        while True:
            ok, image = capture.read()
            if not ok:
                break
            frames.append(image)
        assert len(frames) == 3 and frames[0].shape == (48, width, 3)
    assert is_complete(tmp_path, "clip")


def test_abort_leaves_nothing_that_looks_complete(tmp_path):
    outputs = VideoOutputs(tmp_path, "clip", fps=10)
    outputs.add("000001", np.zeros((8, 8, 3), np.uint8), np.zeros((8, 8), np.uint8))
    outputs.abort()
    assert not any(tmp_path.iterdir())


def test_heat_overlay_blends():
    frame = np.zeros((2, 2, 3), np.uint8)
    blended = heat_overlay(frame, np.full((2, 2), 255, np.uint8))
    assert blended[..., 2].min() > 0 and blended[..., 0].max() == 0  # JET at 255 is red (BGR)
