"""Build Caffe training sets as three aligned LMDBs per split (frames, flow images, maps).

Inputs: DIEM videos (files or frame folders) with their raw gaze (--videos, --gaze), or a
per-frame layout ROOT/<split>/<video>/{images,maps} (--layout ROOT). Writes
OUT/<split>_{frames,flows,maps}_lmdb and OUT/<split>_lmdb_manifest.json, the files the zoo's
train_val_lmdb nets read (split = train | val). An interrupted build resumes when rerun with the
same arguments. See docs/data.md for every default and the choices behind it.

examples:
  dynsal make-lmdb --videos DIEM/video --gaze DIEM/event_data --split-preset diem -o data --jobs 4
  dynsal make-lmdb --layout UCF-Sports -o data --method farneback --mirror
  dynsal make-lmdb ... -o data --shard 0/3     # part 0 of 3 (on machine A; 1/3, 2/3 elsewhere), then
  dynsal make-lmdb ... -o data                 # puts data/shards/* together into the dataset
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Dict, List

from dynsal.commands import parse_parameter, parse_shard
from dynsal.errors import DataError

SPLITS = ("train", "val")


def add_flow_arguments(parser: argparse.ArgumentParser) -> None:
    """--method, --param, --encoding, --normalisation, --max-magnitude (shared with `dynsal flow`)."""
    parser.add_argument("--method", default="dis", help="optical flow method: dis (default), farneback, tvl1, "
                        "deepflow, raft (needs torchvision and --param weights=FILE)")
    parser.add_argument("--param", action="append", type=parse_parameter, default=[], metavar="NAME=VALUE",
                        help="a flow method parameter, e.g. --param preset=fast or --param weights=raft_large.pth "
                        "(repeatable)")
    parser.add_argument("--encoding", default="middlebury", help="flow image encoding: middlebury (default) or xy")
    parser.add_argument("--normalisation", default="frame", choices=("frame", "fixed"),
                        help="flow magnitude normalisation: each frame's own maximum (default) or --max-magnitude")
    parser.add_argument("--max-magnitude", type=float, default=20.0, metavar="PX",
                        help="pixels of motion at full saturation with --normalisation fixed (default 20)")


def flow_settings(args: argparse.Namespace):
    from dynsal.data.flow import FlowSettings

    return FlowSettings(args.method, dict(args.param), args.encoding, args.normalisation, args.max_magnitude)


def _pair(text: str, sep: str, cast=float):
    try:
        a, b = text.split(sep)
        return cast(a), cast(b)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected two numbers separated by {sep!r}, got {text!r}") from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `dynsal make-lmdb` (and of `dynsal make-hdf5`)."""
    parser.add_argument("-o", "--output", required=True, metavar="OUT", help="dataset folder")
    source = parser.add_argument_group("input")
    source.add_argument("--videos", nargs="+", metavar="PATH", help="video files, frame folders, or folders of them")
    source.add_argument("--gaze", metavar="DIR", help="DIEM event_data folder (<participant>_<video>.txt)")
    source.add_argument("--layout", metavar="ROOT", help="per-frame layout ROOT/<split>/<video>/{images,maps}")
    split = parser.add_argument_group("splits and order")
    split.add_argument("--split-preset", choices=("diem",), help="diem: DIEM's 20 test videos form val, the rest train")
    split.add_argument("--val-fraction", type=float, default=0.0, help="share of videos (seeded) put in val")
    split.add_argument("--splits", default="train,val", help="which splits to build (default train,val)")
    split.add_argument("--stride", type=int, default=1, help="every N-th frame (default 1)")
    split.add_argument("--seed", type=int, default=0, help="seed of the shuffling and crops (default 0)")
    split.add_argument("--no-shuffle", action="store_true", help="keep video and frame order")
    frames = parser.add_argument_group("frames and flow")
    frames.add_argument("--resize", default="fixed:240x320",
                        help="fixed[:HxW], fit:N or native (default fixed:240x320)")
    add_flow_arguments(frames)
    truth = parser.add_argument_group("ground truth (DIEM gaze)")
    truth.add_argument("--eyes", default="both", choices=("both", "left", "right", "either"),
                       help="which eyes' fixations count (default both: both eyes fixating, mean position)")
    truth.add_argument("--screen", type=lambda t: _pair(t, "x", int), default=(1280, 960), metavar="WxH",
                       help="screen size; the video is centred on it (default 1280x960)")
    truth.add_argument("--offset", type=lambda t: _pair(t, ","), metavar="DX,DY",
                       help="explicit screen→video offset instead of centring, e.g. 0,100")
    truth.add_argument("--sigma", default="1deg", help="density map sigma: e.g. 1deg (default) or 30px")
    truth.add_argument("--geometry", type=float, nargs=3, default=(90.0, 40.0, 1280), metavar=("CM", "CM", "PX"),
                       help="viewing distance, screen width, screen width in pixels (default 90 40 1280)")
    truth.add_argument("--keep-empty", action="store_true", help="keep frames without any fixation")
    truth.add_argument("--save-ground-truth", metavar="DIR",
                       help="also write DIR/<video>/{maps,fixation}/<frame>.png at the dataset's frame size "
                            "(what `dynsal eval` reads)")
    aug = parser.add_argument_group("augmentation")
    aug.add_argument("--mirror", action="store_true", help="add mirrored samples (flow u negated)")
    aug.add_argument("--scales", default="", help="add crop-rescaled samples, e.g. 0.8,0.9")
    aug.add_argument("--observer-subsets", type=int, default=0, metavar="K",
                     help="add samples whose maps come from K seeded draws of a share of the observers (DIEM)")
    aug.add_argument("--observer-fraction", type=float, default=0.5,
                     help="share of the observers in each draw (default 0.5)")
    run = parser.add_argument_group("run")
    run.add_argument("--jobs", type=int, default=1, metavar="N", help="worker processes for optical flow")
    run.add_argument("--shard", metavar="i/n", help="build only part i of n (0-based) of each split into "
                     "OUT/shards, e.g. on n machines sharing OUT; a later run without --shard puts the finished "
                     "shards together (and computes what no shard holds)")
    run.add_argument("--merge-only", action="store_true", help="only put finished shards together; fail, naming "
                     "them, if some videos are in no finished shard (instead of computing them here)")
    run.add_argument("--overwrite", action="store_true", help="replace a finished dataset")


def settings_from_args(args: argparse.Namespace):
    from dynsal.data.dataset import DatasetSettings

    try:
        scales = tuple(float(s) for s in args.scales.split(",") if s.strip())
    except ValueError:
        raise DataError(f"--scales: expected numbers such as 0.8,0.9, got {args.scales!r}") from None
    return DatasetSettings(
        resize=args.resize, flow=flow_settings(args).to_dict(), stride=args.stride, eyes=args.eyes,
        screen=tuple(args.screen), offset=tuple(args.offset) if args.offset else None, sigma=args.sigma,
        geometry=tuple(args.geometry), keep_empty=args.keep_empty, mirror=args.mirror, scales=scales,
        observer_subsets=args.observer_subsets, observer_fraction=args.observer_fraction,
        shuffle=not args.no_shuffle, seed=args.seed)


def sources_by_split(args: argparse.Namespace) -> Dict[str, List]:
    from dynsal.data.dataset import split_videos
    from dynsal.data.sources import diem_sources, layout_sources

    wanted = [s.strip() for s in args.splits.split(",") if s.strip()]
    unknown = [s for s in wanted if s not in SPLITS]
    if unknown:
        raise DataError(f"--splits: unknown split(s) {', '.join(unknown)}; the zoo's nets read train and val")
    if args.layout:
        if args.videos or args.gaze:
            raise DataError("give either --layout or --videos with --gaze, not both")
        missing = [s for s in wanted if not (Path(args.layout) / s).is_dir()]
        if missing:
            raise DataError(f"{args.layout}: no {', '.join(missing)} folder(s); expected ROOT/<split>/<video>/"
                            "{images,maps} (choose splits with --splits)")
        return {s: layout_sources(Path(args.layout) / s) for s in wanted}
    if not (args.videos and args.gaze):
        raise DataError("give --videos and --gaze (DIEM), or --layout ROOT")
    sources = diem_sources(args.videos, args.gaze)
    by_name = {s.name: s for s in sources}
    splits = split_videos(list(by_name), args.split_preset, args.val_fraction, args.seed)
    return {s: [by_name[n] for n in splits[s]] for s in wanted if splits[s]}


def build(args: argparse.Namespace, backend: str, make_writer) -> int:
    """Build every requested split with `make_writer` (or shard `--shard` of it); one line per split."""
    from dynsal.data import shards as S
    from dynsal.data.build import build_split
    from dynsal.data.lmdb_writer import LmdbWriter

    settings = settings_from_args(args)
    shard = parse_shard(args.shard) if args.shard else None
    if shard is not None and args.merge_only:
        raise DataError("--merge-only puts shards together; it does not go with --shard")
    splits = sources_by_split(args)
    if not splits:
        raise DataError("no videos in the requested splits")
    for split, sources in splits.items():
        root, writer, kind = args.output, make_writer, backend
        if shard is not None:
            root, writer, kind = S.shard_root(args.output, split, shard), LmdbWriter, S.SHARD_BACKEND
        manifest = build_split(split, sources, root, settings, writer, kind, jobs=max(1, args.jobs),
                               overwrite=args.overwrite, progress=not args.quiet, shard=shard,
                               merge_only=args.merge_only)
        built = [s for s in sources if s.name in manifest["videos"]]
        print(f"{split}: {manifest['count']} samples from {len(built)} videos -> {root} ({kind})")
        if args.save_ground_truth:
            save_ground_truth(built, settings, args.save_ground_truth)
    return 0


def save_ground_truth(sources, settings, folder: str) -> None:
    """Per-frame density and fixation PNGs of DIEM videos at the size their frames get in the dataset."""
    from dynsal.data import gaze as G
    from dynsal.data.dataset import gaze_frame_count, subset_gaze
    from dynsal.data.video import ResizePolicy

    sigma = G.Sigma(settings.sigma).pixels(G.ViewingGeometry(*settings.geometry))
    for source in sources:
        if source.layout is not None:
            raise DataError("--save-ground-truth makes maps from raw gaze (DIEM); a layout already has them")
        width, height = G.video_size_from_name(source.name)
        shape = ResizePolicy.parse(settings.resize).output_size(height, width)
        points = subset_gaze(source, settings, gaze_frame_count(source), 0)
        count = G.write_ground_truth(points, (width, height), shape, sigma, Path(folder) / source.name,
                                     settings.keep_empty)
        print(f"{source.name}: ground truth of {count} frames -> {Path(folder) / source.name}")


def run(args: argparse.Namespace) -> int:
    from dynsal.data.lmdb_writer import LmdbWriter

    return build(args, "lmdb", LmdbWriter)
