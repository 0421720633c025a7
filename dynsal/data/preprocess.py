"""What the nets see: one definition shared by dataset building and prediction (so a model sees
at inference exactly the inputs it was trained on).

- channel order: OpenCV's BGR images are given to the nets as RGB, C×H×W — the authors' script
  applies channel swap (2, 1, 0) before subtracting the mean; frames and flow images alike;
- values: (x − FRAME_MEAN[c]) · INPUT_SCALE with the zoo's constants (100, 110, 118) and 1/127.5,
  which is what Caffe's Data layer computes from the LMDBs (transform_param) and what the HDF5 files
  store; saliency maps: (m − MAP_MEAN) · MAP_SCALE = (m − 127) / 128.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from dynsal.zoo import FRAME_MEAN, INPUT_SCALE, MAP_MEAN, MAP_SCALE

_FRAME_MEAN = np.array(FRAME_MEAN, np.float32)[:, None, None]


def to_net_order(image: np.ndarray) -> np.ndarray:
    """BGR uint8 H×W×3 → RGB uint8 3×H×W (contiguous): the stored/fed channel order."""
    return np.ascontiguousarray(image[..., ::-1].transpose(2, 0, 1))


def preprocess_input(image: np.ndarray, out: Optional[np.ndarray] = None) -> np.ndarray:
    """uint8 3×H×W (RGB) → float32 (x − FRAME_MEAN[c])·INPUT_SCALE, as Caffe's transform computes it;
    written into `out` (float32 3×H×W, e.g. a row of a batch buffer) when given."""
    out = np.subtract(image, _FRAME_MEAN, out=out, dtype=np.float32)
    return np.multiply(out, np.float32(INPUT_SCALE), out=out)


def preprocess_map(saliency: np.ndarray) -> np.ndarray:
    """uint8 1×H×W → float32 (x − MAP_MEAN)·MAP_SCALE."""
    return (saliency.astype(np.float32) - np.float32(MAP_MEAN)) * np.float32(MAP_SCALE)


def net_input(image: np.ndarray) -> np.ndarray:
    """BGR uint8 H×W×3 (a frame or a flow image) → the float32 3×H×W array fed to `data1`/`data1_b`."""
    return preprocess_input(to_net_order(image))
