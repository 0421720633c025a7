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
import os
from multiprocessing import get_context
from pathlib import Path

from dynsal.commands import parse_parameter, plural
from dynsal.data.flow import FlowSettings
from dynsal.data.flow_folder import finished_flow, write_flow_folder
from dynsal.data.video import declared_frame_count
from dynsal.errors import DataError
from dynsal.progress import progress_bar
from dynsal.sharding import parse_shard, select
from dynsal.workers import exit_with, interrupts_ignored


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


def _write_job(job: tuple) -> int:
    """`write_flow_folder(*job)` in a worker process."""
    return write_flow_folder(*job)


def run(args: argparse.Namespace) -> int:
    settings = flow_settings(args).to_json()
    shard = parse_shard(args.shard)
    names = [Path(v).stem if Path(v).is_file() else Path(v).name for v in args.videos]
    if len(set(names)) != len(names):
        raise DataError("two inputs have the same name; their outputs would collide")
    weights = [(declared_frame_count(v) or (1,))[0] or 1 for v in args.videos]
    videos = select(args.videos, weights, shard)
    finished = [finished_flow(v, args.output, settings, args.resize, args.flo, args.overwrite) for v in videos]
    jobs = [(v, args.output, settings, args.resize, args.flo, identity)
            for v, (identity, frames) in zip(videos, finished) if frames is None]
    totals = [(declared_frame_count(job[0]) or (None,))[0] for job in jobs]
    bar = progress_bar(None if None in totals else sum(totals), "dynsal flow", "frames", enabled=not args.quiet,
                       leave=True)
    with bar:
        if args.jobs > 1 and len(jobs) > 1:  # progress by finished video
            with interrupts_ignored():
                pool = get_context("spawn").Pool(args.jobs, initializer=exit_with, initargs=(os.getpid(),))
            counts = []
            with pool:  # leaving it terminates the workers
                for count in pool.imap(_write_job, jobs, chunksize=1):
                    counts.append(count)
                    bar.update(count)
        else:
            counts = [write_flow_folder(*job, on_frame=lambda: bar.update(1)) for job in jobs]
    made = dict(zip((job[0] for job in jobs), counts))
    for video, (_, frames) in zip(videos, finished):
        if video in made:
            print(f"{video}: {plural(made[video], 'flow image')}")
        else:
            print(f"{video}: already complete ({plural(frames, 'flow image')}; --overwrite to redo)")
    return 0
