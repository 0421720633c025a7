"""Saliency maps for videos, frame folders, images, webcams and streams with the networks of Bak et al.

Outputs per input NAME (under -o, default ./saliency): NAME/<frame>.png (8-bit maps named like the
input frames; 000000.png ... for video files), NAME/settings.json (everything that determined the
maps), NAME_overlay.mp4 (heat map on the frames), and on request NAME/maps.npz (float maps) and
NAME_side_by_side.mp4. An input whose output is complete for the same request (the input's content, by
SHA-256; weights, net, frame range, flow, post-processing, outputs) is skipped; one made for another request
(a video replaced under the same name, a stream, which cannot be compared) is refused naming the difference,
unless --overwrite. A video that stops decoding before the frames it declares (truncated) gets maps for
the frames that decode, a warning, and the shortfall in settings.json and the summary line; the exit
status stays 0 for it. dynsal never writes on or inside an input and never replaces what it
did not make (docs/reliability.md). An unreadable input is reported and the others still run (exit
status 1 at the end). With --layout dhf1k the maps go to NAME/maps/ under DHF1K's names (video
001.AVI -> 0001/maps/0001.png, 1-based), so `dynsal eval OUT DHF1K/annotation` pairs them directly;
Hollywood-2 and UCF-Sports frame folders (<video>/images) keep their frames' names in either layout.
Progress (frames, rate, ETA per input and for all) goes to stderr; --quiet turns it off.

Examples:
  dynsal predict --net stsconv clip.mp4                       # the published STSConvNet weights
  dynsal predict --net stsmax --weights stsmax.caffemodel videos/*.mp4 -o out --batch 8 --device cuda
  dynsal predict --prototxt my_deploy.prototxt --weights my.caffemodel frames_folder/ --npz --side-by-side
  dynsal predict --net stsconv @videos.txt -o out --shard 1/4      # the 2nd of 4 processes sharing a list
  sbatch --array=0-3 --wrap "dynsal predict --net stsconv @videos.txt -o out --shard slurm/4"   # as an array job
  dynsal predict --net stsconv DHF1K/video/6*.AVI -o pred --layout dhf1k && dynsal eval pred DHF1K/annotation
  dynsal predict --net stsconv 0 --show --end 300            # the first webcam, live, 300 frames
  dynsal predict --weights stsconv.onnx clip.mp4              # a `dynsal export` file: its net and precision
"""
from __future__ import annotations

import argparse
import functools
import sys
import time
from contextlib import closing, nullcontext
from dataclasses import replace
from pathlib import Path

from dynsal.commands import parse_parameter, plural
from dynsal.data import ground_truth as GT
from dynsal.data.flow import FlowSettings
from dynsal.data.video import declared_frame_count
from dynsal.engines import ENGINES, is_onnx_file
from dynsal.errors import DynsalError
from dynsal.predict.inputs import expand_inputs
from dynsal.predict.live import LiveWindow
from dynsal.predict.outputs import OutputOptions
from dynsal.predict.plan import check_outputs
from dynsal.predict.postprocess import Postprocessing
from dynsal.predict.predictor import FrameRange, Predictor, model_postprocessing, model_settings, resolve_weights
from dynsal.progress import progress_bar, write_line
from dynsal.sharding import parse_shard, select
from dynsal.zoo import NETS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="+", help="video files, frame folders, images, globs, @list.txt, a webcam "
                        "index (0) or a stream URL (rtsp://..., http(s)://.../clip.mp4)")
    parser.add_argument("--net", choices=sorted(NETS), help="zoo net (default: stsconv, unless --prototxt, or "
                        "--weights names an .onnx export: the net it records)")
    parser.add_argument("--prototxt", help="any deploy prototxt with inputs data1 [data1_b] and output deconv1")
    parser.add_argument("--weights", help="caffemodel (default: the registered weights of --net), or an .onnx file "
                        "written by `dynsal export` (engine onnx)")
    parser.add_argument("-o", "--out", default="saliency", help="output folder")
    parser.add_argument("--engine", default="auto", choices=ENGINES,
                        help="auto: caffe where pycaffe is installed, else torch (onnx for an .onnx file)")
    parser.add_argument("--device", default="auto", help="auto (the GPU when there is one), cpu, cuda or cuda:<i>")
    parser.add_argument("--precision", choices=("fp32", "tf32", "bf16", "fp16"),
                        help="torch/onnx engine arithmetic (default: fp32, what parity with Caffe is measured in; "
                        "an .onnx export's own)")
    parser.add_argument("--batch", type=int, default=1, help="frames per forward pass")
    parser.add_argument("--workers", type=int, help="processes computing optical flow (default: one per core; 0: "
                        "none, the pipeline's threads do it)")
    parser.add_argument("--compile", action="store_true", help="torch engine: run the net torch.compile'd (the first "
                        "batch of each frame size compiles, cached in $DYNSAL_COMPILE_CACHE or "
                        "~/.cache/dynsal/torch-compile; eager with a warning where it cannot)")
    parser.add_argument("--cuda-graphs", action="store_true", help="torch engine on CUDA: replay each batch shape "
                        "from a CUDA graph")
    parser.add_argument("--resize", help="net input size: fit:512 (default unless the model's settings JSON says "
                        "otherwise: the authors' script fits frames within 512 pixels), fixed:240x320, native; an "
                        ".onnx export without --dynamic: its own size")
    parser.add_argument("--flow-settings", metavar="JSON", help="the flow settings a dataset was built with: its "
                        "manifest, a flow_settings.json of `dynsal flow`, or a model settings JSON")
    parser.add_argument("--flow-method", help="optical flow method (default from --flow-settings or the model's "
                        "settings, else dis)")
    parser.add_argument("--flow-param", action="append", type=parse_parameter, default=[], metavar="NAME=VALUE",
                        help="a parameter of the flow method, e.g. --flow-param weights=raft_large.pth (repeatable)")
    parser.add_argument("--flow-encoding", help="flow image encoding: middlebury (default) or xy")
    parser.add_argument("--every", type=int, default=1, help="predict every N-th frame")
    parser.add_argument("--start", type=int, default=0, help="first frame (0-based)")
    parser.add_argument("--end", type=int, help="stop before this frame (default: the input's end)")
    parser.add_argument("--no-png", action="store_true", help="no per-frame PNG maps")
    parser.add_argument("--layout", choices=GT.LAYOUTS, default="flat", help="flat: NAME/<frame>.png (a video "
                        "file's frames 000000, 000001, ...); dhf1k: NAME/maps/<frame>.png with DHF1K's names "
                        "(001.AVI -> 0001/maps/0001.png ...), what `dynsal eval ... DHF1K/annotation` matches")
    parser.add_argument("--npz", action="store_true", help="also write float maps (maps.npz)")
    parser.add_argument("--no-overlay", action="store_true", help="no overlay MP4")
    parser.add_argument("--side-by-side", action="store_true", help="also write a frame | map MP4")
    parser.add_argument("--show", action="store_true", help="show the overlay live in a window (q or Esc stops the "
                        "input; needs OpenCV with a GUI: the headless wheels dynsal installs have none, the error says "
                        "which wheel to put in place)")
    parser.add_argument("--no-blur", action="store_true", help="skip the Gaussian blur of the maps (default: the "
                        "model's settings JSON, else a 5×5 blur)")
    parser.add_argument("--no-stretch", action="store_true", help="do not stretch each map to a maximum of 255 "
                        "(default: the model's settings JSON, else stretch)")
    parser.add_argument("--overwrite", action="store_true", help="redo inputs whose outputs are complete, replacing "
                        "them (only ever what dynsal wrote)")
    parser.add_argument("--shard", default="0/1", help="i/n: predict only part i of n (0-based) of the inputs, parts "
                        "balanced by frames, so n processes or machines share a list (default 0/1: all); slurm: this "
                        "SLURM array task's part, slurm/n: part $SLURM_ARRAY_TASK_ID of n (docs/cluster.md)")


def _flow_settings(args, net) -> FlowSettings | None:
    """--flow-settings (else the model's, else DIS), with --flow-method / --flow-param / --flow-encoding
    over it; None when no flow option is given (the Predictor then uses the model's)."""
    if not (args.flow_settings or args.flow_method or args.flow_param or args.flow_encoding):
        return None
    base = (FlowSettings.from_file(args.flow_settings) if args.flow_settings
            else FlowSettings.of_model(model_settings(resolve_weights(net, args.weights))))
    return base.overridden(args.flow_method, dict(args.flow_param), args.flow_encoding)


def _postprocessing(args, net) -> Postprocessing | None:
    """The model's post-processing with --no-blur / --no-stretch over it; None when neither is given (the
    Predictor then uses the model's)."""
    if not (args.no_blur or args.no_stretch):
        return None
    base = model_postprocessing(resolve_weights(net, args.weights))
    return replace(base, blur_kernel=0 if args.no_blur else base.blur_kernel,
                   stretch=base.stretch and not args.no_stretch)


def run(args: argparse.Namespace) -> int:
    if args.every < 1 or args.start < 0 or args.batch < 1 or (args.workers or 0) < 0:
        raise DynsalError("--every and --batch must be at least 1, --start and --workers at least 0")
    shard = parse_shard(args.shard)
    inputs = expand_inputs(args.inputs)
    if shard[1] > 1:
        selected = FrameRange(args.start, args.end, args.every)
        inputs = select(inputs, [_frames_to_do(item, selected) or 1 for item in inputs], shard)
    outputs = OutputOptions(png=not args.no_png, npz=args.npz, overlay=not args.no_overlay,
                            side_by_side=args.side_by_side, layout=args.layout)
    out_dir = Path(args.out)
    check_outputs(out_dir, inputs, outputs, args.overwrite)
    net = args.net or (None if args.prototxt or is_onnx_file(args.weights) else "stsconv")
    predictor = Predictor(net, args.prototxt, args.weights, engine=args.engine, device=args.device,
                          precision=args.precision, resize=args.resize, flow=_flow_settings(args, net),
                          post=_postprocessing(args, net), batch=args.batch, workers=args.workers,
                          compile=args.compile, cuda_graphs=args.cuda_graphs)
    if predictor.weights_warning:
        write_line(f"dynsal predict: warning: {predictor.weights_warning}")
    if predictor.notice and not args.quiet:
        write_line(f"dynsal predict: {predictor.notice}")
    try:
        done, skipped, failed = _predict_all(args, predictor, inputs, outputs, out_dir)
    finally:  # also on Ctrl-C: the flow workers stop here, not in Python's exit hooks (which race on 3.11)
        predictor.close()
    print(f"done: {_counted(done, 'predicted')}, {_counted(skipped, 'already complete')}, {len(failed)} failed"
          + (f" ({', '.join(str(p) for p in failed)})" if failed else ""))
    return 1 if failed else 0


def _counted(results, what: str) -> str:
    """`3 predicted`, or `3 predicted (1 truncated)` when the video of one stopped decoding early."""
    truncated = sum(result.truncated for result in results)
    return f"{len(results)} {what}" + (f" ({truncated} truncated)" if truncated else "")


def _predict_all(args: argparse.Namespace, predictor: Predictor, inputs, outputs: OutputOptions, out_dir: Path):
    """Predict each input in turn, one line per input; the InputResults of those predicted and of those already
    complete, and the paths of those that failed."""
    window = LiveWindow() if args.show else None
    selected = FrameRange(args.start, args.end, args.every)
    totals = [_frames_to_do(item, selected) for item in inputs]
    overall = progress_bar(None if None in totals else sum(totals), "dynsal predict: all inputs", "frames",
                           enabled=not args.quiet and len(inputs) > 1, leave=True, position=0)
    failed, done, skipped = [], [], []
    with overall, (closing(window) if window else nullcontext()):
        for item, total in zip(inputs, totals):
            bar = progress_bar(total, f"dynsal predict {item.name}", "frames", enabled=not args.quiet,
                               position=1 if len(inputs) > 1 else 0)
            started = time.time()
            try:
                with bar:
                    on_frame = functools.partial(_frame_done, window, bar, overall)
                    result = predictor.predict_input(item, out_dir, outputs, selected, args.overwrite, on_frame)
            except DynsalError as exc:  # the path once, whether or not the message names it
                message = str(exc) if str(item.path) in str(exc) else f"{item.path}: {exc}"
                write_line(f"dynsal predict: {message}")
                failed.append(item.path)
                continue
            if result.warning:
                write_line(f"dynsal predict: warning: {result.warning}")
            if result.skipped:
                overall.update(total or 0)
                write_line(f"{item.name}: already complete in {result.folder} (--overwrite to redo)", sys.stdout)
                skipped.append(result)
                continue
            seconds = time.time() - started
            write_line(f"{item.name}: {plural(result.frames, 'map')} in {result.folder} "
                       f"({result.frames / max(seconds, 1e-9):.1f} frames/s)", sys.stdout)
            done.append(result)
    return done, skipped, failed


def _frames_to_do(item, selected: FrameRange):
    """How many maps an input will give (None when unknown: a stream, a video without a frame count)."""
    if item.kind == "image":
        return 1
    counted = None if item.kind == "stream" else declared_frame_count(item.path)
    return None if counted is None else selected.count(counted[0])


def _frame_done(window, bar, overall, prediction) -> bool:
    """After each map: advance both progress bars, show the overlay; False when the window was closed."""
    bar.update(1)
    overall.update(1)
    return window is None or window.show(prediction.frame, prediction.saliency)
