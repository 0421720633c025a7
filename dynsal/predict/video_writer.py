"""MP4 files of overlay frames: H.264 that browsers and players play, MPEG-4 Part 2 as the fallback.

H.264 (High profile, yuv420p, `+faststart` so a browser starts playing before the download ends) is
encoded by FFmpeg's libx264 inside PyAV's wheels (`av`, a dependency of dynsal). Where PyAV is missing
or has no H.264 encoder, OpenCV writes MPEG-4 Part 2 (`mp4v`), which most browsers do not play; that
is said once per process on stderr. H.264 in yuv420p needs even sizes: an odd last row or column is
repeated.
"""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Optional, Tuple

import cv2
import numpy as np

from dynsal.errors import OutputError
from dynsal.progress import write_line

try:
    import av
except ImportError:  # the fallback below
    av = None

H264_ENCODERS = ("libx264", "h264", "libopenh264")
FALLBACK_FOURCC = "mp4v"
_warned = []  # the fallback's warning, once per process


def h264_encoder() -> Optional[str]:
    """The first H.264 encoder PyAV offers here, or None (no PyAV, or an FFmpeg without one)."""
    if av is None:
        return None
    return next((name for name in H264_ENCODERS if name in av.codecs_available), None)


class _H264:
    """H.264 through PyAV; frames are BGR uint8 H×W×3 of one size."""

    def __init__(self, path: Path, fps: float, size: Tuple[int, int], encoder: str):
        width, height = size
        self.container = av.open(str(path), "w", options={"movflags": "+faststart"})
        self.stream = self.container.add_stream(encoder, rate=Fraction(fps).limit_denominator(1001))
        self.stream.width, self.stream.height = width + width % 2, height + height % 2
        self.stream.pix_fmt = "yuv420p"
        self.stream.options = {"crf": "20"} if encoder == "libx264" else {}

    def write(self, frame: np.ndarray) -> None:
        pad = ((0, frame.shape[0] % 2), (0, frame.shape[1] % 2), (0, 0))
        image = np.pad(frame, pad, mode="edge") if any(p[1] for p in pad) else frame
        for packet in self.stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="bgr24")):
            self.container.mux(packet)

    def release(self) -> None:
        """Flush the encoder and close the file (once: a second call does nothing)."""
        container, self.container = self.container, None
        if container is None:
            return
        try:
            for packet in self.stream.encode():  # flush the encoder
                container.mux(packet)
        finally:
            container.close()


class _OpenCV:
    """MPEG-4 Part 2 through OpenCV (the fallback)."""

    def __init__(self, path: Path, fps: float, size: Tuple[int, int]):
        self.writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*FALLBACK_FOURCC), fps, size)
        if not self.writer.isOpened():
            raise OutputError(f"{path}: OpenCV cannot write MP4 video here (no {FALLBACK_FOURCC} encoder, the folder "
                              "is not writable, or the disk is full)")

    def write(self, frame: np.ndarray) -> None:
        self.writer.write(frame)

    def release(self) -> None:
        self.writer.release()


def open_video_writer(path: Path, fps: float, size: Tuple[int, int]):
    """A writer (`write(bgr_frame)`, `release()`) of an MP4 at `fps` of frames `size` = (width, height):
    H.264 when PyAV can encode it, else mp4v with one warning on stderr."""
    encoder = h264_encoder()
    if encoder is not None:
        return _H264(Path(path), fps, size, encoder)
    if not _warned:
        _warned.append(True)
        write_line("dynsal: overlays are MPEG-4 Part 2 (mp4v), which browsers do not play: PyAV with an H.264 "
                   "encoder is missing (pip install av)")
    return _OpenCV(Path(path), fps, size)
