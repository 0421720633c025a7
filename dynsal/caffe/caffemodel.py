"""Matching a caffemodel's blobs to a net's layers, by layer name, as Net::CopyTrainedLayersFrom does.

- Layers are matched by name; caffemodel layers the net lacks are ignored (reported as unused).
- A matched layer must have the same number of blobs, even zero: Caffe aborts on a same-named
  caffemodel layer without blobs where the net has some ("Incompatible number of blobs").
- Shapes: a blob with a `shape` must equal the target exactly; a blob written with the legacy 4-D
  num/channels/height/width fields is compared with the target's last 4 axes padded with 1s in
  front (Blob::ShapeEquals), so a legacy 1×1×N×K InnerProduct weight fits an (N, K) target.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

from dynsal.caffe.blobs import LEGACY_FIELDS, array_to_blob, blob_shape, has_legacy_shape
from dynsal.errors import WeightsMismatchError

Shape = Tuple[int, ...]
_SHOWN_MISSING = 5


def legacy_4d(shape: Sequence[int]) -> Shape:
    """Blob::LegacyShape over axes -4..-1: the shape padded with 1s in front to 4 axes."""
    shape = tuple(shape)
    return (1,) * (4 - len(shape)) + shape if len(shape) <= 4 else shape


def blob_fits(blob, target: Sequence[int]) -> bool:
    """Blob::ShapeEquals: does a BlobProto fit a target shape (legacy rule included)?"""
    if has_legacy_shape(blob):
        if len(target) > 4:
            return False
        return tuple(getattr(blob, f) for f in LEGACY_FIELDS) == legacy_4d(target)
    return blob_shape(blob) == tuple(target)


@dataclass
class WeightsReport:
    """Result of matching a caffemodel against a net's learnable blobs."""

    matched: List[str] = field(default_factory=list)
    missing: List[str] = field(default_factory=list)  # net layers with params absent from the caffemodel
    unused: List[str] = field(default_factory=list)  # caffemodel layers with blobs the net does not have
    mismatched: List[str] = field(default_factory=list)  # one line per layer: what differs

    @property
    def ok(self) -> bool:
        return not self.missing and not self.mismatched

    def lines(self) -> List[str]:
        out = [f"layer {m}" for m in self.mismatched]
        out += [f"layer {name!r}: not in the caffemodel" for name in self.missing]
        return out

    def error(self, net_name: str, model_name: str, allow_missing: bool = False) -> Optional[WeightsMismatchError]:
        """The one-line error for weights that do not fit, naming both nets (None when they fit).

        Blob count/shape mismatches are listed per layer; missing layers (fatal unless `allow_missing`)
        are counted and the first few named, with the commands that start a net from another net's
        weights said once.
        """
        problems = [f"layer {m}" for m in self.mismatched]
        missing = [] if allow_missing else self.missing
        if missing:
            shown = ", ".join(missing[:_SHOWN_MISSING]) + (f" (+{len(missing) - _SHOWN_MISSING} more)"
                                                           if len(missing) > _SHOWN_MISSING else "")
            problems.append(f"layers with learnable blobs that the caffemodel lacks ({len(missing)}): {shown}")
        if not problems:
            return None
        text = (f"the caffemodel (net {model_name or '?'!r}) does not fit net {net_name or '?'!r}: "
                + "; ".join(problems))
        if missing and not self.mismatched:
            text += ("; to start from another net's weights: `dynsal train --weights` (missing layers keep their "
                     "fillers) or `dynsal init-weights` (two-stream nets from SSNet and TSNet)")
        return WeightsMismatchError(text)

    def check(self, net_name: str, model_name: str, allow_missing: bool = False) -> None:
        """Raise `error`'s WeightsMismatchError when the weights do not fit."""
        error = self.error(net_name, model_name, allow_missing)
        if error is not None:
            raise error


def match_weights(param_shapes: Dict[str, List[Shape]], model) -> WeightsReport:
    """Compare a net's learnable-blob shapes {layer: [shape, ...]} with a caffemodel NetParameter."""
    source = {layer.name: layer for layer in model.layer}
    report = WeightsReport()
    for name, shapes in param_shapes.items():
        if not shapes:
            continue
        layer = source.get(name)
        if layer is None:
            report.missing.append(name)
            continue
        if len(layer.blobs) != len(shapes):
            report.mismatched.append(f"{name!r}: the caffemodel has {len(layer.blobs)} blobs, the net expects "
                                     f"{len(shapes)}")
            continue
        bad = [f"blob {i}: caffemodel {_describe(blob)} vs net {tuple(shape)}"
               for i, (blob, shape) in enumerate(zip(layer.blobs, shapes)) if not blob_fits(blob, shape)]
        if bad:
            report.mismatched.append(f"{name!r}: " + "; ".join(bad))
        else:
            report.matched.append(name)
    report.unused = [name for name, layer in source.items()
                     if len(layer.blobs) and (name not in param_shapes or not param_shapes[name])]
    return report


def _describe(blob) -> str:
    shape = blob_shape(blob)
    return f"{shape} (legacy 4-D)" if has_legacy_shape(blob) else str(shape)


def attach_blobs(net, weights: Dict[str, List], diffs: Optional[Dict[str, List]] = None):
    """A copy of `net` with `layer.blobs` set from {layer name: [array, ...]} (a caffemodel to write),
    with `diffs` as each blob's `diff` when given (Net::ToProto with write_diff, `snapshot_diff`).

    Raises:
        WeightsMismatchError: a named layer is not in the net.
    """
    model = type(net)()
    model.CopyFrom(net)
    names = {layer.name for layer in model.layer}
    unknown = sorted(set(weights) - names)
    if unknown:
        raise WeightsMismatchError(f"weights for layers the net does not have: {', '.join(unknown)}")
    for layer in model.layer:
        if layer.name in weights:
            del layer.blobs[:]
            gradients = (diffs or {}).get(layer.name) or [None] * len(weights[layer.name])
            for array, diff in zip(weights[layer.name], gradients):
                array_to_blob(array, layer.blobs.add(), diff=diff)
    return model
