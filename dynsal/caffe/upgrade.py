"""Upgrades of old net and solver definitions, reproducing Caffe's `upgrade_proto.cpp`.

Net (UpgradeNetAsNeeded, in Caffe's order):
1. V0 nets (layers nested as `layers { layer { ... } }`) are refused: convert them with Caffe's
   `upgrade_net_proto_text` once; they predate every network dynsal serves.
2. Data upgrade: a V1 Data/ImageData/WindowData layer's deprecated scale/mean_file/crop_size/mirror
   move into `transform_param` (applied to all such layers once any needs it).
3. V1 -> V2: `layers` (enum types, blobs_lr, weight_decay, param names) become `layer` (string
   types, ParamSpec lr_mult/decay_mult/name/share_mode); a net with both is refused.
4. Legacy inputs (`input` + `input_shape` or 4 `input_dim` per input) become an `Input` layer
   named "input", inserted first.
5. BatchNorm layers that declare exactly 3 `param`s get lr_mult = decay_mult = 0.
Solver: the deprecated `solver_type` enum becomes the `type` string (both set is an error), and a
missing `snapshot_prefix` defaults to the solver file's path without extension (a prefix that is a
folder gets the solver file's stem appended).
"""
from __future__ import annotations

import os
from pathlib import Path

from dynsal.caffe.schema import pb
from dynsal.errors import FormatError

_V1 = pb.V1LayerParameter
#: V1 LayerType enum value -> V2 type string (UpgradeV1LayerType)
V1_TYPE_NAMES = {
    _V1.NONE: "", _V1.ABSVAL: "AbsVal", _V1.ACCURACY: "Accuracy", _V1.ARGMAX: "ArgMax", _V1.BNLL: "BNLL",
    _V1.CONCAT: "Concat", _V1.CONTRASTIVE_LOSS: "ContrastiveLoss", _V1.CONVOLUTION: "Convolution",
    _V1.DECONVOLUTION: "Deconvolution", _V1.DATA: "Data", _V1.DROPOUT: "Dropout",
    _V1.DUMMY_DATA: "DummyData", _V1.EUCLIDEAN_LOSS: "EuclideanLoss", _V1.ELTWISE: "Eltwise",
    _V1.EXP: "Exp", _V1.FLATTEN: "Flatten", _V1.HDF5_DATA: "HDF5Data", _V1.HDF5_OUTPUT: "HDF5Output",
    _V1.HINGE_LOSS: "HingeLoss", _V1.IM2COL: "Im2col", _V1.IMAGE_DATA: "ImageData",
    _V1.INFOGAIN_LOSS: "InfogainLoss", _V1.INNER_PRODUCT: "InnerProduct", _V1.LRN: "LRN",
    _V1.MEMORY_DATA: "MemoryData", _V1.MULTINOMIAL_LOGISTIC_LOSS: "MultinomialLogisticLoss",
    _V1.MVN: "MVN", _V1.POOLING: "Pooling", _V1.POWER: "Power", _V1.RELU: "ReLU", _V1.SIGMOID: "Sigmoid",
    _V1.SIGMOID_CROSS_ENTROPY_LOSS: "SigmoidCrossEntropyLoss", _V1.SILENCE: "Silence",
    _V1.SOFTMAX: "Softmax", _V1.SOFTMAX_LOSS: "SoftmaxWithLoss", _V1.SPLIT: "Split", _V1.SLICE: "Slice",
    _V1.TANH: "TanH", _V1.WINDOW_DATA: "WindowData", _V1.THRESHOLD: "Threshold",
}
#: deprecated SolverParameter.solver_type enum value -> `type` string (UpgradeSolverType)
SOLVER_TYPE_NAMES = {0: "SGD", 1: "Nesterov", 2: "AdaGrad", 3: "RMSProp", 4: "AdaDelta", 5: "Adam"}
_DATA_LAYERS = {_V1.DATA: "data_param", _V1.IMAGE_DATA: "image_data_param", _V1.WINDOW_DATA: "window_data_param"}
_TRANSFORM_FIELDS = ("scale", "mean_file", "crop_size", "mirror")
_V1_PARAM_FIELDS = [f.name for f in _V1.DESCRIPTOR.fields
                    if f.name.endswith("_param") and f.name in pb.LayerParameter.DESCRIPTOR.fields_by_name]


def upgrade_net(net, source: str = "net"):
    """Upgrade a NetParameter in place (see module docstring) and return it.

    Raises:
        FormatError: V0 layers, or both `layer` and `layers` present; names `source`.
    """
    if any(layer.HasField("layer") for layer in net.layers):
        raise FormatError(f"{source}: V0-format layers (nested 'layer {{}}' inside 'layers'); convert the "
                          "file once with Caffe's upgrade_net_proto_text")
    if _needs_data_upgrade(net):
        _upgrade_data_transformation(net)
    if len(net.layers):
        if len(net.layer):
            raise FormatError(f"{source}: has both 'layer' and deprecated 'layers' entries; use one format")
        _upgrade_v1_to_v2(net)
    if len(net.input):
        _upgrade_input(net)
    for layer in net.layer:
        if layer.type == "BatchNorm" and len(layer.param) == 3:
            for spec in layer.param:
                spec.lr_mult = 0.0
                spec.decay_mult = 0.0
    return net


def _needs_data_upgrade(net) -> bool:
    for layer in net.layers:
        field = _DATA_LAYERS.get(layer.type)
        if field and any(getattr(layer, field).HasField(f) for f in _TRANSFORM_FIELDS):
            return True
    return False


def _upgrade_data_transformation(net) -> None:
    for layer in net.layers:
        field = _DATA_LAYERS.get(layer.type)
        if not field:
            continue
        old = getattr(layer, field)
        old.SetInParent()
        layer.transform_param.SetInParent()
        for name in _TRANSFORM_FIELDS:
            if old.HasField(name):
                setattr(layer.transform_param, name, getattr(old, name))
                old.ClearField(name)


def _param_spec(layer, index: int):
    while len(layer.param) <= index:
        layer.param.add()
    return layer.param[index]


def _upgrade_v1_layer(old, new) -> None:
    new.bottom.extend(old.bottom)
    new.top.extend(old.top)
    if old.HasField("name"):
        new.name = old.name
    new.include.extend(old.include)
    new.exclude.extend(old.exclude)
    if old.HasField("type"):
        new.type = V1_TYPE_NAMES[old.type]
    new.blobs.extend(old.blobs)
    for name in old.param:
        new.param.add().name = name
    for i, mode in enumerate(old.blob_share_mode):
        _param_spec(new, i).share_mode = mode
    for i, lr in enumerate(old.blobs_lr):
        _param_spec(new, i).lr_mult = lr
    for i, decay in enumerate(old.weight_decay):
        _param_spec(new, i).decay_mult = decay
    new.loss_weight.extend(old.loss_weight)
    for field in _V1_PARAM_FIELDS:
        if old.HasField(field):
            getattr(new, field).CopyFrom(getattr(old, field))


def _upgrade_v1_to_v2(net) -> None:
    old_layers = list(net.layers)
    net.ClearField("layers")
    for old in old_layers:
        _upgrade_v1_layer(old, net.layer.add())


def _upgrade_input(net) -> None:
    has_shape, has_dim = len(net.input_shape) > 0, len(net.input_dim) > 0
    if has_shape or has_dim:
        layer = pb.LayerParameter(name="input", type="Input")
        layer.input_param.SetInParent()
        for i, name in enumerate(net.input):
            layer.top.append(name)
            if has_shape:
                layer.input_param.shape.add().CopyFrom(net.input_shape[i])
            else:
                layer.input_param.shape.add().dim.extend(net.input_dim[4 * i:4 * i + 4])
        layers = [layer] + list(net.layer)
        net.ClearField("layer")
        net.layer.extend(layers)
    for field in ("input", "input_shape", "input_dim"):
        net.ClearField(field)


def upgrade_solver(solver, source: str = "solver"):
    """Upgrade a SolverParameter in place: `solver_type` -> `type`, default `snapshot_prefix`.

    Args:
        solver: `pb.SolverParameter`.
        source: the solver file's path; used for the default snapshot prefix and in errors.

    Raises:
        FormatError: both `solver_type` and `type` are set.
    """
    if solver.HasField("solver_type"):
        if solver.HasField("type"):
            raise FormatError(f"{source}: sets both the deprecated 'solver_type' and 'type'; keep only 'type'")
        solver.type = SOLVER_TYPE_NAMES[solver.solver_type]
        solver.ClearField("solver_type")
    if not solver.HasField("snapshot_prefix"):
        solver.snapshot_prefix = os.path.splitext(source)[0]
    elif os.path.isdir(solver.snapshot_prefix):
        solver.snapshot_prefix = os.path.join(solver.snapshot_prefix, Path(source).stem)
    return solver
