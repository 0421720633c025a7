"""Video and frame-folder decoding, resize policies, errors naming the file."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from dynsal.data.video import ResizePolicy, list_videos, read_frames, video_name
from dynsal.errors import DataError
from tests.data.synthetic import panning_video, texture


def test_video_file_frames_indices_and_timestamps(tmp_path):
    path = panning_video(tmp_path / "clip.avi", 5, 48, 64)
    frames = list(read_frames(path))
    assert [f.index for f in frames] == [0, 1, 2, 3, 4]
    assert [f.timestamp for f in frames] == pytest.approx([0, 0.04, 0.08, 0.12, 0.16])
    assert all(f.image.shape == (48, 64, 3) and f.image.dtype == np.uint8 for f in frames)
    assert video_name(path) == "clip"


def test_frame_folder_in_natural_order(tmp_path):
    folder = tmp_path / "clip"
    folder.mkdir()
    for i in (1, 2, 10):
        cv2.imwrite(str(folder / f"{i}.png"), np.full((8, 10, 3), i, np.uint8))
    frames = list(read_frames(folder, fps=10))
    assert [int(f.image[0, 0, 0]) for f in frames] == [1, 2, 10]
    assert [f.timestamp for f in frames] == pytest.approx([0, 0.1, 0.2])
    assert list_videos(tmp_path) == [folder] and video_name(folder) == "clip"


def test_resize_policies():
    image = texture(360, 640)
    fixed = ResizePolicy.parse("fixed")
    assert fixed.apply(image).shape == (240, 320, 3)
    assert np.array_equal(fixed.apply(image), cv2.resize(image, (320, 240), interpolation=cv2.INTER_AREA))
    assert ResizePolicy.parse("fixed:48x64").apply(image).shape == (48, 64, 3)
    assert ResizePolicy.parse("fit:320").apply(image).shape == (180, 320, 3)       # aspect kept
    assert ResizePolicy.parse("fit:1000").apply(image) is image                     # never upscaled
    assert ResizePolicy.parse("native").apply(image) is image
    assert ResizePolicy.parse("fit:100").output_size(97, 131) == (74, 100)
    assert str(ResizePolicy.parse("FIXED:10x20")) == "fixed:10x20"
    for bad in ("fit", "fixed:0x5", "huge", "fit:-3"):
        with pytest.raises(DataError, match="resize policy"):
            ResizePolicy.parse(bad)


def test_unreadable_and_empty_inputs_name_the_file(tmp_path):
    garbage = tmp_path / "broken.mp4"
    garbage.write_bytes(b"\x00not a video" * 100)
    with pytest.raises(DataError, match="broken.mp4"):
        list(read_frames(garbage))
    empty = tmp_path / "empty.avi"
    empty.write_bytes(b"")
    with pytest.raises(DataError, match="empty.avi"):
        list(read_frames(empty))
    with pytest.raises(DataError, match="missing.avi: no such video file"):
        list(read_frames(tmp_path / "missing.avi"))
    folder = tmp_path / "frames"
    folder.mkdir()
    with pytest.raises(DataError, match="frames: no frames"):
        list(read_frames(folder))
    cv2.imwrite(str(folder / "0.png"), np.zeros((4, 4, 3), np.uint8))
    (folder / "1.png").write_bytes(b"garbage")
    with pytest.raises(DataError, match="1.png: cannot read the image"):
        list(read_frames(folder))
    with pytest.raises(DataError, match="no video files"):
        list_videos(tmp_path / "frames")
    cv2.imwrite(str(folder / "1.png"), np.zeros((4, 4), np.uint8))  # grey frames are fine
    cv2.imwrite(str(folder / "2.png"), np.zeros((5, 4, 3), np.uint8))
    with pytest.raises(DataError, match=r"2.png: 4×5 pixels, but the folder's first frame 0.png is 4×4"):
        list(read_frames(folder))


def test_resize_interpolation_follows_the_authors_script():
    image = np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    np.testing.assert_array_equal(ResizePolicy.parse("fit:32").apply(image), cv2.resize(image, (32, 24)))
    np.testing.assert_array_equal(ResizePolicy.parse("fixed:24x30").apply(image),
                                  cv2.resize(image, (30, 24), interpolation=cv2.INTER_AREA))
