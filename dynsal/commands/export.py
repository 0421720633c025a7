"""Export a Caffe net to ONNX (.onnx) or TorchScript (.pt) with Caffe's semantics.

The net runs in the TEST phase; its inputs and outputs keep their prototxt names. Shapes are the
prototxt's input shapes (or --shape), or with --dynamic any batch and spatial size, Caffe's size rules
computed in the graph. A layer that cannot be exported is refused by name. The caffemodel's settings
JSON (<weights>.json: resize, flow, post-processing) is copied beside the export, for `dynsal predict`.

Examples:
  dynsal export --net stsconv -o stsconv.onnx                     # the registered STSConvNet weights
  dynsal export --net stsmax --weights stsmax.caffemodel -o stsmax.pt --dynamic
  dynsal export deploy.prototxt weights.caffemodel -o net.onnx --opset 13 --precision fp16
  dynsal export deploy.prototxt weights.caffemodel -o net.onnx --shape data=1x3x480x640
  dynsal predict --weights stsconv.onnx clip.mp4                   # run the export (its net, precision, size)
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from dynsal import zoo
from dynsal.errors import DynsalError
from dynsal.export import DEFAULT_OPSET, FORMATS, PRECISIONS, export, max_opset
from dynsal.predict.predictor import MODEL_SETTINGS_SUFFIX, model_settings, resolve_weights


def _shape(text: str):
    name, sep, dims = text.partition("=")
    try:
        values = tuple(int(d) for d in dims.lower().split("x"))
    except ValueError:
        values = ()
    if not sep or not name or not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected NAME=DIMS such as data1=1x3x240x320, got {text!r}")
    return name, values


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("prototxt", nargs="?", help="net definition (deploy prototxt); or use --net")
    parser.add_argument("caffemodel", nargs="?", help="weights (default with --net: its registered weights; "
                        "without: fresh filler values)")
    parser.add_argument("--net", choices=sorted(zoo.NETS), help="a zoo net, with its registered weights")
    parser.add_argument("--weights", help="caffemodel for --net (instead of the registered weights)")
    parser.add_argument("-o", "--out", required=True,
                        help=f"output file: {' or '.join('*' + s for s in FORMATS)} (ONNX or TorchScript)")
    parser.add_argument("--opset", type=int, default=DEFAULT_OPSET,
                        help=f"ONNX opset, 13 to {max_opset()} (default {DEFAULT_OPSET})")
    parser.add_argument("--dynamic", action="store_true", help="any batch size and spatial size at run time")
    parser.add_argument("--precision", default="fp32", choices=PRECISIONS,
                        help="weights and arithmetic (inputs and outputs stay float32)")
    parser.add_argument("--shape", action="append", type=_shape, default=[], metavar="NAME=DIMS",
                        help="input shape replacing the prototxt's, e.g. data1=1x3x480x640 (repeatable)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output file")


def run(args: argparse.Namespace) -> int:
    if (args.net is None) == (args.prototxt is None):
        raise DynsalError("give a prototxt or --net NAME (not both)")
    if args.net:
        if args.caffemodel:
            raise DynsalError("with --net, give the caffemodel as --weights FILE")
        net, weights = zoo.deploy(args.net), resolve_weights(args.net, args.weights)
    else:
        net, weights = args.prototxt, (Path(args.caffemodel) if args.caffemodel else None)
    out = Path(args.out)
    saved = model_settings(Path(weights)) if weights else {}
    settings_out = Path(str(out) + MODEL_SETTINGS_SUFFIX)
    for path in (out, settings_out) if saved else (out,):
        if path.exists() and not args.overwrite:
            raise DynsalError(f"{path} exists; pass --overwrite to replace it")
    result = export(net, weights, out, input_shapes=dict(args.shape) or None, dynamic=args.dynamic,
                    opset=args.opset, precision=args.precision, overwrite=args.overwrite)
    print("\n".join(result.lines()))
    if saved:
        settings_out.write_text(json.dumps(saved, indent=2) + "\n")
        print(f"  settings: {settings_out} (the caffemodel's {MODEL_SETTINGS_SUFFIX}, for dynsal predict)")
    return 0
