"""A net for dynamic-shape exports: every layer whose output size follows the input's, with the
size rules that must stay computed at sizes the export never saw (pooling's ceil-and-clip, AVE pool
sizes clipped at in + pad, padding wider than the kernel, Crop to another blob, Reshape around free
axes), plus the other layers and the losses at free batch and spatial sizes."""
from __future__ import annotations

import numpy as np
from google.protobuf import text_format

from dynsal.caffe.schema import pb
from dynsal.caffe.upgrade import upgrade_net

DYNAMIC_LAYERS = """
name: "dynamic_layers"
layer { name: "input" type: "Input" top: "data" top: "label" top: "classes"
  input_param { shape { dim: 2 dim: 3 dim: 23 dim: 29 } shape { dim: 2 dim: 1 dim: 23 dim: 29 }
                shape { dim: 2 dim: 1 dim: 23 dim: 29 } } }
layer { name: "conv" type: "Convolution" bottom: "data" top: "conv"
  convolution_param { num_output: 4 kernel_size: 3 pad: 1 } }
layer { name: "relu" type: "ReLU" bottom: "conv" top: "conv" relu_param { negative_slope: 0.05 } }
layer { name: "pool_ceil" type: "Pooling" bottom: "conv" top: "pool_ceil" top: "pool_mask"
  pooling_param { pool: MAX kernel_size: 3 stride: 2 pad: 1 } }
layer { name: "pool_ave" type: "Pooling" bottom: "conv" top: "pool_ave"
  pooling_param { pool: AVE kernel_size: 3 stride: 2 pad: 1 } }
layer { name: "pool_floor" type: "Pooling" bottom: "conv" top: "pool_floor"
  pooling_param { pool: AVE kernel_size: 3 stride: 2 pad: 1 round_mode: FLOOR } }
layer { name: "pool_wide" type: "Pooling" bottom: "conv" top: "pool_wide" top: "pool_wide_mask"
  pooling_param { pool: MAX kernel_h: 2 kernel_w: 3 stride_h: 3 stride_w: 4 pad_h: 1 pad_w: 2 } }
layer { name: "pool_wide_ave" type: "Pooling" bottom: "conv" top: "pool_wide_ave"
  pooling_param { pool: AVE kernel_h: 2 kernel_w: 3 stride_h: 3 stride_w: 4 pad_h: 1 pad_w: 2 } }
layer { name: "pool_nopad" type: "Pooling" bottom: "conv" top: "pool_nopad"
  pooling_param { pool: AVE kernel_size: 3 stride: 2 } }
layer { name: "pool_one_side" type: "Pooling" bottom: "conv" top: "pool_one_side" top: "pool_one_side_mask"
  pooling_param { pool: MAX kernel_h: 1 kernel_w: 3 stride_h: 3 stride_w: 2 pad_h: 0 pad_w: 1 } }
layer { name: "deconv" type: "Deconvolution" bottom: "pool_ceil" top: "deconv"
  convolution_param { num_output: 4 group: 2 kernel_size: 4 stride: 2 pad: 1 } }
layer { name: "crop" type: "Crop" bottom: "deconv" bottom: "conv" top: "crop" crop_param { axis: 2 offset: 1 } }
layer { name: "lrn_a" type: "LRN" bottom: "crop" top: "lrn_a" lrn_param { local_size: 3 alpha: 0.5 beta: 0.6 k: 2 } }
layer { name: "lrn_w" type: "LRN" bottom: "pool_ave" top: "lrn_w"
  lrn_param { local_size: 3 alpha: 0.3 beta: 0.7 norm_region: WITHIN_CHANNEL } }
layer { name: "esum" type: "Eltwise" bottom: "lrn_a" bottom: "conv" top: "esum"
  eltwise_param { operation: SUM coeff: 0.5 coeff: -1.5 } }
layer { name: "eprod" type: "Eltwise" bottom: "esum" bottom: "crop" top: "eprod" eltwise_param { operation: PROD } }
layer { name: "emax" type: "Eltwise" bottom: "eprod" bottom: "conv" bottom: "esum" top: "emax"
  eltwise_param { operation: MAX } }
layer { name: "concat" type: "Concat" bottom: "emax" bottom: "crop" top: "concat" }
layer { name: "slice" type: "Slice" bottom: "concat" top: "s1" top: "s2" slice_param { axis: 1 slice_point: 3 } }
layer { name: "bn" type: "BatchNorm" bottom: "s1" top: "bn" batch_norm_param { eps: 0.001 } }
layer { name: "bn_scale" type: "Scale" bottom: "bn" top: "bn" scale_param { bias_term: true } }
layer { name: "prelu" type: "PReLU" bottom: "s2" top: "prelu" }
layer { name: "pow" type: "Power" bottom: "prelu" top: "pow" power_param { power: 2 scale: 0.5 shift: 1 } }
layer { name: "sig" type: "Sigmoid" bottom: "pow" top: "sig" }
layer { name: "cat2" type: "Concat" bottom: "bn" bottom: "sig" top: "cat2" }
layer { name: "tanh" type: "TanH" bottom: "cat2" top: "cat2" }
layer { name: "drop" type: "Dropout" bottom: "cat2" top: "cat2" }
layer { name: "reshape" type: "Reshape" bottom: "cat2" top: "reshaped"
  reshape_param { shape { dim: 2 dim: -1 } axis: 1 num_axes: 1 } }
layer { name: "softmax" type: "Softmax" bottom: "reshaped" top: "softmax" softmax_param { axis: 2 } }
layer { name: "flatten" type: "Flatten" bottom: "softmax" top: "flat" flatten_param { axis: 1 end_axis: 2 } }
layer { name: "abs" type: "AbsVal" bottom: "flat" top: "absv" }
layer { name: "pool_global" type: "Pooling" bottom: "cat2" top: "pool_global"
  pooling_param { pool: MAX global_pooling: true } }
layer { name: "gflat" type: "Flatten" bottom: "pool_global" top: "gflat" }
layer { name: "scale_by" type: "Scale" bottom: "absv" bottom: "gflat" top: "scaled" scale_param { axis: 0 } }
layer { name: "bias" type: "Bias" bottom: "scaled" top: "biased" }
layer { name: "head" type: "Convolution" bottom: "biased" top: "head"
  convolution_param { num_output: 3 kernel_size: 1 } }
layer { name: "slice_head" type: "Slice" bottom: "head" top: "pred" top: "logits"
  slice_param { axis: 1 slice_point: 1 } }
layer { name: "split" type: "Split" bottom: "pred" top: "pred_a" top: "pred_b" }
layer { name: "eucl" type: "EuclideanLoss" bottom: "pred_a" bottom: "label" top: "eucl" loss_weight: 0.7 }
layer { name: "sce" type: "SigmoidCrossEntropyLoss" bottom: "pred_b" bottom: "label" top: "sce"
  loss_param { ignore_label: -1 normalization: VALID } }
layer { name: "smx" type: "SoftmaxWithLoss" bottom: "logits" bottom: "classes" top: "smx"
  loss_param { ignore_label: 1 } }
"""
SIZES = ((23, 29), (9, 10), (16, 19), (31, 24))  # the first is the prototxt's; the others end pooling windows
                                                  # every way (clip or not, partial AVE windows)


def dynamic_layers_net():
    """The NetParameter of DYNAMIC_LAYERS (upgraded like a file read from disk)."""
    return upgrade_net(text_format.Parse(DYNAMIC_LAYERS, pb.NetParameter()))


def dynamic_layers_inputs(seed: int, batch: int, hw) -> dict:
    """data, a label in [0, 1] with ignored (−1) entries, classes 0/1 (1 is ignored by smx)."""
    rng = np.random.default_rng(seed)
    label = rng.uniform(0, 1, (batch, 1) + tuple(hw))
    label[rng.random(label.shape) < 0.2] = -1
    return {"data": rng.standard_normal((batch, 3) + tuple(hw)).astype(np.float32),
            "label": label.astype(np.float32),
            "classes": rng.integers(0, 2, (batch, 1) + tuple(hw)).astype(np.float32)}
