#!/usr/bin/env python3
"""A gallery strip made by dynsal: frame | flow image | predicted map | overlay, for one frame of a video.

Example:
  python scripts/make_gallery.py --net stsconv --weights stsconvnet.caffemodel clip.mp4 --frame 40 -o gallery.png
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import _checkout  # noqa: F401  (this checkout's dynsal before any installed one)
import cv2
import numpy as np

from dynsal.data.flow import flow_pair
from dynsal.predict.inputs import expand_inputs
from dynsal.predict.outputs import heat_overlay
from dynsal.predict.predictor import FrameRange, Predictor

LABELS = ("frame", "flow image", "saliency map", "overlay")


def panel(image: np.ndarray, label: str, scale: int) -> np.ndarray:
    image = image if image.ndim == 3 else cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    big = cv2.resize(image, (image.shape[1] * scale, image.shape[0] * scale), interpolation=cv2.INTER_NEAREST)
    bar = np.full((22, big.shape[1], 3), 255, np.uint8)
    cv2.putText(bar, label, (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    return np.concatenate([big, bar], axis=0)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("video", help="a video file or frame folder")
    parser.add_argument("--net", default="stsconv")
    parser.add_argument("--weights", required=True)
    parser.add_argument("--frame", type=int, default=1, help="0-based frame index (≥ 1: the flow needs t−1)")
    parser.add_argument("--resize", default="fit:512")
    parser.add_argument("--scale", type=int, default=1, help="enlarge small frames by this factor")
    parser.add_argument("-o", "--output", required=True)
    args = parser.parse_args(argv)
    item = expand_inputs([args.video])[0]
    predictor = Predictor(args.net, None, args.weights, engine="torch", resize=args.resize)
    frames, _ = predictor.frames_of(item)
    frames = [image for _, image in frames]
    first, second = flow_pair(args.frame, len(frames))
    small = [predictor.resize.apply(frames[i]) for i in (first, second)]
    flow_image = predictor.flow.image(predictor.flow.flow(*small))
    prediction = next(predictor.predict_frames(((str(t), f) for t, f in enumerate(frames)),
                                               FrameRange(args.frame, args.frame + 1)))
    frame = prediction.frame
    flow_image = cv2.resize(flow_image, (frame.shape[1], frame.shape[0]), interpolation=cv2.INTER_NEAREST)
    panels = [frame, flow_image, prediction.saliency, heat_overlay(frame, prediction.saliency)]
    strip = np.concatenate([panel(p, label, args.scale) for p, label in zip(panels, LABELS)], axis=1)
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(args.output, strip)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
