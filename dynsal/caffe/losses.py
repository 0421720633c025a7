"""Caffe's loss-layer settings shared by every engine and the exporter (LossLayer, loss_layer.cpp)."""
from __future__ import annotations

from dynsal.caffe.schema import pb

MODES = pb.LossParameter


def normalization_mode(loss_param, default: int) -> int:
    """The NormalizationMode a loss layer uses: `normalization`, else the deprecated `normalize`
    (true: VALID, false: BATCH_SIZE), else the layer type's `default`."""
    if loss_param.HasField("normalization"):
        return loss_param.normalization
    if loss_param.HasField("normalize"):
        return MODES.VALID if loss_param.normalize else MODES.BATCH_SIZE
    return default
