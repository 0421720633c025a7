"""Writing one input's predictions: PNG maps, float maps (.npz), overlay and side-by-side MP4s.

Layout for an input `clip`: `<out>/clip/<frame>.png` (frame names match the input frames: the
frame file's stem for frame folders; `000000`, `000001` … for video files — 0-based, 6 digits, as
`dynsal flow`, the dataset keys and `make-lmdb --save-ground-truth` name frames; with the `dhf1k`
layout the maps are `<out>/0001/maps/0001.png` …, DHF1K's names), `<out>/clip/maps.npz` (float32
maps in [0, 1], one array `maps` F×H×W and `frames`),
`<out>/clip_overlay.mp4` and `<out>/clip_side_by_side.mp4` (H.264), `<out>/clip/settings.json`.
Everything is written into the input's staging folder and made final by `OutputSlot.commit`
(`dynsal.predict.destination`), so a folder `<out>/clip` is always complete. Every write is
checked: a failing one (disk full, no permission) ends the input with one line naming the file,
and its unfinished outputs are dropped.
"""
from __future__ import annotations

import contextlib
import io
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import cv2
import numpy as np

from dynsal.data import ground_truth as GT
from dynsal.data.images import write_png
from dynsal.errors import OutputError
from dynsal.files import sync_file, write_atomic, write_json
from dynsal.predict.destination import VIDEO_KINDS, OutputSlot
from dynsal.predict.record import RECORD_FILE, RECORD_FORMAT, RECORD_VERSION
from dynsal.predict.video_writer import open_video_writer

OVERLAY_ALPHA = 0.5


@dataclass
class OutputOptions:
    """Which outputs to write for every input, and in which layout: `flat` (`<video>/<frame>.png`; a video
    file's frames `000000` …) or `dhf1k` (`<video>/maps/<frame>.png` under DHF1K's names: `001.AVI` →
    `0001/maps/0001.png` …; frame folders keep their frames' names)."""

    png: bool = True
    npz: bool = False
    overlay: bool = True
    side_by_side: bool = False
    layout: str = "flat"

    def __post_init__(self):
        if self.layout not in GT.LAYOUTS:
            raise OutputError(f"unknown output layout {self.layout!r}; choose one of {', '.join(GT.LAYOUTS)}")

    def to_dict(self) -> Dict[str, object]:
        return asdict(self)

    def video_name(self, name: str) -> str:
        """The output name of an input called `name`."""
        return GT.dhf1k_video_name(name) if self.layout == "dhf1k" else name

    def frame_name(self, index: int) -> str:
        """The map name of a video file's frame `index` (0-based)."""
        return GT.dhf1k_frame_name(index) if self.layout == "dhf1k" else f"{index:06d}"

    @property
    def maps_folder(self) -> str:
        """The sub-folder of the maps in the input's output folder ("" = the folder itself)."""
        return GT.MAPS_FOLDER if self.layout == "dhf1k" else ""

    def videos(self, still: bool) -> Tuple[str, ...]:
        """The video kinds an input writes: none for a still image."""
        return () if still else tuple(kind for kind in VIDEO_KINDS if getattr(self, kind))


def heat_overlay(frame: np.ndarray, saliency: np.ndarray, alpha: float = OVERLAY_ALPHA) -> np.ndarray:
    """The frame (BGR uint8) blended with the map in OpenCV's JET colour map (weight `alpha`)."""
    heat = cv2.applyColorMap(saliency, cv2.COLORMAP_JET)
    return cv2.addWeighted(frame, 1.0 - alpha, heat, alpha, 0.0)


@contextlib.contextmanager
def _writing(path: Path):
    """Turn an OSError while writing `path` into one line naming it."""
    try:
        yield
    except OSError as exc:
        raise OutputError(f"{path}: cannot write it ({exc.strerror or exc}); this input's outputs were not kept: "
                          "free some space or fix the permissions, then rerun") from None


def _decodable_frames(path: Path) -> int:
    """The frame count an MP4 that OpenCV wrote declares (-1 when it does not open)."""
    capture = cv2.VideoCapture(str(path))
    try:
        return int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) if capture.isOpened() else -1
    finally:
        capture.release()


class VideoOutputs:
    """Collects one input's outputs in its slot's staging folder; `finish()` makes them final.

    Args:
        slot: where the input's outputs go (`OutputSlot`, created with `options.videos(...)`).
        fps: frame rate of the videos.
        options: which outputs to write.
    """

    def __init__(self, slot: OutputSlot, fps: float, options: OutputOptions):
        self.slot, self.fps, self.options = slot, fps or 25.0, options
        with _writing(slot.staging):
            self.folder = slot.start()
        self._floats: List[np.ndarray] = []
        self._names: List[str] = []
        self._files: List[str] = []
        self._writers: Dict[str, object] = {}
        self.maps = self.folder / options.maps_folder  # where the PNG maps go (`maps/` in the dhf1k layout)
        with _writing(self.maps):
            self.maps.mkdir(exist_ok=True)

    def _writer(self, kind: str, size):
        """The MP4 writer of `kind` (H.264: `dynsal.predict.video_writer`), opened at the first frame."""
        if kind not in self._writers:
            path = self.folder / self.slot.video_name(kind)
            with _writing(path):
                self._writers[kind] = open_video_writer(path, self.fps, size)
        return self._writers[kind]

    def add(self, name: str, frame: np.ndarray, saliency: np.ndarray, float_map: Optional[np.ndarray] = None):
        """Write one frame's outputs: `saliency` uint8 H×W at the frame's size, `frame` BGR uint8."""
        if name in self._names:
            raise OutputError(f"two frames are named {name!r}; their maps would overwrite each other")
        self._names.append(name)
        if self.options.png:
            path = self.maps / f"{name}.png"
            with _writing(path):
                write_png(saliency, path)
            self._files.append(path.relative_to(self.folder).as_posix())
        if self.options.npz:
            self._floats.append((float_map if float_map is not None else saliency) / 255.0)
        height, width = saliency.shape
        if "overlay" in self.slot.videos:
            with _writing(self.folder / self.slot.video_name("overlay")):
                self._writer("overlay", (width, height)).write(heat_overlay(frame, saliency))
        if "side_by_side" in self.slot.videos:
            side = np.concatenate([frame, cv2.cvtColor(saliency, cv2.COLOR_GRAY2BGR)], axis=1)
            with _writing(self.folder / self.slot.video_name("side_by_side")):
                self._writer("side_by_side", (2 * width, height)).write(side)

    def _close_videos(self) -> List[str]:
        """Close the video writers and check each file holds every frame; returns their names."""
        names = []
        for kind, writer in self._writers.items():
            path = self.folder / self.slot.video_name(kind)
            with _writing(path):
                writer.release()
            found = _decodable_frames(path)
            if found != len(self._names):
                raise OutputError(f"{path}: the video holds {max(found, 0)} of {len(self._names)} frames (is the "
                                  "disk full?); this input's outputs were not kept")
            with _writing(path):
                sync_file(path)
            names.append(path.name)
        self._writers = {}
        return names

    def finish(self, settings: dict) -> Path:
        """Close the videos, write maps.npz and settings.json (the record, last), and make the output final."""
        videos = self._close_videos()
        if self.options.npz:
            path = self.folder / "maps.npz"
            buffer = io.BytesIO()
            np.savez_compressed(buffer, maps=np.stack(self._floats).astype(np.float32), frames=np.array(self._names))
            with _writing(path):
                write_atomic(path, buffer.getvalue())
            self._files.append(path.name)
        record = dict(settings, format=RECORD_FORMAT, version=RECORD_VERSION, files=sorted(self._files),
                      videos=videos)
        with _writing(self.folder / RECORD_FILE):
            write_json(self.folder / RECORD_FILE, record)
        with _writing(self.slot.final):
            return self.slot.commit()

    def abort(self) -> None:
        """Drop the outputs of an input that failed."""
        for writer in self._writers.values():
            writer.release()
        self._writers = {}
        self.slot.discard()
