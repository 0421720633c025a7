"""Gaze → fixation points → fixation maps and Gaussian density maps (DIEM raw gaze).

DIEM `event_data` files (reference: datasets-and-metrics.md): one file per participant × video,
named `<participant>_<video>.txt`, one whitespace-separated row per video frame with nine columns
`frame left_x left_y left_dil left_event right_x right_y right_dil right_event`; frame counts from
1; x, y are **screen** pixels; event −1 error/dropped, 0 blink, 1 fixation, 2 saccade. Only
fixation samples (event 1) are used, as in the DIEM tools.

Choices, each a parameter (the DIEM publications leave them to the user):
- eyes: `both` (default: both eyes report a fixation; their mean position), `left`, `right`,
  `either` (the mean of the eyes that report one);
- screen → video: `ScreenMapping` subtracts an offset; by default the movie is centred at native
  size on a 1280×960 screen, offset ((1280 − W)/2, (960 − H)/2); another published tool's rule is
  `ScreenMapping(offset=(0, 100))`. Points outside the video are dropped;
- density maps: a sum of isotropic Gaussians (in video pixels, so anisotropic after a non-uniform
  resize) at the fixation points, divided by its maximum; σ defaults to 1° of visual angle under a
  viewing geometry that is **dynsal's assumption**, not DIEM's published setup: 90 cm viewing
  distance, 1280 screen pixels over 40 cm (1° ≈ 50.3 px). Give `Sigma("30px")` or your lab's
  geometry to change it.
Video size comes from the DIEM video name (`..._1280x720`).
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np

from dynsal.data.ground_truth import FIXATION_FOLDER, MAPS_FOLDER, to_uint8
from dynsal.data.images import write_png
from dynsal.errors import DataError

PathLike = Union[str, Path]
EYES = ("both", "left", "right", "either")
FIXATION, SACCADE, BLINK, ERROR = 1, 2, 0, -1
MAX_GAZE_FRAME = 10_000_000  # frames a gaze row may name without a video to check against (92 h at 30 fps)
MAX_GAZE_BYTES = 256 << 20  # DIEM's files are well under 10 MB
COLUMNS = ("frame", "left_x", "left_y", "left_dil", "left_event", "right_x", "right_y", "right_dil", "right_event")


@dataclass(frozen=True)
class ScreenMapping:
    """Screen → video coordinates: (x, y) − offset; offset None = the video centred on `screen`.

    Attributes:
        screen: (width, height) of the screen in pixels (DIEM: 1280×960).
        offset: explicit (dx, dy) in pixels, overriding the centring rule.
    """

    screen: Tuple[int, int] = (1280, 960)
    offset: Optional[Tuple[float, float]] = None

    def video_offset(self, video_size: Tuple[int, int]) -> Tuple[float, float]:
        """(dx, dy) for a video of (width, height) pixels."""
        if self.offset is not None:
            return float(self.offset[0]), float(self.offset[1])
        return (self.screen[0] - video_size[0]) / 2.0, (self.screen[1] - video_size[1]) / 2.0


@dataclass(frozen=True)
class ViewingGeometry:
    """Viewing distance and screen size, for σ in degrees (defaults: dynsal's assumption, see module)."""

    distance_cm: float = 90.0
    screen_width_cm: float = 40.0
    screen_width_px: int = 1280

    def pixels_per_degree(self) -> float:
        """Screen pixels spanned by 1° of visual angle at the screen centre: 2·d·tan(0.5°)·px/cm."""
        return 2 * self.distance_cm * math.tan(math.radians(0.5)) * self.screen_width_px / self.screen_width_cm


@dataclass(frozen=True)
class Sigma:
    """A Gaussian σ as text: `1deg` (degrees of visual angle) or `30px` (video pixels)."""

    text: str = "1deg"

    def pixels(self, geometry: ViewingGeometry = ViewingGeometry()) -> float:
        """σ in video (= screen, DIEM shows movies at native size) pixels."""
        match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*(deg|px)\s*", self.text)
        if not match or float(match[1]) <= 0:
            raise DataError(f"bad sigma {self.text!r}; give e.g. 1deg (visual angle) or 30px (video pixels)")
        value = float(match[1])
        return value * geometry.pixels_per_degree() if match[2] == "deg" else value


def video_size_from_name(name: str) -> Tuple[int, int]:
    """(width, height) from a DIEM video name such as `arctic_bears_1066x710`."""
    match = re.search(r"_(\d+)x(\d+)$", name)
    if not match:
        raise DataError(f"video {name!r}: no `_<width>x<height>` at the end of its name (DIEM's naming); "
                        "rename it or give its size")
    return int(match[1]), int(match[2])


def read_diem_events(path: PathLike, last_frame: int = MAX_GAZE_FRAME, video: str = "") -> np.ndarray:
    """A DIEM event_data file → float64 N×9 array of its rows (columns: `COLUMNS`).

    Sizes come from strangers' files, so they are checked before anything is sized from them: the file
    is at most `MAX_GAZE_BYTES` of text, and every frame number a whole number in 1..`last_frame`.

    Args:
        path: the event_data file.
        last_frame: the last frame a row may name: the video's frame count when known, else
            `MAX_GAZE_FRAME`.
        video: what `last_frame` counts, for the message (e.g. "the video clip.mp4 (300 frames)").

    Raises:
        DataError: naming the file (and line) for binary content, a row without nine numbers, or a frame
            number that is not a whole number in range (NaN, inf, 1e300, past the video's end).
    """
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_GAZE_BYTES:
            raise DataError(f"{path}: {size:,} bytes; a DIEM gaze file has one short line per frame (dynsal reads up "
                            f"to {MAX_GAZE_BYTES:,} bytes): is it a gaze file?")
        text = path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise DataError(f"{path}: cannot read the gaze file ({exc.strerror})") from exc
    except UnicodeDecodeError:
        raise DataError(f"{path}: binary content, not a DIEM gaze file (text rows of nine numbers)") from None
    lines = text.splitlines()
    rows = np.empty((len(lines), len(COLUMNS)), dtype=np.float64)
    count = 0
    for number, line in enumerate(lines, 1):
        words = line.split()
        if not words:
            continue
        try:
            values = [float(w) for w in words]
        except ValueError:
            values = []
        if len(values) != len(COLUMNS):
            raise DataError(f"{path}:{number}: expected nine numbers `frame left_x left_y left_dil left_event "
                            f"right_x right_y right_dil right_event` with frame ≥ 1, got {line.strip()[:80]!r}")
        frame = values[0]
        if not (math.isfinite(frame) and frame == int(frame) and 1 <= frame <= last_frame):
            where = video or f"dynsal's limit of {MAX_GAZE_FRAME:,} frames"
            hint = "; is this the gaze of another video, or a truncated video?" if frame > last_frame else ""
            raise DataError(f"{path}:{number}: frame {words[0]!r} is not a whole number from 1 to {last_frame:,} "
                            f"({where}){hint}")
        rows[count] = values
        count += 1
    if not count:
        raise DataError(f"{path}: empty gaze file (no rows)")
    return rows[:count]


def eye_positions(events: np.ndarray, eyes: str = "both") -> Tuple[np.ndarray, np.ndarray]:
    """(frames 0-based, N×2 screen positions) of the rows that count as a fixation for `eyes`."""
    if eyes not in EYES:
        raise DataError(f"unknown eyes {eyes!r}; choose one of {', '.join(EYES)}")
    left_ok = events[:, 4] == FIXATION
    right_ok = events[:, 8] == FIXATION
    left, right = events[:, 1:3], events[:, 5:7]
    if eyes == "left":
        keep, xy = left_ok, left
    elif eyes == "right":
        keep, xy = right_ok, right
    elif eyes == "both":
        keep, xy = left_ok & right_ok, (left + right) / 2
    else:
        keep = left_ok | right_ok
        weight_l, weight_r = left_ok[:, None].astype(float), right_ok[:, None].astype(float)
        xy = (left * weight_l + right * weight_r) / np.maximum(weight_l + weight_r, 1)
    return events[keep, 0].astype(np.int64) - 1, xy[keep]


def diem_fixations(paths: Sequence[PathLike], video_size: Tuple[int, int], frame_count: int,
                   eyes: str = "both", mapping: ScreenMapping = ScreenMapping()) -> List[np.ndarray]:
    """Per-frame fixation points of all participants of one video, in video pixels.

    Args:
        paths: the video's event_data files (one per participant).
        video_size: (width, height) of the video in its native pixels.
        frame_count: frames of the video; a gaze row beyond it is an error (raised before the
            per-frame lists are made).
        eyes, mapping: see the module docstring.

    Returns:
        `frame_count` float64 K×2 arrays of (x, y), one point per participant with a fixation there.

    Raises:
        DataError: a gaze file refers to a frame past the end of the video (naming file and line).
    """
    events = [read_diem_events(path, frame_count, f"the video has {frame_count:,} frames") for path in paths]
    points: List[List[np.ndarray]] = [[] for _ in range(frame_count)]
    dx, dy = mapping.video_offset(video_size)
    for rows in events:
        frames, xy = eye_positions(rows, eyes)
        xy = xy - (dx, dy)
        inside = (xy[:, 0] >= 0) & (xy[:, 0] < video_size[0]) & (xy[:, 1] >= 0) & (xy[:, 1] < video_size[1])
        for frame, point in zip(frames[inside], xy[inside]):
            points[frame].append(point)
    return [np.array(p, dtype=np.float64).reshape(-1, 2) for p in points]


def gaze_files(folder: PathLike, video: str, videos: Sequence[str] = ()) -> List[Path]:
    """The event_data files of `video` in `folder`, sorted: names ending in `_<video>.txt` (DIEM's
    `diem5s01.asc_15_arctic_bears_1066x710.txt`), except those of a longer video name in `videos`
    that ends with `_<video>` (so `bears_1066x710` does not take `arctic_bears_1066x710`'s files).
    """
    folder = Path(folder)
    longer = [other for other in videos if other != video and other.endswith("_" + video)]
    found = sorted(p for p in folder.glob(f"*_{video}.txt")
                   if not any(p.name.endswith(f"_{other}.txt") for other in longer))
    if not found:
        raise DataError(f"{folder}: no gaze file for video {video!r} (expected files named "
                        f"<participant>_{video}.txt)")
    return found


def fixation_map(points: np.ndarray, video_size: Tuple[int, int], shape: Tuple[int, int]) -> np.ndarray:
    """Bool H×W map of `shape` with the pixels hit by `points` (x, y in a `video_size` (W, H) video).

    A point lands on pixel (floor(y·H/h), floor(x·W/w)).
    """
    out = np.zeros(shape, dtype=bool)
    if len(points):
        cols = np.minimum((points[:, 0] * shape[1] / video_size[0]).astype(np.int64), shape[1] - 1)
        rows = np.minimum((points[:, 1] * shape[0] / video_size[1]).astype(np.int64), shape[0] - 1)
        out[rows, cols] = True
    return out


def density_map(points: np.ndarray, video_size: Tuple[int, int], shape: Tuple[int, int],
                sigma_px: float) -> np.ndarray:
    """Sum of Gaussians at `points`, evaluated at the pixel centres of a `shape` map, divided by its max.

    Args:
        points: K×2 (x, y) in the pixels of a `video_size` (width, height) video.
        shape: (H, W) of the map; the pixel (r, c) has its centre at video coordinates
            ((c + 0.5)·w/W, (r + 0.5)·h/H).
        sigma_px: σ in video pixels.

    Returns:
        float64 H×W in [0, 1] (all zeros without points).
    """
    height, width = shape
    if not len(points):
        return np.zeros(shape, dtype=np.float64)
    xs = (np.arange(width) + 0.5) * video_size[0] / width
    ys = (np.arange(height) + 0.5) * video_size[1] / height
    gx = np.exp(-((xs[None, :] - points[:, :1]) ** 2) / (2 * sigma_px ** 2))  # K×W
    gy = np.exp(-((ys[None, :] - points[:, 1:]) ** 2) / (2 * sigma_px ** 2))  # K×H
    density = gy.T @ gx
    peak = density.max()
    return density / peak if peak > 0 else density


def write_ground_truth(points: Sequence[np.ndarray], video_size: Tuple[int, int], shape: Tuple[int, int],
                       sigma_px: float, folder: PathLike, keep_empty: bool = False) -> int:
    """Write a video's per-frame maps as PNG in the layout `dynsal eval` reads.

    `folder/maps/<frame>.png` (density map, uint8, max 255) and `folder/fixation/<frame>.png` (0/255
    fixated pixels), frame = 6-digit index from 0 (as `dynsal flow` and the dataset keys); frames
    without fixations are skipped unless `keep_empty`. Returns the number of frames written.
    """
    folder = Path(folder)
    written = 0
    for index, frame_points in enumerate(points):
        if not len(frame_points) and not keep_empty:
            continue
        density = to_uint8(density_map(frame_points, video_size, shape, sigma_px))
        write_png(density, folder / MAPS_FOLDER / f"{index:06d}.png")
        fixations = fixation_map(frame_points, video_size, shape).astype(np.uint8) * 255
        write_png(fixations, folder / FIXATION_FOLDER / f"{index:06d}.png")
        written += 1
    return written


def observer_subset(paths: Sequence[PathLike], fraction: float, seed: int) -> List[Path]:
    """A seeded subset of round(fraction·n) (at least 1) participants' gaze files, in their order.

    Gaze-based augmentation: maps built from subsets of observers.
    """
    paths = [Path(p) for p in paths]
    if not 0 < fraction <= 1:
        raise DataError(f"observer fraction must be in (0, 1], got {fraction}")
    count = max(1, int(round(fraction * len(paths))))
    chosen = np.random.default_rng(seed).choice(len(paths), size=count, replace=False)
    return [paths[i] for i in sorted(chosen)]
