"""Saliency maps for videos: processing as the authors did it, output writers, the pipeline.

The one-liner is `dynsal.saliency_maps(source, net=...)` (`saliency_maps` below, exported at the top level):

    >>> import dynsal
    >>> maps = dynsal.saliency_maps("clip.mp4", net="stsconv", weights="stsconvnet.caffemodel")
    >>> maps.shape, maps.dtype                     # one 8-bit map per frame, at the frame's size
    ((250, 272, 640), dtype('uint8'))
    >>> first = dynsal.saliency_maps(0, net="ssnet", weights="ssnet.caffemodel", end=25)   # 25 webcam frames
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Union

import numpy as np

from dynsal.errors import DynsalError
from dynsal.predict.predictor import Predictor


def saliency_maps(source: Union[str, int, Path], net: Optional[str] = "stsconv", weights: Optional[str] = None,
                  start: int = 0, end: Optional[int] = None, every: int = 1, **options) -> np.ndarray:
    """The saliency maps of one video file, frame folder, image, webcam (index) or stream URL.

    Args:
        source: e.g. "clip.mp4", "frames/", "still.png", 0 (the first webcam) or
            "rtsp://camera/live", "https://host/clip.mp4".
        net, weights: a zoo net and its caffemodel (default: the registered weights of `net`); or
            net=None with options prototxt=...
        start, end, every: the frames range(start, end, every); a stream is read until it ends or `end`.
        **options: the other arguments of `dynsal.Predictor` (engine, device, precision, resize, flow,
            post, batch, workers).

    Returns:
        F×H×W uint8 maps (0–255), one per selected frame, at the frames' size.

    Raises:
        DynsalError: a missing or unreadable source or weights file (named), or no frame selected.
    """
    predictor = Predictor(net, weights=weights, **options)
    maps = [p.saliency for p in predictor.predictions_of(source, start, end, every)]
    if not maps:
        raise DynsalError(f"{source}: no frame selected (check start/end/every)")
    return np.stack(maps)

