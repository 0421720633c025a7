"""Decode videos (files or folders of frames) into (index, timestamp, BGR frame) with a resize policy.

Sources:
- a video file OpenCV's `cv2.VideoCapture` can open (mp4, avi, mov, mkv, ...): frames in decoding
  order, timestamp = index / fps (the container's frame rate);
- a folder of images (png, jpg, jpeg, bmp, tif): frames in natural order of their names
  (`2.png` before `10.png`), timestamp = index / `fps` (default 30).

Resize policies (`ResizePolicy.parse`):
- `fixed` or `fixed:HxW`: exactly H×W (default 240×320, the nets' input size) with `cv2.INTER_AREA`;
- `fit:N`: the longer side at most N pixels, aspect ratio kept (rounded), never upscaled, with
  OpenCV's default INTER_LINEAR (the authors' script: `fixed` with INTER_AREA, fit-within-512 with
  cv2.resize's default);
- `native`: frames as decoded.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, List, NamedTuple, Optional, Tuple, Union

import cv2
import numpy as np

from dynsal.errors import DataError

PathLike = Union[str, Path]
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".mpg", ".mpeg", ".m4v", ".webm", ".wmv", ".flv")
DEFAULT_SIZE = (240, 320)
DEFAULT_FPS = 30.0


class VideoFrame(NamedTuple):
    """One decoded frame: 0-based index, timestamp in seconds, BGR uint8 H×W×3 image."""

    index: int
    timestamp: float
    image: np.ndarray


@dataclass(frozen=True)
class ResizePolicy:
    """How decoded frames are resized.

    Attributes:
        mode: "fixed" (exactly `size`), "fit" (longer side ≤ `max_side`, never upscaled) or "native".
        size: (height, width) for "fixed".
        max_side: the bound for "fit".
    """

    mode: str = "fixed"
    size: Tuple[int, int] = DEFAULT_SIZE
    max_side: int = 0

    @classmethod
    def parse(cls, text: str) -> ResizePolicy:
        """`fixed`, `fixed:HxW`, `fit:N` or `native` → a policy; DataError for anything else."""
        text = text.strip().lower()
        if text == "native":
            return cls("native")
        if text == "fixed":
            return cls("fixed")
        match = re.fullmatch(r"fixed:(\d+)x(\d+)", text)
        if match and int(match[1]) > 0 and int(match[2]) > 0:
            return cls("fixed", (int(match[1]), int(match[2])))
        match = re.fullmatch(r"fit:(\d+)", text)
        if match and int(match[1]) > 0:
            return cls("fit", max_side=int(match[1]))
        raise DataError(f"unknown resize policy {text!r}; use fixed, fixed:HxW (e.g. fixed:240x320), fit:N "
                        "or native")

    def __str__(self) -> str:
        if self.mode == "fixed":
            return f"fixed:{self.size[0]}x{self.size[1]}"
        return f"fit:{self.max_side}" if self.mode == "fit" else "native"

    def output_size(self, height: int, width: int) -> Tuple[int, int]:
        """The (height, width) a height×width frame gets under this policy."""
        if self.mode == "fixed":
            return self.size
        if self.mode == "fit" and max(height, width) > self.max_side:
            scale = self.max_side / max(height, width)
            return max(1, int(round(height * scale))), max(1, int(round(width * scale)))
        return height, width

    def apply(self, image: np.ndarray) -> np.ndarray:
        """The image resized (INTER_AREA for fixed, INTER_LINEAR for fit); unchanged when it already fits."""
        height, width = self.output_size(*image.shape[:2])
        if (height, width) == tuple(image.shape[:2]):
            return image
        interpolation = cv2.INTER_AREA if self.mode == "fixed" else cv2.INTER_LINEAR
        return cv2.resize(image, (width, height), interpolation=interpolation)


def natural_key(path: Path):
    """Sort key ordering `2.png` before `10.png` (digit runs compared as numbers)."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.name)]


def frame_files(folder: PathLike) -> List[Path]:
    """The image files of a frame folder in natural name order."""
    folder = Path(folder)
    return sorted((p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES),
                  key=natural_key)


def read_image(path: PathLike) -> np.ndarray:
    """A BGR uint8 image file; DataError naming the file when it cannot be read."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise DataError(f"{path}: cannot read the image (corrupt or not an image); replace or remove it")
    return image


def _folder_frames(folder: Path, fps: float) -> Iterator[Tuple[int, float, np.ndarray]]:
    files = frame_files(folder)
    if not files:
        raise DataError(f"{folder}: no frames (no {', '.join(IMAGE_SUFFIXES)} files in the folder)")
    first_size = None
    for index, path in enumerate(files):
        image = read_image(path)
        size = image.shape[:2]
        first_size = first_size or size
        if size != first_size:
            raise DataError(f"{path}: {size[1]}×{size[0]} pixels, but the folder's first frame {files[0].name} is "
                            f"{first_size[1]}×{first_size[0]}; the frames of one video must have one size")
        yield index, index / fps, image


def _file_frames(path: Path) -> Iterator[Tuple[int, float, np.ndarray]]:
    if not path.is_file():
        raise DataError(f"{path}: no such video file")
    capture = cv2.VideoCapture(str(path))
    try:
        if not capture.isOpened():
            raise DataError(f"{path}: OpenCV cannot open the video (corrupt, empty or an unsupported codec); "
                            "re-encode it, e.g. ffmpeg -i IN -c:v libx264 OUT.mp4")
        fps = capture.get(cv2.CAP_PROP_FPS)
        fps = fps if fps and fps > 0 else DEFAULT_FPS
        index = 0
        while True:
            ok, image = capture.read()
            if not ok or image is None:
                break
            yield index, index / fps, image
            index += 1
        if index == 0:
            raise DataError(f"{path}: no frame could be decoded (empty or corrupt video)")
    finally:
        capture.release()


def open_stream(source: Union[int, str]) -> Tuple[Iterator[VideoFrame], float]:
    """Frames of a webcam (its index) or a network stream (rtsp://, http(s):// URL of a video), read
    through one `cv2.VideoCapture` until the stream ends, and the frame rate it states.

    Raises:
        DataError: OpenCV cannot open it (named, with what to check).
    """
    capture = cv2.VideoCapture(source)
    if not capture.isOpened():
        capture.release()
        what = f"webcam {source}" if isinstance(source, int) else source
        raise DataError(f"{what}: OpenCV cannot open it (no such camera, an unreachable address, or a format "
                        "its FFmpeg does not read)")
    fps = capture.get(cv2.CAP_PROP_FPS)
    fps = fps if fps and 0 < fps < 1000 else DEFAULT_FPS

    def frames() -> Iterator[VideoFrame]:
        index = 0
        try:
            while True:
                ok, image = capture.read()
                if not ok or image is None:
                    return
                if image.ndim == 2:
                    image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
                yield VideoFrame(index, index / fps, image)
                index += 1
        finally:
            capture.release()

    return frames(), fps


def declared_frame_count(source: PathLike) -> Optional[Tuple[int, bool]]:
    """(frames, exact) of a video before decoding it: a frame folder's image files (exact), or the count a
    video file's container declares (OpenCV's CAP_PROP_FRAME_COUNT: an estimate for some containers);
    None when unknown (no such file, no count)."""
    source = Path(source)
    if source.is_dir():
        return len(frame_files(source)), True
    capture = cv2.VideoCapture(str(source))
    try:
        count = capture.get(cv2.CAP_PROP_FRAME_COUNT) if capture.isOpened() else 0
    finally:
        capture.release()
    return (int(count), False) if count and count > 0 else None


def read_frames(source: PathLike, resize: Optional[ResizePolicy] = None,
                fps: float = DEFAULT_FPS) -> Iterator[VideoFrame]:
    """Decode a video file or a folder of frames.

    Args:
        source: a video file or a folder of images.
        resize: the resize policy (None = native).
        fps: frame rate of a frame folder (video files use their container's).

    Yields:
        VideoFrame(index from 0, timestamp in seconds, BGR uint8 H×W×3).

    Raises:
        DataError: naming the file, when it is missing, unreadable or holds no frame.
    """
    source = Path(source)
    frames = _folder_frames(source, fps) if source.is_dir() else _file_frames(source)
    for index, timestamp, image in frames:
        if image.ndim == 2:
            image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
        yield VideoFrame(index, timestamp, resize.apply(image) if resize else image)


def video_info(path: PathLike) -> Tuple[float, Optional[int]]:
    """(frame rate, frame count) that a video file's container declares: DEFAULT_FPS and None where it
    declares none or OpenCV cannot open it. The count is the container's: a truncated file declares more
    frames than decode."""
    capture = cv2.VideoCapture(str(path))
    try:
        if not capture.isOpened():
            return DEFAULT_FPS, None
        fps, count = capture.get(cv2.CAP_PROP_FPS), int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    finally:
        capture.release()
    return (fps if fps > 0 else DEFAULT_FPS), (count if count > 0 else None)


def video_name(source: PathLike) -> str:
    """A video's name: the file name without suffix, or the folder's name."""
    source = Path(source)
    return source.name if source.is_dir() else source.stem


def list_videos(folder: PathLike) -> List[Path]:
    """Video files (by suffix) and frame folders directly inside `folder`, sorted by name."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: not a folder of videos")
    found = [p for p in sorted(folder.iterdir())
             if (p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES) or (p.is_dir() and frame_files(p))]
    if not found:
        raise DataError(f"{folder}: no video files ({', '.join(VIDEO_SUFFIXES)}) or frame folders found")
    return found
