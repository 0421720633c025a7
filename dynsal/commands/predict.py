"""Saliency maps for videos, folders of frames and still images with the networks of Bak et al.

Outputs per input NAME (under -o, default ./saliency): NAME/<frame>.png (8-bit maps named like the
input frames; 000000.png ... for video files), NAME/settings.json (everything that determined the
maps), NAME_overlay.mp4 (heat map on the frames), and on request NAME/maps.npz (float maps) and
NAME_side_by_side.mp4. Complete inputs are skipped unless --overwrite; an unreadable input is
reported and the others still run (exit status 1 at the end).

Examples:
  dynsal predict --net stsconv clip.mp4                       # the published STSConvNet weights
  dynsal predict --net stsmax --weights stsmax.caffemodel videos/*.mp4 -o out --batch 8 --device cuda
  dynsal predict --prototxt my_deploy.prototxt --weights my.caffemodel frames_folder/ --npz --side-by-side
  dynsal predict --net stsconv @videos.txt -o out --shard 1/4      # the 2nd of 4 processes sharing a list
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from dynsal.commands import parse_parameter, parse_shard
from dynsal.data.flow import FlowSettings
from dynsal.errors import DynsalError
from dynsal.predict.inputs import expand_inputs
from dynsal.predict.outputs import is_complete
from dynsal.predict.postprocess import Postprocessing
from dynsal.predict.predictor import FrameRange, OutputOptions, Predictor, model_settings, resolve_weights
from dynsal.zoo import NETS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="+", help="video files, frame folders, images, globs or @list.txt")
    parser.add_argument("--net", choices=sorted(NETS), help="zoo net (default stsconv unless --prototxt)")
    parser.add_argument("--prototxt", help="any deploy prototxt with inputs data1 [data1_b] and output deconv1")
    parser.add_argument("--weights", help="caffemodel (default: the registered weights of --net)")
    parser.add_argument("-o", "--out", default="saliency", help="output folder (default ./saliency)")
    parser.add_argument("--engine", default="auto", choices=("auto", "torch", "caffe"))
    parser.add_argument("--device", default=os.environ.get("DYNSAL_DEVICE", "cpu"),
                        help="cpu, cuda or cuda:<i> (default $DYNSAL_DEVICE, else cpu; the GPU image sets cuda)")
    parser.add_argument("--precision", default="fp32", choices=("fp32", "tf32", "bf16", "fp16"))
    parser.add_argument("--batch", type=int, default=1, help="frames per forward pass")
    parser.add_argument("--workers", type=int, default=2, help="threads for decoding and optical flow")
    parser.add_argument("--resize", help="net input size: fit:512 (default, the authors'), fixed:240x320, native")
    parser.add_argument("--flow-settings", metavar="JSON", help="the flow settings a dataset was built with: its "
                        "manifest, a flow_settings.json of `dynsal flow`, or a model settings JSON")
    parser.add_argument("--flow-method", help="optical flow method (default from --flow-settings or the model's "
                        "settings, else dis)")
    parser.add_argument("--flow-param", action="append", type=parse_parameter, default=[], metavar="NAME=VALUE",
                        help="a parameter of the flow method, e.g. --flow-param weights=raft_large.pth (repeatable)")
    parser.add_argument("--flow-encoding", help="flow image encoding: middlebury (default) or xy")
    parser.add_argument("--every", type=int, default=1, help="predict every N-th frame")
    parser.add_argument("--start", type=int, default=0, help="first frame (0-based)")
    parser.add_argument("--end", type=int, help="stop before this frame")
    parser.add_argument("--no-png", action="store_true", help="no per-frame PNG maps")
    parser.add_argument("--npz", action="store_true", help="also write float maps (maps.npz)")
    parser.add_argument("--no-overlay", action="store_true", help="no overlay MP4")
    parser.add_argument("--side-by-side", action="store_true", help="also write a frame | map MP4")
    parser.add_argument("--no-blur", action="store_true", help="skip the 5×5 Gaussian blur of the maps")
    parser.add_argument("--no-stretch", action="store_true", help="do not stretch each map to a maximum of 255")
    parser.add_argument("--overwrite", action="store_true", help="redo inputs whose outputs are complete")
    parser.add_argument("--shard", default="0/1", help="i/n: predict only inputs i, i+n, i+2n, ... (0-based) so n "
                        "processes or machines share a list (default 0/1: all)")


def _flow_settings(args, net) -> FlowSettings | None:
    """--flow-settings (else the model's, else DIS), with --flow-method / --flow-param / --flow-encoding
    over it; None when no flow option is given (the Predictor then uses the model's)."""
    if not (args.flow_settings or args.flow_method or args.flow_param or args.flow_encoding):
        return None
    if args.flow_settings:
        base = FlowSettings.from_file(args.flow_settings)
    else:
        saved = model_settings(resolve_weights(net, args.weights)).get("flow")
        base = FlowSettings.from_dict(saved) if saved else FlowSettings()
    values = base.to_dict()
    if args.flow_method and args.flow_method != values["method"]:
        values.update(method=args.flow_method, params={})
    values["params"].update(dict(args.flow_param))
    values["encoding"] = args.flow_encoding or values["encoding"]
    return FlowSettings.from_dict(values)


def run(args: argparse.Namespace) -> int:
    if args.every < 1 or args.start < 0 or args.batch < 1:
        raise DynsalError("--every and --batch must be at least 1, --start at least 0")
    shard, shards = parse_shard(args.shard)
    inputs = expand_inputs(args.inputs)[shard::shards]
    net = args.net or (None if args.prototxt else "stsconv")
    post = Postprocessing(blur_kernel=0 if args.no_blur else 5, stretch=not args.no_stretch)
    predictor = Predictor(net, args.prototxt, args.weights, args.engine, args.device, args.precision, args.resize,
                          _flow_settings(args, net), post, args.batch, args.workers)
    outputs = OutputOptions(png=not args.no_png, npz=args.npz, overlay=not args.no_overlay,
                            side_by_side=args.side_by_side)
    selected = FrameRange(args.start, args.end, args.every)
    out_dir = Path(args.out)
    failed, done, skipped = [], 0, 0
    for item in inputs:
        if is_complete(out_dir, item.name) and not args.overwrite:
            print(f"{item.name}: already complete in {out_dir / item.name} (--overwrite to redo)")
            skipped += 1
            continue
        started = time.time()
        try:
            folder, count = predictor.predict_input(item, out_dir, outputs, selected)
        except DynsalError as exc:
            print(f"dynsal predict: {item.path}: {exc}", file=sys.stderr)
            failed.append(item.path)
            continue
        seconds = time.time() - started
        print(f"{item.name}: {count} maps in {folder} ({count / max(seconds, 1e-9):.1f} frames/s)")
        done += 1
    print(f"done: {done} predicted, {skipped} already complete, {len(failed)} failed"
          + (f" ({', '.join(str(p) for p in failed)})" if failed else ""))
    return 1 if failed else 0
