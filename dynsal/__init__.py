"""dynsal: the spatio-temporal saliency networks of Bak et al. (2018) on Caffe's files.

In Python, one call gives the maps of a video (file, frame folder, image, webcam index or stream URL):

    >>> import dynsal
    >>> maps = dynsal.saliency_maps("clip.mp4", net="stsconv")   # F×H×W uint8, one map per frame
    >>> maps.shape
    (250, 272, 640)

and a `Predictor` keeps one loaded net for many inputs:

    >>> predictor = dynsal.Predictor("stsconv", device="cuda")
    >>> for p in predictor.predictions_of("rtsp://camera/live", end=100):
    ...     print(p.name, p.saliency.max())

`import dynsal` stays light (no torch, no OpenCV, no network): `dynsal.Predictor`, `dynsal.saliency_maps`
and every submodule (`dynsal.metrics`, `dynsal.data.flow`, ...) load when first used, and the torch
engine imports torch only when a net is loaded.
"""
from __future__ import annotations

import importlib

from dynsal.errors import DynsalError
from dynsal.lazy import submodule_loader

__version__ = "0.1.0"
__all__ = ["DynsalError", "Predictor", "saliency_maps", "train", "__version__"]


_submodule = submodule_loader(__name__)


def __getattr__(name: str):
    """`dynsal.Predictor`, `dynsal.saliency_maps`, `dynsal.train` (`dynsal.trainer`), and every submodule
    (`dynsal.predict`, `dynsal.metrics`, ...), imported on first use (PEP 562, `dynsal.lazy`)."""
    if name == "Predictor":
        return importlib.import_module("dynsal.predict.predictor").Predictor
    if name == "saliency_maps":
        return importlib.import_module("dynsal.predict").saliency_maps
    if name == "train":
        return importlib.import_module("dynsal.trainer").train
    return _submodule(name)
