"""Compute optical flow of videos and save flow images (PNG) and, optionally, Middlebury .flo files.

For every video (file or frame folder) writes OUT/<video>/<frame>.png (frame = 6-digit index, the
flow of frame t is the motion from frame t-1 to t; frame 0 gets the flow from 0 to 1), optional
OUT/<video>/<frame>.flo, and OUT/<video>/flow_settings.json: {"flow": FlowSettings (method,
parameters, encoding, normalisation), "resize": policy, "frames", "input_identity": the video's size,
modification time and SHA-256}, so prediction can reproduce the images; it is written last, so a folder
without it was interrupted. A rerun (e.g. after Ctrl-C) keeps the folders complete for the same video
content and settings and makes the others; a folder made from another video under the same name (or
with other settings) is refused before any work, naming the difference, unless --overwrite.

examples:
  dynsal flow clip.mp4 -o flows/
  dynsal flow videos/*.avi -o flows/ --method farneback --encoding xy --flo --jobs 2
  sbatch --array=0-9 --wrap "dynsal flow videos/*.avi -o flows/ --shard slurm/10"   # 10 parts as an array job
"""
from __future__ import annotations

import argparse

from dynsal.commands import parse_parameter, plural
from dynsal.data.flow import FlowSettings
from dynsal.data.flow_folder import write_flow_folders
from dynsal.sharding import parse_shard


def add_flow_arguments(parser: argparse.ArgumentParser) -> None:
    """--method, --param, --encoding, --normalisation, --max-magnitude (shared with make-lmdb and make-hdf5)."""
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


def flow_settings(args: argparse.Namespace) -> FlowSettings:
    return FlowSettings(args.method, dict(args.param), args.encoding, args.normalisation, args.max_magnitude)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `dynsal flow`."""
    parser.add_argument("videos", nargs="+", metavar="VIDEO", help="video files or frame folders")
    parser.add_argument("-o", "--output", required=True, metavar="OUT", help="output folder")
    parser.add_argument("--resize", default="native", help="fixed[:HxW], fit:N or native (default native: flow at "
                        "the video's own size; give the size the flow images are used at, e.g. fixed:240x320 as "
                        "make-lmdb, or fit:512 as predict)")
    add_flow_arguments(parser)
    parser.add_argument("--flo", action="store_true", help="also write the flow fields as .flo files")
    parser.add_argument("--jobs", type=int, default=1, metavar="N", help="videos processed in parallel")
    parser.add_argument("--shard", default="0/1", help="i/n: only part i of n (0-based) of the videos, parts balanced "
                        "by frames (default 0/1: all); slurm: this SLURM array task's part, slurm/n: part "
                        "$SLURM_ARRAY_TASK_ID of n (docs/cluster.md)")
    parser.add_argument("--overwrite", action="store_true", help="redo videos whose flow folder was made from other "
                        "content or settings, replacing the files its record lists")


def run(args: argparse.Namespace) -> int:
    folders = write_flow_folders(args.videos, args.output, flow_settings(args), args.resize, args.flo,
                                 overwrite=args.overwrite, jobs=args.jobs, shard=parse_shard(args.shard),
                                 progress=not args.quiet)
    for folder in folders:
        if folder.made:
            print(f"{folder.video}: {plural(folder.frames, 'flow image')}")
        else:
            print(f"{folder.video}: already complete ({plural(folder.frames, 'flow image')}; --overwrite to redo)")
    return 0
