"""Defect 3: one gaze line must not take all memory. Frame numbers are checked against sane limits and the
video before any per-frame list is sized from them; every probe runs under a memory limit (a regression is
a MemoryError in the subprocess, not the machine's OOM killer)."""
from __future__ import annotations

import os
from pathlib import Path

import cv2
import pytest

from tests.data.synthetic import diem_row, panning_video, steady_gaze, write_gaze
from tests.reliability.faults import changed, run_dynsal, tree

LIMIT = 1536 << 20
VIDEO = "clip_64x48"


def _dataset(tmp_path: Path, frame_folder: bool = False) -> Path:
    """A 6-frame video (file or frame folder) with three observers' gaze in tmp_path/inputs."""
    inputs = tmp_path / "inputs"
    (inputs / "video").mkdir(parents=True)
    video = panning_video(inputs / "video" / f"{VIDEO}.avi", 6, 48, 64)
    if frame_folder:
        folder = inputs / "video" / VIDEO
        folder.mkdir()
        capture = cv2.VideoCapture(str(video))
        for index in range(6):
            cv2.imwrite(str(folder / f"{index:04d}.png"), capture.read()[1])
        capture.release()
        video.unlink()
    steady_gaze(inputs / "gaze", VIDEO, 6, (64, 48))
    return inputs


def _make_lmdb(tmp_path: Path, inputs: Path):
    before = tree(tmp_path)
    result = run_dynsal(["make-lmdb", "--videos", inputs / "video", "--gaze", inputs / "gaze", "-o", tmp_path / "out",
                         "--resize", "fixed:24x32", "--sigma", "5px", "--no-progress", "--keep-empty"],
                        memory_bytes=LIMIT)
    assert result.returncode == 1, result.stdout + result.stderr
    assert changed(before, tree(tmp_path)) == []  # nothing written, the output folder not even made
    return result.error_line()


@pytest.mark.parametrize("frame, message", [
    ("1e300", "frame '1e300' is not a whole number from 1 to 10,000,000"),
    ("20000000", "frame '20000000' is not a whole number from 1 to 10,000,000"),
    ("nan", "frame 'nan' is not a whole number"),
    ("inf", "frame 'inf' is not a whole number"),
    ("-inf", "frame '-inf' is not a whole number"),
    ("2.5", "frame '2.5' is not a whole number"),
])
def test_absurd_frame_numbers_are_one_line_naming_file_and_line(tmp_path, frame, message):
    """1e300 made make-lmdb grow to 22 GB; 20000000 was a MemoryError traceback; NaN/inf tracebacks. The
    video here cannot be opened (an empty file), so only dynsal's own limit applies."""
    inputs = _dataset(tmp_path)
    (inputs / "video" / f"{VIDEO}.avi").write_bytes(b"")
    row = diem_row(1, (640, 480, 1), (640, 480, 1))
    gaze = write_gaze(inputs / "gaze", VIDEO, "diem9s", [row, frame + row[1:]])
    line = _make_lmdb(tmp_path, inputs)
    assert line.startswith(f"dynsal make-lmdb: error: {gaze}:2: {message}"), line


@pytest.mark.parametrize("frame, frame_folder, message", [
    ("20000000", False, "from 1 to 31 ({video} declares 6 frames); is this the gaze of another video"),
    ("32", False, "from 1 to 31 ({video} declares 6 frames)"),
    ("7", True, "from 1 to 6 ({video} has 6 frames); is this the gaze of another video"),
])
def test_frames_past_the_video_are_refused_before_anything_is_sized(tmp_path, frame, frame_folder, message):
    """Against the video: a frame folder's exact count; a video file's declared count + 5 % + 25 (containers may
    estimate it; the exact count is checked after decoding)."""
    inputs = _dataset(tmp_path, frame_folder)
    video = inputs / "video" / (VIDEO if frame_folder else f"{VIDEO}.avi")
    gaze = write_gaze(inputs / "gaze", VIDEO, "diem9s", [diem_row(int(frame), (640, 480, 1), (640, 480, 1))])
    line = _make_lmdb(tmp_path, inputs)
    assert line.startswith(f"dynsal make-lmdb: error: {gaze}:1: frame '{frame}' is not a whole number ")
    assert message.format(video=video) in line, line


def test_frames_within_the_margin_but_past_the_decoded_end(tmp_path):
    """A row inside the declared count's margin but past the frames that decode: the existing exact check."""
    inputs = _dataset(tmp_path)
    gaze = write_gaze(inputs / "gaze", VIDEO, "diem9s", [diem_row(9, (640, 480, 1), (640, 480, 1))])
    result = run_dynsal(["make-lmdb", "--videos", inputs / "video", "--gaze", inputs / "gaze", "-o", tmp_path / "out",
                         "--resize", "fixed:24x32", "--sigma", "5px", "--no-progress"], memory_bytes=LIMIT)
    assert result.returncode == 1
    assert result.error_line().endswith(f"{gaze}: gaze rows go up to frame 9 but the video {inputs / 'video' / VIDEO}"
                                        ".avi has 6 frames; is this the gaze of another video, or a truncated video?")
    assert not (tmp_path / "out" / "train_lmdb_manifest.json").exists()


@pytest.mark.parametrize("content", [os.urandom(4096), b"1 2 3 4 5 6 7 8 9\n\x00\xff\xfe binary"])
def test_binary_gaze_files_are_one_line(tmp_path, content):
    inputs = _dataset(tmp_path)
    gaze = next((inputs / "gaze").iterdir())
    gaze.write_bytes(content)
    assert _make_lmdb(tmp_path, inputs) == (f"dynsal make-lmdb: error: {gaze}: binary content, not a DIEM gaze file "
                                            "(text rows of nine numbers)")


def test_huge_gaze_files_are_refused_unread(tmp_path):
    inputs = _dataset(tmp_path)
    gaze = next((inputs / "gaze").iterdir())
    with open(gaze, "r+b") as handle:  # a sparse 300 MB file: no disk used, nothing read
        handle.truncate(300 << 20)
    assert "314,572,800 bytes; a DIEM gaze file has one short line per frame" in _make_lmdb(tmp_path, inputs)


def test_a_sound_build_fits_the_memory_limit(tmp_path):
    """The control: with sound gaze the same build (and its ground truth) runs under the limit."""
    inputs = _dataset(tmp_path)
    result = run_dynsal(["make-lmdb", "--videos", inputs / "video", "--gaze", inputs / "gaze", "-o", tmp_path / "out",
                         "--resize", "fixed:24x32", "--sigma", "5px", "--no-progress", "--keep-empty",
                         "--save-ground-truth", tmp_path / "gt"], memory_bytes=LIMIT)
    assert result.returncode == 0, result.stderr
    assert len(list((tmp_path / "gt" / VIDEO / "maps").iterdir())) == 6
