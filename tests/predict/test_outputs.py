"""Output writers: PNG names, float maps, overlay videos that decode back, atomic completion."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from dynsal.errors import OutputError
from dynsal.predict.destination import OutputSlot
from dynsal.predict.outputs import OutputOptions, VideoOutputs, heat_overlay
from dynsal.predict.record import read_record


def test_video_outputs_complete_atomically(tmp_path):
    options = OutputOptions(npz=True, overlay=True, side_by_side=True)
    slot = OutputSlot(tmp_path, "clip", options.videos(still=False))
    outputs = VideoOutputs(slot, fps=10, options=options)
    rng = np.random.default_rng(0)
    for i in range(3):
        frame = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
        saliency = rng.integers(0, 256, (48, 64), dtype=np.uint8)
        outputs.add(f"{i + 1:06d}", frame, saliency)
    assert slot.record() is None and (tmp_path / ".clip.partial").is_dir() and not (tmp_path / "clip").exists()
    final = outputs.finish({"net": "ssnet"})
    assert final == tmp_path / "clip" and not (tmp_path / ".clip.partial").exists()
    assert sorted(p.name for p in final.glob("*.png")) == ["000001.png", "000002.png", "000003.png"]
    record = read_record(final)
    assert record["net"] == "ssnet" and record["files"] == ["000001.png", "000002.png", "000003.png", "maps.npz"]
    assert record["videos"] == ["clip_overlay.mp4", "clip_side_by_side.mp4"]
    assert sorted(p.name for p in final.iterdir()) == record["files"] + ["settings.json"]
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


def test_abort_leaves_nothing_that_looks_complete(tmp_path):
    options = OutputOptions()
    outputs = VideoOutputs(OutputSlot(tmp_path, "clip", options.videos(still=False)), fps=10, options=options)
    outputs.add("000001", np.zeros((8, 8, 3), np.uint8), np.zeros((8, 8), np.uint8))
    outputs.abort()
    assert not any(tmp_path.iterdir())


def test_a_frame_name_is_written_once(tmp_path):
    outputs = VideoOutputs(OutputSlot(tmp_path, "clip"), fps=10, options=OutputOptions(overlay=False))
    outputs.add("f001", np.zeros((8, 8, 3), np.uint8), np.zeros((8, 8), np.uint8))
    with pytest.raises(OutputError, match="two frames are named 'f001'"):
        outputs.add("f001", np.zeros((8, 8, 3), np.uint8), np.zeros((8, 8), np.uint8))


def test_heat_overlay_blends():
    frame = np.zeros((2, 2, 3), np.uint8)
    blended = heat_overlay(frame, np.full((2, 2), 255, np.uint8))
    assert blended[..., 2].min() > 0 and blended[..., 0].max() == 0  # JET at 255 is red (BGR)
