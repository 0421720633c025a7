"""Which zoo net a caffemodel was made for, and which published weights another zoo net can start from.

Caffe copies trained layers by name (Net::CopyTrainedLayersFrom): a caffemodel fits every net whose
learnable layers it holds with the same shapes, and the file's other layers are ignored without a word.
So the published STSConvNet file runs as STSMaxNet (STSMaxNet's layers are STSConvNet's minus `conv_fuse`),
though it is not a trained STSMaxNet.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Tuple

from dynsal import zoo
from dynsal.caffe.caffemodel import match_weights
from dynsal.caffe.graph import build_graph
from dynsal.caffe.shapes import infer_shapes
from dynsal.weights.registry import WeightsEntry

Shape = Tuple[int, ...]


def zoo_param_shapes(net: str) -> Dict[str, List[Shape]]:
    """{layer: [blob shape, ...]} of a zoo net's deploy layers with learnable blobs."""
    _, params = infer_shapes(build_graph(zoo.deploy(net)))
    return {name: shapes for name, shapes in params.items() if shapes}


def weights_net(model, running: Optional[str] = None) -> Optional[str]:
    """The zoo net a caffemodel was made for: the one whose learnable layers are exactly the file's.

    Several zoo nets can share one layer set (SSNet and TSNet differ only in what they read): then the
    net being run when it is one of them, else the one whose title is the file's own net name, else None.
    None also for a file that is no zoo net's (e.g. a custom prototxt's).
    """
    fitting = [name for name in zoo.NETS if _fits_exactly(zoo_param_shapes(name), model)]
    if running in fitting or len(fitting) == 1:
        return running if running in fitting else fitting[0]
    titled = [name for name in fitting if zoo.get(name).title == model.name]
    return titled[0] if len(titled) == 1 else None


def _fits_exactly(param_shapes: Dict[str, List[Shape]], model) -> bool:
    """Every learnable layer of the net is in the file with fitting blobs, and the file has no other."""
    report = match_weights(param_shapes, model)
    return report.ok and not report.unused


def covering_weights(net: str, entries: List[WeightsEntry]) -> List[Tuple[WeightsEntry, List[str]]]:
    """The registered weights another zoo net's layers hold all of `net`'s layers of (same names and shapes),
    each with the layers of that file that `net` does not use, fewest unused first."""
    wanted = zoo_param_shapes(net)
    found = []
    for entry in entries:
        if entry.net == net:
            continue
        held = zoo_param_shapes(entry.net)
        if all(held.get(name) == shapes for name, shapes in wanted.items()):
            found.append((entry, sorted(set(held) - set(wanted))))
    return sorted(found, key=lambda pair: len(pair[1]))
