"""Writing one video's predictions: PNG maps, float maps (.npz), overlay and side-by-side MP4s.

Layout for a video `clip`: `<out>/clip/<frame>.png` (frame names match the input frames: the
frame file's stem for frame folders; `000000`, `000001` … for video files — 0-based, 6 digits, as
`dynsal flow`, the dataset keys and `make-lmdb --save-ground-truth` name frames),
`<out>/clip/maps.npz` (float32 maps in [0, 1], one array `maps` F×H×W and `frames`),
`<out>/clip_overlay.mp4` and `<out>/clip_side_by_side.mp4`, `<out>/clip/settings.json`.
Everything is written under `<out>/clip.partial/` and renamed when the video is complete, so a
folder without `.partial` is always complete; an interrupted video starts again.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import List, Optional

import cv2
import numpy as np

from dynsal.predict.video_writer import open_video_writer

OVERLAY_ALPHA = 0.5


def heat_overlay(frame: np.ndarray, saliency: np.ndarray, alpha: float = OVERLAY_ALPHA) -> np.ndarray:
    """The frame (BGR uint8) blended with the map in OpenCV's JET colour map (weight `alpha`)."""
    heat = cv2.applyColorMap(saliency, cv2.COLORMAP_JET)
    return cv2.addWeighted(frame, 1.0 - alpha, heat, alpha, 0.0)


class VideoOutputs:
    """Collects one video's outputs in a `.partial` folder; `finish()` makes them final."""

    def __init__(self, out_dir: Path, video: str, fps: float, png: bool = True, npz: bool = False,
                 overlay: bool = False, side_by_side: bool = False, maps_folder: str = ""):
        self.out_dir, self.video, self.fps = Path(out_dir), video, fps or 25.0
        self.final = self.out_dir / video
        self.partial = self.out_dir / f"{video}.partial"
        self.png, self.npz, self.overlay, self.side_by_side = png, npz, overlay, side_by_side
        if self.partial.exists():
            shutil.rmtree(self.partial)
        self.partial.mkdir(parents=True)
        self.maps = self.partial / maps_folder  # where the PNG maps go (`maps/` in the dhf1k layout)
        self.maps.mkdir(exist_ok=True)
        self._floats: List[np.ndarray] = []
        self._names: List[str] = []
        self._writers = {}

    def _writer(self, kind: str, size):
        """The MP4 writer of `kind` (H.264: `dynsal.predict.video_writer`), opened at the first frame."""
        if kind not in self._writers:
            self._writers[kind] = open_video_writer(self.partial / f"{self.video}_{kind}.mp4", self.fps, size)
        return self._writers[kind]

    def add(self, name: str, frame: np.ndarray, saliency: np.ndarray, float_map: Optional[np.ndarray] = None):
        """Write one frame's outputs: `saliency` uint8 H×W at the frame's size, `frame` BGR uint8."""
        self._names.append(name)
        if self.png:
            cv2.imwrite(str(self.maps / f"{name}.png"), saliency)
        if self.npz:
            self._floats.append((float_map if float_map is not None else saliency) / 255.0)
        height, width = saliency.shape
        if self.overlay:
            self._writer("overlay", (width, height)).write(heat_overlay(frame, saliency))
        if self.side_by_side:
            side = np.concatenate([frame, cv2.cvtColor(saliency, cv2.COLOR_GRAY2BGR)], axis=1)
            self._writer("side_by_side", (2 * width, height)).write(side)

    def finish(self, settings: dict) -> Path:
        """Close the videos, write maps.npz and settings.json, and move everything to its final place."""
        for writer in self._writers.values():
            writer.release()
        if self.npz:
            np.savez_compressed(self.partial / "maps.npz", maps=np.stack(self._floats).astype(np.float32),
                                frames=np.array(self._names))
        (self.partial / "settings.json").write_text(json.dumps(settings, indent=2, sort_keys=True))
        for kind in list(self._writers):
            (self.partial / f"{self.video}_{kind}.mp4").replace(self.out_dir / f"{self.video}_{kind}.mp4")
        if self.final.exists():
            shutil.rmtree(self.final)
        self.partial.replace(self.final)
        return self.final

    def abort(self) -> None:
        """Drop the partial outputs of a video that failed."""
        for writer in self._writers.values():
            writer.release()
        shutil.rmtree(self.partial, ignore_errors=True)


def is_complete(out_dir: Path, video: str) -> bool:
    """A video's outputs are complete when its final folder exists with its settings.json."""
    return (Path(out_dir) / video / "settings.json").is_file()
