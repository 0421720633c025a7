"""Test nets for the torch engine: every supported layer with non-default parameters, and small
nets for BatchNorm's batch statistics and the zoo nets' losses."""
from __future__ import annotations

import numpy as np
from google.protobuf import text_format

from dynsal import zoo
from dynsal.caffe.netspec import L, NetSpec
from dynsal.caffe.schema import pb
from dynsal.caffe.upgrade import upgrade_net

# Shapes (N, C, H, W) noted after each layer; pooling windows are chosen so that Caffe's padding
# clip removes the last window (pool_max on both axes, pool_ave on W). In-place layers are those whose
# Caffe backward survives in-place use (ReLU, BatchNorm, Scale, Dropout); Caffe's Power and AbsVal
# read their overwritten input in backward, so they are not used in place here.
EVERY_LAYER = """
name: "every_layer"
force_backward: true
layer { name: "input" type: "Input" top: "data" top: "target1" top: "target2" top: "label" top: "label2"
  input_param { shape { dim: 2 dim: 4 dim: 11 dim: 13 } shape { dim: 2 dim: 720 }
                shape { dim: 2 dim: 12 dim: 10 dim: 6 } shape { dim: 2 dim: 1 dim: 10 dim: 6 } shape { dim: 2 } } }
layer { name: "conv_g" type: "Convolution" bottom: "data" top: "conv_g"
  convolution_param { num_output: 6 group: 2 kernel_h: 3 kernel_w: 2 stride_h: 1 stride_w: 2 pad_h: 1 pad_w: 1 } }
layer { name: "relu_g" type: "ReLU" bottom: "conv_g" top: "conv_g" relu_param { negative_slope: 0.1 } }
layer { name: "conv_d" type: "Convolution" bottom: "conv_g" top: "conv_d"
  convolution_param { num_output: 4 kernel_size: 3 dilation: 2 pad: 2 bias_term: false } }
layer { name: "prelu" type: "PReLU" bottom: "conv_d" top: "prelu" }
layer { name: "deconv_g" type: "Deconvolution" bottom: "prelu" top: "deconv_g"
  convolution_param { num_output: 6 group: 2 kernel_size: 3 stride: 2 pad: 1 } }
layer { name: "deconv_d" type: "Deconvolution" bottom: "prelu" top: "deconv_d"
  convolution_param { num_output: 6 kernel_size: 2 stride: 2 dilation: 2 pad: 1 } }
layer { name: "lrn_a" type: "LRN" bottom: "deconv_g" top: "lrn_a"
  lrn_param { local_size: 3 alpha: 0.5 beta: 0.6 k: 2 } }
layer { name: "lrn_w" type: "LRN" bottom: "deconv_d" top: "lrn_w"
  lrn_param { local_size: 3 alpha: 0.3 beta: 0.7 norm_region: WITHIN_CHANNEL } }
layer { name: "esum" type: "Eltwise" bottom: "lrn_a" bottom: "lrn_w" top: "esum"
  eltwise_param { operation: SUM coeff: 0.5 coeff: -1.5 } }
layer { name: "eprod" type: "Eltwise" bottom: "esum" bottom: "deconv_g" top: "eprod" eltwise_param { operation: PROD } }
layer { name: "emax" type: "Eltwise" bottom: "eprod" bottom: "lrn_w" bottom: "deconv_d" top: "emax"
  eltwise_param { operation: MAX } }
layer { name: "pool_max" type: "Pooling" bottom: "emax" top: "pool_max" top: "pool_mask"
  pooling_param { pool: MAX kernel_size: 2 stride: 2 pad: 1 } }
layer { name: "pool_ave" type: "Pooling" bottom: "emax" top: "pool_ave"
  pooling_param { pool: AVE kernel_h: 3 kernel_w: 2 stride_h: 2 stride_w: 3 pad_h: 1 pad_w: 1 } }
layer { name: "pool_floor" type: "Pooling" bottom: "emax" top: "pool_floor"
  pooling_param { pool: MAX kernel_size: 3 stride: 2 round_mode: FLOOR } }
layer { name: "pool_padded" type: "Pooling" bottom: "emax" top: "pool_padded" top: "pool_padded_mask"
  pooling_param { pool: MAX kernel_h: 3 kernel_w: 2 stride_h: 2 stride_w: 1 pad_h: 2 pad_w: 1 } }
layer { name: "pool_global" type: "Pooling" bottom: "pool_max" top: "pool_global"
  pooling_param { pool: AVE global_pooling: true } }
layer { name: "crop" type: "Crop" bottom: "pool_max" bottom: "pool_floor" top: "crop"
  crop_param { axis: 2 offset: 1 offset: 0 } }
layer { name: "concat" type: "Concat" bottom: "crop" bottom: "pool_floor" top: "concat" }
layer { name: "slice" type: "Slice" bottom: "concat" top: "s1" top: "s2" top: "s3"
  slice_param { axis: 1 slice_point: 3 slice_point: 7 } }
layer { name: "sig" type: "Sigmoid" bottom: "s1" top: "sig" }
layer { name: "bias" type: "Bias" bottom: "sig" top: "biased" }
layer { name: "tanh" type: "TanH" bottom: "s2" top: "tanh" }
layer { name: "bn" type: "BatchNorm" bottom: "tanh" top: "bn" batch_norm_param { eps: 0.001 } }
layer { name: "bn_scale" type: "Scale" bottom: "bn" top: "bn" scale_param { bias_term: true } }
layer { name: "abs" type: "AbsVal" bottom: "s3" top: "absv" }
layer { name: "pow" type: "Power" bottom: "absv" top: "pow" power_param { power: 2 scale: 0.5 shift: 1 } }
layer { name: "ip" type: "InnerProduct" bottom: "pool_global" top: "ip" inner_product_param { num_output: 5 } }
layer { name: "scale2" type: "Scale" bottom: "pow" bottom: "ip" top: "scaled" scale_param { axis: 0 } }
layer { name: "cat2" type: "Concat" bottom: "biased" bottom: "bn" bottom: "scaled" top: "cat2"
  concat_param { axis: 1 } }
layer { name: "drop" type: "Dropout" bottom: "cat2" top: "cat2" dropout_param { dropout_ratio: 0.3 } }
layer { name: "split" type: "Split" bottom: "cat2" top: "cat_a" top: "cat_b" top: "cat_c" }
layer { name: "reshape" type: "Reshape" bottom: "cat_a" top: "reshaped"
  reshape_param { shape { dim: 0 dim: -1 dim: 8 } } }
layer { name: "softmax" type: "Softmax" bottom: "reshaped" top: "softmax" softmax_param { axis: 2 } }
layer { name: "eucl" type: "EuclideanLoss" bottom: "softmax" bottom: "target1" top: "eucl" loss_weight: 0.7 }
layer { name: "sce" type: "SigmoidCrossEntropyLoss" bottom: "cat_b" bottom: "target2" top: "sce"
  loss_param { ignore_label: -1 } }
layer { name: "smx" type: "SoftmaxWithLoss" bottom: "cat_c" bottom: "label" top: "smx"
  loss_param { ignore_label: 3 } }
layer { name: "flat" type: "Flatten" bottom: "pool_ave" top: "flat" }
layer { name: "ip_t" type: "InnerProduct" bottom: "flat" top: "ip_t"
  inner_product_param { num_output: 7 transpose: true } }
layer { name: "smx2" type: "SoftmaxWithLoss" bottom: "ip_t" bottom: "label2" top: "smx2"
  loss_weight: 0.5 loss_param { normalize: false } }
"""


def every_layer_net():
    """The NetParameter of EVERY_LAYER (upgraded like a file read from disk)."""
    return upgrade_net(text_format.Parse(EVERY_LAYER, pb.NetParameter()))


def every_layer_inputs(seed: int):
    """Inputs for EVERY_LAYER: data, regression targets, sigmoid targets with ignored (−1) entries,
    class labels (some equal to the ignored label 3)."""
    rng = np.random.default_rng(seed)
    target2 = rng.uniform(0, 1, (2, 12, 10, 6))
    target2[rng.random(target2.shape) < 0.2] = -1
    return {"data": rng.standard_normal((2, 4, 11, 13)), "target1": rng.uniform(0, 0.2, (2, 720)),
            "target2": target2, "label": rng.integers(0, 12, (2, 1, 10, 6)).astype(float),
            "label2": rng.integers(0, 7, (2,)).astype(float)}


def batch_norm_train_net():
    """conv → BatchNorm (batch statistics: TRAIN phase) → Scale → EuclideanLoss."""
    n = NetSpec("bn_train")
    n.data, n.target = L.Input(ntop=2, shape=[dict(dim=[4, 3, 5, 6]), dict(dim=[4, 5, 5, 6])])
    n.conv = L.Convolution(n.data, num_output=5, kernel_size=3, pad=1, bias_term=False)  # a bias has 0 gradient
    n.bn = L.BatchNorm(n.conv, moving_average_fraction=0.9)
    n.scale = L.Scale(n.bn, bias_term=True)
    n.loss = L.EuclideanLoss(n.scale, n.target)
    net = n.to_proto()
    net.force_backward = True
    return net


def zoo_loss_net(name: str, shape):
    """A zoo deploy net plus an Input `label` (the deploy output's shape) and EuclideanLoss `loss`."""
    net = zoo.deploy(name, shape)
    net.force_backward = True
    label = net.layer.add(name="label_input", type="Input", top=["label"])
    label.input_param.shape.add(dim=[shape[0], 1, shape[2], shape[3]])
    net.layer.add(name="loss", type="EuclideanLoss", bottom=["deconv1", "label"], top=["loss"])
    return net


IMAGE_DATA_NET = """
name: "image_data"
force_backward: true
layer { name: "colour" type: "ImageData" top: "image" top: "label"
  transform_param { mean_value: 10 mean_value: 20 mean_value: 30 scale: 0.5 }
  image_data_param { source: "{root}/colour.txt" root_folder: "{root}/" batch_size: 2 } }
layer { name: "grey" type: "ImageData" top: "grey" top: "grey_label"
  transform_param { mean_value: 100 scale: 0.01 }
  image_data_param { source: "{root}/grey.txt" root_folder: "{root}/" batch_size: 2 is_color: false
                     new_height: 12 new_width: 18 } }
layer { name: "conv" type: "Convolution" bottom: "image" top: "conv"
  convolution_param { num_output: 4 kernel_size: 3 } }
layer { name: "relu" type: "ReLU" bottom: "conv" top: "conv" }
layer { name: "ip" type: "InnerProduct" bottom: "conv" top: "ip" inner_product_param { num_output: 5 } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "ip" bottom: "label" top: "loss" }
layer { name: "ip_grey" type: "InnerProduct" bottom: "grey" top: "ip_grey" inner_product_param { num_output: 5 } }
layer { name: "loss_grey" type: "SoftmaxWithLoss" bottom: "ip_grey" bottom: "grey_label" top: "loss_grey" }
"""


def write_images(folder, seed: int = 0) -> None:
    """Three 20×30 colour PNGs and list files colour.txt / grey.txt (labels 0–4) for IMAGE_DATA_NET."""
    import cv2

    rng = np.random.default_rng(seed)
    lines = []
    for i in range(3):
        cv2.imwrite(str(folder / f"img {i}.png"), rng.integers(0, 256, (20, 30, 3), dtype=np.uint8))
        lines.append(f"img {i}.png {int(rng.integers(0, 5))}")
    (folder / "colour.txt").write_text("\n".join(lines) + "\n")
    (folder / "grey.txt").write_text("\n".join(reversed(lines)) + "\n")


def image_data_net(root: str):
    """IMAGE_DATA_NET reading images and lists under `root`."""
    return upgrade_net(text_format.Parse(IMAGE_DATA_NET.replace("{root}", root), pb.NetParameter()))
