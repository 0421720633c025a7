"""Blob and parameter shapes of a Caffe net, computed as each layer's Reshape/LayerSetUp does.

`SHAPE_RULES` is a registry keyed by the exact Caffe type string: each rule maps
(layer param, bottom shapes) -> (top shapes, learnable blob shapes). `infer_shapes(graph)` walks a
constructed net (`dynsal.caffe.graph.build_graph`). Data layers take their shapes from their
sources like Caffe does (first Datum of an LMDB, dataset shapes of the first HDF5 file), or from
`input_shapes` overrides.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Callable, Dict, List, Sequence, Tuple

from dynsal.caffe import hdf5_data
from dynsal.caffe.blobs import datum_to_array
from dynsal.caffe.pooling import pooled_shape, pooling_geometry
from dynsal.caffe.schema import pb
from dynsal.caffe.type_table import registrar
from dynsal.errors import FormatError, NetDefinitionError

Shape = Tuple[int, ...]
Rule = Callable[[object, List[Shape]], Tuple[List[Shape], List[Shape]]]
SHAPE_RULES: Dict[str, Rule] = {}


shape_rule = registrar(SHAPE_RULES)  # @shape_rule(*types): a shape rule for one or more Caffe layer types


def canonical_axis(axis: int, ndim: int, layer) -> int:
    """Blob::CanonicalAxisIndex: negative axes count from the end; out of range is an error."""
    if not -ndim <= axis < ndim:
        raise NetDefinitionError(f"layer {layer.name!r}: axis {axis} out of range for a {ndim}-D blob")
    return axis % ndim


def spatial_values(layer, param, name: str, default: int, n: int) -> List[int]:
    """ConvolutionParameter's repeated pad/kernel_size/stride/dilation or the _h/_w forms."""
    values = list(getattr(param, name if name != "kernel" else "kernel_size"))
    h_name, w_name = f"{name}_h", f"{name}_w"
    if h_name in param.DESCRIPTOR.fields_by_name and (param.HasField(h_name) or param.HasField(w_name)):
        if values:
            raise NetDefinitionError(f"layer {layer.name!r}: give either {name} or {h_name}/{w_name}, not both")
        if n != 2:
            raise NetDefinitionError(f"layer {layer.name!r}: {h_name}/{w_name} only work for 2-D convolution")
        return [getattr(param, h_name), getattr(param, w_name)]
    if not values:
        if name == "kernel":
            raise NetDefinitionError(f"layer {layer.name!r}: kernel_size (or kernel_h/kernel_w) is required")
        return [default] * n
    if len(values) == 1:
        return values * n
    if len(values) != n:
        raise NetDefinitionError(f"layer {layer.name!r}: {name} has {len(values)} values for {n} spatial axes")
    return values


def conv_geometry(layer, bottom: Shape):
    """(channel axis, kernel, stride, pad, dilation) of a Convolution/Deconvolution layer."""
    param = layer.convolution_param
    axis = canonical_axis(param.axis, len(bottom), layer)
    n = len(bottom) - axis - 1
    kernel = spatial_values(layer, param, "kernel", 0, n)
    stride = spatial_values(layer, param, "stride", 1, n)
    pad = spatial_values(layer, param, "pad", 0, n)
    dilation = list(param.dilation) or [1]
    dilation = dilation * n if len(dilation) == 1 else dilation
    return axis, kernel, stride, pad, dilation


def _conv_common(layer, bottoms, transposed: bool):
    param = layer.convolution_param
    axis, kernel, stride, pad, dilation = conv_geometry(layer, bottoms[0])
    channels, group, num_output = bottoms[0][axis], param.group, param.num_output
    if num_output == 0 or channels % group or num_output % group:
        raise NetDefinitionError(f"layer {layer.name!r}: num_output {num_output} and input channels {channels} "
                                 f"must be positive multiples of group {group}")
    tops = []
    for bottom in bottoms:
        spatial = []
        for i, size in enumerate(bottom[axis + 1:]):
            extent = dilation[i] * (kernel[i] - 1) + 1
            if transposed:
                spatial.append(stride[i] * (size - 1) + extent - 2 * pad[i])
            else:
                spatial.append((size + 2 * pad[i] - extent) // stride[i] + 1)
        if min(spatial) <= 0:
            raise NetDefinitionError(f"layer {layer.name!r}: input {bottom} is too small for this kernel")
        tops.append(tuple(bottom[:axis]) + (num_output,) + tuple(spatial))
    weight = (channels, num_output // group) if transposed else (num_output, channels // group)
    params = [weight + tuple(kernel)]
    if param.bias_term:
        params.append((num_output,))
    return tops, params


@shape_rule("Convolution")
def _convolution(layer, bottoms):
    return _conv_common(layer, bottoms, transposed=False)


@shape_rule("Deconvolution")
def _deconvolution(layer, bottoms):
    return _conv_common(layer, bottoms, transposed=True)


@shape_rule("Pooling")
def _pooling(layer, bottoms):
    bottom = bottoms[0]
    if len(bottom) != 4:
        raise NetDefinitionError(f"layer {layer.name!r}: Pooling needs a 4-D input, got {bottom}")
    kernel, stride, pad = pooling_geometry(layer, bottom)
    ceil_mode = layer.pooling_param.round_mode == pb.PoolingParameter.CEIL
    spatial = pooled_shape(bottom[2:], kernel, stride, pad, ceil_mode)
    if min(spatial) < 1:
        raise NetDefinitionError(f"layer {layer.name!r}: kernel {kernel} is larger than the padded input "
                                 f"{list(bottom[2:])} + 2·{pad}")
    tops = [bottom[:2] + spatial]
    if len(layer.top) > 1:  # MAX pooling's optional mask top
        tops.append(tops[0])
    return tops, []


@shape_rule("ReLU", "Sigmoid", "TanH", "Power", "AbsVal", "LRN", "Dropout", "BNLL", "Exp", "Log", "ELU",
            "Threshold", "Clip", "Swish", "MVN")
def _same_shape(layer, bottoms):
    return [bottoms[0]], []


@shape_rule("Softmax")
def _softmax(layer, bottoms):
    canonical_axis(layer.softmax_param.axis, len(bottoms[0]), layer)
    return [bottoms[0]], []


@shape_rule("PReLU")
def _prelu(layer, bottoms):
    channels = 1 if layer.prelu_param.channel_shared else bottoms[0][1]
    return [bottoms[0]], [(channels,)]


@shape_rule("BatchNorm")
def _batch_norm(layer, bottoms):
    channels = bottoms[0][1] if len(bottoms[0]) > 1 else 1
    return [bottoms[0]], [(channels,), (channels,), (1,)]


def _affine_shape(layer, bottoms, param) -> Shape:
    bottom = bottoms[0]
    if len(bottoms) > 1:
        return tuple(bottoms[1])
    axis = canonical_axis(param.axis, len(bottom), layer)
    end = len(bottom) if param.num_axes == -1 else axis + param.num_axes
    return tuple(bottom[axis:end])


@shape_rule("Scale")
def _scale(layer, bottoms):
    shape = _affine_shape(layer, bottoms, layer.scale_param)
    params = [] if len(bottoms) > 1 else [shape]
    if layer.scale_param.bias_term:
        params.append(shape)
    return [bottoms[0]], params


@shape_rule("Bias")
def _bias(layer, bottoms):
    shape = _affine_shape(layer, bottoms, layer.bias_param)
    return [bottoms[0]], [] if len(bottoms) > 1 else [shape]


@shape_rule("Eltwise")
def _eltwise(layer, bottoms):
    if any(b != bottoms[0] for b in bottoms):
        raise NetDefinitionError(f"layer {layer.name!r}: Eltwise inputs differ in shape: {bottoms}")
    return [bottoms[0]], []


@shape_rule("Concat")
def _concat(layer, bottoms):
    param = layer.concat_param
    axis = param.concat_dim if param.HasField("concat_dim") else param.axis
    axis = canonical_axis(axis, len(bottoms[0]), layer)
    for b in bottoms[1:]:
        if len(b) != len(bottoms[0]) or any(b[i] != bottoms[0][i] for i in range(len(b)) if i != axis):
            raise NetDefinitionError(f"layer {layer.name!r}: Concat inputs {bottoms} differ off axis {axis}")
    top = list(bottoms[0])
    top[axis] = sum(b[axis] for b in bottoms)
    return [tuple(top)], []


@shape_rule("Split")
def _split(layer, bottoms):
    return [bottoms[0]] * len(layer.top), []


@shape_rule("Slice")
def _slice(layer, bottoms):
    param, bottom = layer.slice_param, bottoms[0]
    axis = canonical_axis(param.slice_dim if param.HasField("slice_dim") else param.axis, len(bottom), layer)
    points = list(param.slice_point)
    if points:
        if len(points) != len(layer.top) - 1:
            raise NetDefinitionError(f"layer {layer.name!r}: {len(points)} slice points for {len(layer.top)} tops")
        bounds = [0] + points + [bottom[axis]]
        sizes = [b - a for a, b in zip(bounds, bounds[1:])]
    else:
        if bottom[axis] % len(layer.top):
            raise NetDefinitionError(f"layer {layer.name!r}: axis size {bottom[axis]} does not split evenly")
        sizes = [bottom[axis] // len(layer.top)] * len(layer.top)
    if any(s <= 0 for s in sizes):
        raise NetDefinitionError(f"layer {layer.name!r}: slice points {points} out of range for {bottom}")
    return [bottom[:axis] + (s,) + bottom[axis + 1:] for s in sizes], []


@shape_rule("Crop")
def _crop(layer, bottoms):
    bottom, ref = bottoms
    axis = canonical_axis(layer.crop_param.axis, len(bottom), layer)
    offsets = list(layer.crop_param.offset)
    n = len(bottom) - axis
    if offsets and len(offsets) not in (1, n):
        raise NetDefinitionError(f"layer {layer.name!r}: give 0, 1 or {n} crop offsets, got {len(offsets)}")
    offsets = offsets * n if len(offsets) == 1 else (offsets or [0] * n)
    top = tuple(bottom[:axis]) + tuple(ref[axis:])
    for i, off in enumerate(offsets):
        if off + ref[axis + i] > bottom[axis + i]:
            raise NetDefinitionError(f"layer {layer.name!r}: crop offset {off} + size {ref[axis + i]} "
                                     f"exceeds {bottom[axis + i]} on axis {axis + i}")
    return [top], []


@shape_rule("Flatten")
def _flatten(layer, bottoms):
    bottom = bottoms[0]
    start = canonical_axis(layer.flatten_param.axis, len(bottom), layer)
    end = canonical_axis(layer.flatten_param.end_axis, len(bottom), layer)
    return [bottom[:start] + (math.prod(bottom[start:end + 1]),) + bottom[end + 1:]], []


@shape_rule("Reshape")
def _reshape(layer, bottoms):
    bottom, param = bottoms[0], layer.reshape_param
    axis = param.axis if param.axis >= 0 else len(bottom) + param.axis + 1
    end = len(bottom) if param.num_axes == -1 else axis + param.num_axes
    dims = list(param.shape.dim)
    new = []
    for i, d in enumerate(dims):
        new.append(bottom[axis + i] if d == 0 else d)
    count = math.prod(bottom)
    known = math.prod(bottom[:axis]) * math.prod(bottom[end:]) * math.prod([d for d in new if d != -1])
    if new.count(-1) > 1 or (new.count(-1) == 0 and known != count) or count % max(known, 1):
        raise NetDefinitionError(f"layer {layer.name!r}: cannot reshape {bottom} to {dims}")
    new = [count // known if d == -1 else d for d in new]
    return [tuple(bottom[:axis]) + tuple(new) + tuple(bottom[end:])], []


@shape_rule("InnerProduct")
def _inner_product(layer, bottoms):
    param, bottom = layer.inner_product_param, bottoms[0]
    axis = canonical_axis(param.axis, len(bottom), layer)
    k = math.prod(bottom[axis:])
    weight = (k, param.num_output) if param.transpose else (param.num_output, k)
    params = [weight] + ([(param.num_output,)] if param.bias_term else [])
    return [tuple(bottom[:axis]) + (param.num_output,)], params


@shape_rule("EuclideanLoss", "SigmoidCrossEntropyLoss", "SoftmaxWithLoss", "MultinomialLogisticLoss",
            "InfogainLoss", "HingeLoss", "ContrastiveLoss")
def _loss(layer, bottoms):
    if layer.type == "EuclideanLoss" and math.prod(bottoms[0][1:]) != math.prod(bottoms[1][1:]):
        raise NetDefinitionError(f"layer {layer.name!r}: EuclideanLoss inputs {bottoms[0]} and {bottoms[1]} "
                                 "differ in size per item; give the label the prediction's size")
    tops = [()]
    if len(layer.top) > 1:  # SoftmaxWithLoss's optional probability top
        tops.append(bottoms[0])
    return tops, []


@shape_rule("Accuracy")
def _accuracy(layer, bottoms):
    tops = [()]
    if len(layer.top) > 1:
        tops.append((bottoms[0][canonical_axis(layer.accuracy_param.axis, len(bottoms[0]), layer)],))
    return tops, []


@shape_rule("Silence")
def _silence(layer, bottoms):
    return [], []


@shape_rule("Input")
def _input(layer, bottoms):
    shapes = [tuple(int(d) for d in s.dim) for s in layer.input_param.shape]
    if len(shapes) not in (1, len(layer.top)):
        raise NetDefinitionError(f"layer {layer.name!r}: {len(shapes)} input shapes for {len(layer.top)} tops")
    return (shapes * len(layer.top) if len(shapes) == 1 else shapes), []


@shape_rule("DummyData")
def _dummy_data(layer, bottoms):
    p = layer.dummy_data_param
    if len(p.shape):
        shapes = [tuple(int(d) for d in s.dim) for s in p.shape]
    else:
        shapes = [tuple(int(x) for x in dims) for dims in zip(p.num, p.channels, p.height, p.width)]
    return (shapes * len(layer.top) if len(shapes) == 1 else shapes), []


def _datum_chw(layer) -> Shape:
    """(C, H, W) of the first record of a Data layer's LMDB source (what DataLayerSetUp reads)."""
    source = layer.data_param.source
    if layer.data_param.backend != pb.DataParameter.LMDB:
        raise NetDefinitionError(f"layer {layer.name!r}: only LMDB sources can be read here; set backend: LMDB")
    try:
        import lmdb
    except ImportError:
        raise NetDefinitionError(f"layer {layer.name!r}: reading {source} needs the 'lmdb' package "
                                 "(pip install dynsal[data])") from None
    if not Path(source).exists():
        raise NetDefinitionError(f"layer {layer.name!r}: LMDB source {source} does not exist")
    with lmdb.open(source, readonly=True, lock=False) as env, env.begin() as txn:
        cursor = txn.cursor()
        if not cursor.first():
            raise FormatError(f"{source}: the LMDB is empty")
        datum = pb.Datum.FromString(cursor.value())
    if datum.encoded:
        raise NetDefinitionError(f"layer {layer.name!r}: encoded Datums are not sized here; pass input_shapes")
    return datum_to_array(datum).shape


@shape_rule("Data")
def _data(layer, bottoms):
    channels, height, width = _datum_chw(layer)
    crop = layer.transform_param.crop_size
    if crop:
        height = width = crop
    batch = layer.data_param.batch_size
    return [(batch, channels, height, width), (batch,)][:len(layer.top)], []


@shape_rule("HDF5Data")
def _hdf5_data(layer, bottoms):
    """(batch, ...) per top from the dataset shapes of the first listed file (HDF5DataLayer::LayerSetUp)."""
    source = layer.hdf5_data_param.source
    first = hdf5_data.list_files(source)[0]
    shapes = hdf5_data.top_shapes(first, source, list(layer.top))
    return [(layer.hdf5_data_param.batch_size,) + shapes[top][1:] for top in layer.top], []


def infer_shapes(graph, input_shapes: Dict[str, Sequence[int]] | None = None):
    """Top shapes of every blob and learnable-blob shapes of every layer of a constructed net.

    Args:
        graph: a `dynsal.caffe.graph.NetGraph`.
        input_shapes: optional {blob: shape} overriding what Input/Data layers declare
            (e.g. a deploy net run at another frame size).

    Returns:
        (blob shapes {name: shape}, param shapes {layer name: [shape, ...]}). In-place layers
        keep the blob's shape.

    Raises:
        NetDefinitionError: a layer type without a shape rule, or inconsistent shapes.
    """
    overrides = {k: tuple(int(d) for d in v) for k, v in (input_shapes or {}).items()}
    blob_shapes: Dict[str, Shape] = {}
    param_shapes: Dict[str, List[Shape]] = {}
    for glayer in graph.layers:
        layer = glayer.param
        if layer.bottom and not all(b in blob_shapes for b in layer.bottom):
            raise NetDefinitionError(f"layer {layer.name!r}: a bottom blob has no shape")
        if not layer.bottom and all(t in overrides for t in layer.top):
            tops, params = [overrides[t] for t in layer.top], []
        else:
            rule = SHAPE_RULES.get(layer.type)
            if rule is None:
                raise NetDefinitionError(f"layer {layer.name!r}: no shape rule for type {layer.type!r}; "
                                         f"known types: {', '.join(sorted(SHAPE_RULES))}")
            tops, params = rule(layer, [blob_shapes[b] for b in layer.bottom])
        for top, shape in zip(layer.top, tops):
            blob_shapes[top] = tuple(int(d) for d in shape)
        param_shapes[layer.name] = [tuple(int(d) for d in s) for s in params]
    return blob_shapes, param_shapes
