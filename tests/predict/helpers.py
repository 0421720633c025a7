"""Small test inputs for prediction: filler-initialised weights for zoo nets, videos and frames."""
from __future__ import annotations

from pathlib import Path

import cv2

from dynsal import zoo
from dynsal.engines import load_net
from tests.data.synthetic import panning_video

FRAME_SIZE = (60, 76)  # not multiples of 4: the maps must still come back at the frame's size


def zoo_weights(name: str, folder: Path, seed: int = 0) -> Path:
    """A caffemodel of `name` with the zoo's fillers (xavier, bilinear deconv), made by the torch engine."""
    path = folder / f"{name}.caffemodel"
    if not path.exists():
        load_net(zoo.deploy(name), None, engine="torch", seed=seed).save(path)
    return path


def make_inputs(folder: Path, frames: int = 5):
    """(video file, frame folder) of a panning texture."""
    video = panning_video(folder / "clip.avi", frames, *FRAME_SIZE)
    frame_dir = folder / "shots"
    frame_dir.mkdir()
    capture = cv2.VideoCapture(str(video))
    index = 0
    while True:
        ok, image = capture.read()
        if not ok:
            break
        cv2.imwrite(str(frame_dir / f"frame_{index:03d}.png"), image)
        index += 1
    return video, frame_dir
