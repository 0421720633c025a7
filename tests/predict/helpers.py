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
    """(MP4 video file, frame folder) of a panning texture (the frames are the MP4's decoded frames)."""
    source = panning_video(folder / "source.avi", frames, *FRAME_SIZE)
    video = folder / "clip.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 25.0, FRAME_SIZE[::-1])
    capture = cv2.VideoCapture(str(source))
    while True:
        ok, image = capture.read()
        if not ok:
            break
        writer.write(image)
    writer.release()
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
    assert index == frames, f"the MP4 decoded to {index} frames, expected {frames}"
    return video, frame_dir
