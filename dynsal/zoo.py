"""The networks of Bak et al. (2018) by name: deploy, train_val (LMDB / HDF5) and solver definitions.

Layer and blob names are those of the published weights (reference: seed-networks.md): inputs
`data1` (RGB frame) and `data1_b` (optical-flow image), streams `conv1..conv9` and
`conv1_b..conv9_b`, fusion `elt_fuse` (Eltwise MAX) or `concat` + `conv_fuse` (1×1 conv), output
`deconv1`. Deploy nets take 1×3×240×320 inputs (they are fully convolutional: any size runs).

Choices dynsal makes where the paper is silent (each a parameter):
- train_val inputs are preprocessed like the authors' inference script: (pixel − (100, 110, 118)) /
  127.5 per channel in the order the net sees them (RGB: the script swaps OpenCV's BGR), so the
  frames/flow LMDBs must store channels in that order; saliency maps (1 channel, uint8) are mapped
  to (map − 127) / 128, the inverse of the script's `×128 + 127` post-processing.
- data sources: `<data_root>/<split>_{frames,flows,maps}_lmdb` (three aligned LMDBs, D4) or
  `<data_root>/<split>_h5.txt` (HDF5 list with datasets data1, data1_b, label); split = train|val.
- fillers: xavier weights, zero biases, a bilinear (×4 upsampling) deconv1; lr_mult 1/2 and
  decay_mult 1/0 for weights/biases; Euclidean loss `loss` between deconv1 and `label`.
- solver: SGD, momentum 0.9, weight decay 5e-4, base_lr 1.3e-7 (Pan et al.'s SalNet deep net, whose
  loss is summed over pixels), step policy ×0.1 every 20k iterations, 60k iterations, batch 2.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, Optional, Tuple

from dynsal.caffe.io import write_text
from dynsal.caffe.netspec import L, NetSpec
from dynsal.caffe.schema import pb
from dynsal.errors import DynsalError

FRAME_MEAN = (100.0, 110.0, 118.0)
INPUT_SCALE = 0.0078431372549  # 1/127.5, as in the authors' script
MAP_MEAN, MAP_SCALE = 127.0, 1.0 / 128.0
DEPLOY_SHAPE = (1, 3, 240, 320)
TRAIN_BATCH = 2

#: (layer, num_output, kernel, pad) of one stream; pooling follows conv1 (after LRN) and conv2.
BACKBONE: Tuple[Tuple[str, int, int, int], ...] = (
    ("conv1", 96, 7, 3), ("conv2", 256, 5, 2), ("conv3", 512, 3, 1), ("conv4", 512, 5, 2),
    ("conv5", 512, 5, 2), ("conv6", 256, 7, 3), ("conv7", 128, 11, 5), ("conv8", 32, 11, 5),
    ("conv9", 1, 13, 6),
)
LEARNED = [dict(lr_mult=1, decay_mult=1), dict(lr_mult=2, decay_mult=0)]


@dataclass(frozen=True)
class ZooNet:
    """One network of the zoo: how to build its layers and what it reads."""

    name: str
    title: str
    two_stream: bool
    build: Callable  # (NetSpec, spatial Top, temporal Top or None) -> None; adds layers up to deconv1
    description: str
    #: what its first input (data1) reads: "frames" (RGB frames) or "flows" (optical-flow images); a two-stream
    #: net's second input (data1_b) reads flows
    first_input: str = "frames"

    @property
    def inputs_read(self) -> Tuple[str, ...]:
        """What each input blob (`input_names`) reads, in order: "frames" or "flows"."""
        return (self.first_input, "flows") if self.two_stream else (self.first_input,)


def conv_block(n: NetSpec, bottom, index: int, suffix: str = "", relu: bool = True):
    """conv<i><suffix> (+ in-place relu<i><suffix>, + norm1/pool1 after conv1, pool2 after conv2)."""
    name, num_output, kernel, pad = BACKBONE[index - 1]
    conv = L.Convolution(bottom, num_output=num_output, kernel_size=kernel, stride=1, pad=pad, param=LEARNED,
                         weight_filler=dict(type="xavier"), bias_filler=dict(type="constant", value=0))
    setattr(n, name + suffix, conv)
    top = getattr(n, name + suffix)
    if relu:
        setattr(n, f"relu{index}{suffix}", L.ReLU(top, in_place=True))
    if index == 1:
        setattr(n, f"norm1{suffix}", L.LRN(top, local_size=5, alpha=1e-4, beta=0.75))
        setattr(n, f"pool1{suffix}", L.Pooling(getattr(n, f"norm1{suffix}"), pool="MAX", kernel_size=3, stride=2))
        top = getattr(n, f"pool1{suffix}")
    elif index == 2:
        setattr(n, f"pool2{suffix}", L.Pooling(top, pool="MAX", kernel_size=3, stride=2))
        top = getattr(n, f"pool2{suffix}")
    return top


def stream(n: NetSpec, bottom, first: int, last: int, suffix: str = ""):
    """Layers conv<first>..conv<last> of one stream; conv9 has no ReLU."""
    top = bottom
    for index in range(first, last + 1):
        top = conv_block(n, top, index, suffix, relu=index != 9)
    return top


def deconv(n: NetSpec, bottom) -> None:
    """deconv1: 1 channel, kernel 8, stride 4, pad 2, no bias, bilinear ×4 initialisation."""
    n.deconv1 = L.Deconvolution(bottom, num_output=1, kernel_size=8, stride=4, pad=2, bias_term=False,
                                weight_filler=dict(type="bilinear"), param=[dict(lr_mult=1, decay_mult=1)])


def conv_fuse(n: NetSpec, a, b):
    """concat (axis 1) of two streams -> conv_fuse, a 1×1 conv to 512 channels without ReLU."""
    n.concat = L.Concat(a, b, axis=1)
    n.conv_fuse = L.Convolution(n.concat, num_output=512, kernel_size=1, stride=1, pad=0, param=LEARNED,
                                weight_filler=dict(type="xavier"), bias_filler=dict(type="constant", value=0))
    return n.conv_fuse


def _single(n, spatial, temporal):
    deconv(n, stream(n, spatial, 1, 9))


def _sts_max(n, spatial, temporal):
    n.elt_fuse = L.Eltwise(stream(n, spatial, 1, 5), stream(n, temporal, 1, 5, "_b"), operation="MAX")
    deconv(n, stream(n, n.elt_fuse, 6, 9))


def _sts_conv(n, spatial, temporal):
    fused = conv_fuse(n, stream(n, spatial, 1, 5), stream(n, temporal, 1, 5, "_b"))
    deconv(n, stream(n, fused, 6, 9))


def _early(n, spatial, temporal):
    fused = conv_fuse(n, stream(n, spatial, 1, 4), stream(n, temporal, 1, 4, "_b"))
    deconv(n, stream(n, fused, 5, 9))


def _late(n, spatial, temporal):
    n.elt_fuse = L.Eltwise(stream(n, spatial, 1, 9), stream(n, temporal, 1, 9, "_b"), operation="MAX")
    deconv(n, n.elt_fuse)


NETS: Dict[str, ZooNet] = {z.name: z for z in (
    ZooNet("ssnet", "SSNet", False, _single, "spatial stream: one RGB frame"),
    ZooNet("tsnet", "TSNet", False, _single, "temporal stream: one optical-flow image", first_input="flows"),
    ZooNet("stsmax", "STSMaxNet", True, _sts_max, "two streams fused by element-wise max after conv5"),
    ZooNet("stsconv", "STSConvNet", True, _sts_conv, "two streams fused by concat + 1×1 conv after conv5"),
    ZooNet("early", "EarlyFusion", True, _early, "two streams fused by concat + 1×1 conv after conv4"),
    ZooNet("late", "LateFusion", True, _late, "two full streams fused by element-wise max after conv9"),
)}


def get(name: str) -> ZooNet:
    """The zoo entry for a net name (ssnet, tsnet, stsmax, stsconv, early, late)."""
    try:
        return NETS[name]
    except KeyError:
        raise DynsalError(f"unknown net {name!r}; choose one of: {', '.join(NETS)}") from None


def name_of(net_param) -> Optional[str]:
    """The zoo name of a net definition titled as a zoo net with its inputs (e.g. "STSConvNet" → stsconv),
    else None."""
    for net in NETS.values():
        inputs = [top for layer in net_param.layer if layer.type == "Input" for top in layer.top]
        if net_param.name == net.title and tuple(inputs) == input_names(net):
            return net.name
    return None


def _build_streams(net: ZooNet, n: NetSpec) -> None:
    """Add the net's layers on top of the input blobs data1 [, data1_b] already in `n`."""
    net.build(n, n.data1, n.data1_b if net.two_stream else None)


def input_names(net: ZooNet) -> Tuple[str, ...]:
    return ("data1", "data1_b") if net.two_stream else ("data1",)


def deploy(name: str, shape: Tuple[int, int, int, int] = DEPLOY_SHAPE):
    """The deploy NetParameter: an Input layer named "input" (what Caffe makes of `input_dim`)."""
    net = get(name)
    n = NetSpec(net.title)
    names = input_names(net)
    tops = L.Input(name="input", ntop=len(names), shape=[dict(dim=list(shape))] * len(names))
    tops = tops if isinstance(tops, tuple) else (tops,)
    for blob, top in zip(names, tops):
        setattr(n, blob, top)
    _build_streams(net, n)
    return n.to_proto()


def _phase_rule(phase: str):
    return pb.NetStateRule(phase=pb.TRAIN if phase == "train" else pb.TEST)


def lmdb_layers(net: ZooNet, data_root: str, phase: str, batch: int):
    """Data layers (one per LMDB: frames, flows, maps) for one phase; split = train|val."""
    split = "train" if phase == "train" else "val"
    sources = list(zip(input_names(net), net.inputs_read)) + [("label", "maps")]
    layers = []
    for top, kind in sources:
        layer = pb.LayerParameter(name=f"{top}_{split}" if top != "label" else f"label_{split}", type="Data", top=[top])
        layer.include.add().CopyFrom(_phase_rule(phase))
        layer.data_param.source = f"{data_root}/{split}_{kind}_lmdb"
        layer.data_param.batch_size = batch
        layer.data_param.backend = pb.DataParameter.LMDB
        if top == "label":
            layer.transform_param.mean_value.append(MAP_MEAN)
            layer.transform_param.scale = MAP_SCALE
        else:
            layer.transform_param.mean_value.extend(FRAME_MEAN)
            layer.transform_param.scale = INPUT_SCALE
        layers.append(layer)
    return layers


def hdf5_layers(net: ZooNet, data_root: str, phase: str, batch: int):
    """One HDF5Data layer per phase with tops data1 [data1_b] label (preprocessed float32 data)."""
    split = "train" if phase == "train" else "val"
    layer = pb.LayerParameter(name=f"data_{split}", type="HDF5Data")
    layer.top.extend(list(input_names(net)) + ["label"])
    layer.include.add().CopyFrom(_phase_rule(phase))
    layer.hdf5_data_param.source = f"{data_root}/{split}_h5.txt"
    layer.hdf5_data_param.batch_size = batch
    return [layer]


def train_val(name: str, backend: str = "lmdb", data_root: str = "data", batch: int = TRAIN_BATCH):
    """The train_val NetParameter: phase-specific data layers, the net, Euclidean loss `loss`."""
    net = get(name)
    if backend not in ("lmdb", "hdf5"):
        raise DynsalError(f"unknown dataset backend {backend!r}; use lmdb or hdf5")
    n = NetSpec(net.title)
    make = lmdb_layers if backend == "lmdb" else hdf5_layers
    for phase in ("train", "test"):
        for layer in make(net, data_root, phase, batch):
            n.add_layer(layer)
    _build_streams(net, n)
    n.loss = L.EuclideanLoss(n.deconv1, n.label)
    return n.to_proto()


def solver(name: str, net_path: str, snapshot_prefix: str):
    """The solver SolverParameter for a train_val net file (see module docstring for the values)."""
    get(name)
    return pb.SolverParameter(
        net=net_path, test_iter=[100], test_interval=1000, base_lr=1.3e-7, lr_policy="step", gamma=0.1,
        stepsize=20000, display=20, average_loss=20, max_iter=60000, momentum=0.9, weight_decay=0.0005,
        snapshot=5000, snapshot_prefix=snapshot_prefix, type="SGD", solver_mode=pb.SolverParameter.GPU)


def files(name: str, folder: str = "prototxt") -> Dict[str, object]:
    """{file name: message} of every definition of one net, as checked in under `folder`."""
    return {
        f"{name}_deploy.prototxt": deploy(name),
        f"{name}_train_val_lmdb.prototxt": train_val(name, "lmdb"),
        f"{name}_train_val_hdf5.prototxt": train_val(name, "hdf5"),
        f"{name}_solver.prototxt": solver(name, f"{folder}/{name}_train_val_lmdb.prototxt", f"snapshots/{name}"),
    }


def write_all(folder: str | Path) -> list:
    """Write every net's definitions into `folder`; returns the written paths."""
    folder = Path(folder)
    written = []
    for name in NETS:
        for file_name, message in files(name, folder.name).items():
            write_text(message, folder / file_name)
            written.append(folder / file_name)
    return written
