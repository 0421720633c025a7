"""Overlay MP4s: H.264 (what browsers play) through PyAV, mp4v through OpenCV as the one-warning fallback."""
from __future__ import annotations

import io

import av
import cv2
import numpy as np
import pytest

from dynsal.predict import video_writer
from dynsal.predict.video_writer import open_video_writer


def frames(count: int, height: int, width: int):
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    return [np.roll(base, 2 * i, axis=1) for i in range(count)]


def codec_and_frames(path):
    """The codec name and frame count of the first video stream, as FFmpeg decodes them."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        decoded = [frame.to_ndarray(format="bgr24") for frame in container.decode(stream)]
        return stream.codec_context.name, decoded


@pytest.mark.parametrize("size", [(48, 64), (45, 67)])  # odd sizes are padded to even for yuv420p
def test_overlay_videos_are_h264(tmp_path, size):
    writer = open_video_writer(tmp_path / "o.mp4", 25.0, size[::-1])
    for frame in frames(6, *size):
        writer.write(frame)
    writer.release()
    codec, decoded = codec_and_frames(tmp_path / "o.mp4")
    assert codec == "h264" and len(decoded) == 6
    assert decoded[0].shape == (size[0] + size[0] % 2, size[1] + size[1] % 2, 3)
    capture = cv2.VideoCapture(str(tmp_path / "o.mp4"))  # OpenCV reads it too
    assert capture.read()[0]
    capture.release()


def test_without_pyav_mp4v_is_written_with_one_warning(tmp_path, monkeypatch):
    monkeypatch.setattr(video_writer, "av", None)
    monkeypatch.setattr(video_writer, "_warned", [])
    stderr = io.StringIO()
    monkeypatch.setattr("sys.stderr", stderr)
    for name in ("a.mp4", "b.mp4"):
        writer = open_video_writer(tmp_path / name, 25.0, (64, 48))
        for frame in frames(3, 48, 64):
            writer.write(frame)
        writer.release()
    assert stderr.getvalue().count("mp4v") == 1 and "pip install av" in stderr.getvalue()
    assert codec_and_frames(tmp_path / "a.mp4")[0] == "mpeg4"
