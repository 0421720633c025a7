"""Find a dataset's videos and their ground truth: DIEM videos + event_data, or per-frame layouts."""
from __future__ import annotations

from pathlib import Path
from typing import List, Sequence, Union

from dynsal.data import gaze as G
from dynsal.data import ground_truth as GT
from dynsal.data.dataset import VideoSource
from dynsal.data.video import frame_files, list_videos, video_name
from dynsal.errors import DataError

PathLike = Union[str, Path]


def diem_sources(videos: Sequence[PathLike], gaze_dir: PathLike) -> List[VideoSource]:
    """VideoSources for video files / frame folders (or folders of them) with DIEM gaze in `gaze_dir`.

    Raises:
        DataError: a video without gaze files (naming the video and the folder searched).
    """
    paths: List[Path] = []
    for entry in map(Path, videos):
        if entry.is_dir():
            paths += [entry] if frame_files(entry) else list_videos(entry)
        elif entry.is_file():
            paths.append(entry)
        else:
            raise DataError(f"{entry}: no such video file or folder")
    names = [video_name(p) for p in paths]
    return [VideoSource(name, p, tuple(G.gaze_files(gaze_dir, name, names))) for name, p in zip(names, paths)]


def layout_sources(split_dir: PathLike) -> List[VideoSource]:
    """VideoSources for `<split_dir>/<video>/{images,maps}`."""
    return [VideoSource(v.name, Path(split_dir) / v.name / "images", layout=v) for v in GT.read_layout(split_dir)]
