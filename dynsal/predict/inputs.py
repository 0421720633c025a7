"""What `dynsal predict` takes: video files, folders of frames, still images, globs, list files,
webcams and network streams.

Each input becomes a `PredictInput`: a name (the output folder), a kind ("video", "frames", "image"
or "stream") and a path (a stream's: its URL, or a webcam's index). A URL `rtsp://`, `rtmp://`,
`http://` or `https://` is a stream, named after its last path component (`.../clip.mp4` → `clip`);
a number that is no file is a webcam index (`0` → `webcam0`). `@list.txt` reads one input per line
(blank lines and #-comments skipped); glob patterns are expanded; a folder holding videos (and no
frames) stands for its videos. A frame folder called `images` (or `frames`, `img`, `imgs`) takes its
parent's name, so the `<video>/images/` folders of DHF1K-style layouts give `<out>/<video>/`. Names
come from the absolute path, so the input `.` is named after the current folder and `..` after its
parent.
"""
from __future__ import annotations

import glob
import os
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import List, Sequence, Union
from urllib.parse import urlparse

from dynsal.data.video import IMAGE_SUFFIXES, VIDEO_SUFFIXES, frame_files, list_videos, video_name
from dynsal.errors import DataError


@dataclass(frozen=True)
class PredictInput:
    name: str
    kind: str  # "video" | "frames" | "image" | "stream"
    path: Union[Path, str, int]  # a stream's URL or a webcam's index


STREAM_URL = re.compile(r"^(rtsp|rtsps|rtmp|http|https)://", re.IGNORECASE)


def stream_input(argument: str) -> Union[PredictInput, None]:
    """The stream an argument names (a URL, or a webcam index that is not a file), else None."""
    if STREAM_URL.match(argument):
        url = urlparse(argument)
        name = PurePosixPath(url.path).stem or url.hostname or "stream"
        return PredictInput(name, "stream", argument)
    if argument.isdigit() and not Path(argument).exists():
        return PredictInput(f"webcam{int(argument)}", "stream", int(argument))
    return None


#: frame folders with these names are named after their parent (`<video>/images` layouts: DHF1K, UCF-Sports)
GENERIC_FRAME_FOLDERS = ("images", "frames", "img", "imgs")


def _classify(path: Path) -> List[PredictInput]:
    if path.is_dir():
        if frame_files(path):
            named = Path(os.path.abspath(path))  # `.` and `..` by their real names; symbolic links by their own
            name = named.parent.name if named.name.lower() in GENERIC_FRAME_FOLDERS else video_name(named)
            return [PredictInput(name, "frames", path)]
        return [item for child in list_videos(path) for item in _classify(child)]
    suffix = path.suffix.lower()
    if suffix in IMAGE_SUFFIXES:
        return [PredictInput(path.stem, "image", path)]
    if suffix in VIDEO_SUFFIXES or path.exists():
        return [PredictInput(video_name(path), "video", path)]
    raise DataError(f"{path}: no such file or folder")


def _same_input(first, second) -> bool:
    """Whether two inputs' paths name the same file or folder (streams: the same URL or webcam)."""
    if isinstance(first, Path) and isinstance(second, Path):
        return first.resolve() == second.resolve()
    return first == second


def expand_inputs(arguments: Sequence[str]) -> List[PredictInput]:
    """The inputs named on the command line, in order, without duplicates.

    Raises:
        DataError: an argument matches nothing, or two inputs would share an output name.
    """
    entries: List[Union[Path, PredictInput]] = []
    for argument in arguments:
        stream = stream_input(argument)
        if stream is not None:
            entries.append(stream)
        elif argument.startswith("@"):
            listing = Path(argument[1:])
            if not listing.is_file():
                raise DataError(f"{listing}: list file not found")
            lines = [line.strip() for line in listing.read_text().splitlines()]
            entries += [Path(line) for line in lines if line and not line.startswith("#")]
        elif any(ch in argument for ch in "*?["):
            matches = sorted(glob.glob(argument))
            if not matches:
                raise DataError(f"{argument}: the pattern matches no file")
            entries += [Path(m) for m in matches]
        else:
            entries.append(Path(argument))
    inputs, names = [], {}
    for entry in entries:
        for item in [entry] if isinstance(entry, PredictInput) else _classify(entry):
            if item.name in names and not _same_input(names[item.name], item.path):
                raise DataError(f"{names[item.name]} and {item.path} would both write outputs named {item.name!r}; "
                                "rename one")
            if item.name not in names:
                names[item.name] = item.path
                inputs.append(item)
    return inputs
