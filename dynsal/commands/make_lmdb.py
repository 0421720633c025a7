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
  sbatch --array=0-7 --wrap "dynsal make-lmdb ... -o data --shard slurm/8"   # 8 parts as a SLURM array job
"""
from __future__ import annotations

import argparse

from dynsal.commands import plural
from dynsal.commands.flow import add_flow_arguments, flow_settings
from dynsal.data.dataset import DatasetSettings
from dynsal.data.lmdb_writer import LmdbWriter
from dynsal.data.make_dataset import make_dataset, save_ground_truth, sources_by_split
from dynsal.errors import DataError
from dynsal.sharding import parse_shard


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
                     "OUT/shards, e.g. on n machines sharing OUT (parts balanced by samples); slurm: this SLURM "
                     "array task's part, slurm/n: part $SLURM_ARRAY_TASK_ID of n (docs/cluster.md); a later run "
                     "without --shard puts the finished shards together (and computes what no shard holds)")
    run.add_argument("--merge-only", action="store_true", help="only put finished shards together; fail, naming "
                     "them, if some videos are in no finished shard (instead of computing them here)")
    run.add_argument("--overwrite", action="store_true", help="replace a finished dataset")


def settings_from_args(args: argparse.Namespace) -> DatasetSettings:
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


def build(args: argparse.Namespace, backend: str, make_writer) -> int:
    """Build the requested splits (or shard --shard of each) with `make_writer`; one line per split."""
    splits = sources_by_split([s.strip() for s in args.splits.split(",") if s.strip()], args.layout,
                              args.videos or (), args.gaze, args.split_preset, args.val_fraction, args.seed)
    settings = settings_from_args(args)
    built = make_dataset(args.output, splits, settings, backend, make_writer, jobs=args.jobs,
                         overwrite=args.overwrite, progress=not args.quiet,
                         shard=parse_shard(args.shard) if args.shard else None, merge_only=args.merge_only)
    for split in built:
        print(f"{split.split}: {plural(split.manifest['count'], 'sample')} from {plural(len(split.sources), 'video')} "
              f"-> {split.root} ({split.kind})")
        for source in split.sources if args.save_ground_truth else ():
            folder, count = save_ground_truth(source, settings, args.save_ground_truth)
            print(f"{source.name}: ground truth of {plural(count, 'frame')} -> {folder}")
    return 0


def run(args: argparse.Namespace) -> int:
    return build(args, "lmdb", LmdbWriter)
