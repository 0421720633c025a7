"""Compute optical flow of videos and save flow images (PNG) and, optionally, Middlebury .flo files.

For every video (file or frame folder) writes OUT/<video>/<frame>.png (frame = 6-digit index, the
flow of frame t is the motion from frame t-1 to t; frame 0 gets the flow from 0 to 1), optional
OUT/<video>/<frame>.flo, and OUT/<video>/flow_settings.json: {"flow": FlowSettings (method,
parameters, encoding, normalisation), "resize": policy}, so prediction can reproduce the images;
it is written last, so a folder without it was interrupted (rerun the command).

examples:
  dynsal flow clip.mp4 -o flows/
  dynsal flow videos/*.avi -o flows/ --method farneback --encoding xy --flo --jobs 2
"""
from __future__ import annotations

import argparse
from multiprocessing import get_context
from pathlib import Path

from dynsal.commands.make_lmdb import add_flow_arguments, flow_settings
from dynsal.errors import DataError
from dynsal.workers import interrupts_ignored


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `dynsal flow`."""
    parser.add_argument("videos", nargs="+", metavar="VIDEO", help="video files or frame folders")
    parser.add_argument("-o", "--output", required=True, metavar="OUT", help="output folder")
    parser.add_argument("--resize", default="native", help="fixed[:HxW], fit:N or native (default native)")
    add_flow_arguments(parser)
    parser.add_argument("--flo", action="store_true", help="also write the flow fields as .flo files")
    parser.add_argument("--jobs", type=int, default=1, metavar="N", help="videos processed in parallel")


def flow_video(video: str, output: str, settings_json: str, resize: str, flo: bool) -> int:
    """Write one video's flow images (and .flo files); returns the number of frames."""
    from dynsal.data.flo import write_flo
    from dynsal.data.flow import FlowSettings, flow_inputs
    from dynsal.data.images import write_json, write_png
    from dynsal.data.video import ResizePolicy, read_frames, video_name

    settings = FlowSettings.from_json(settings_json)
    policy = ResizePolicy.parse(resize)
    folder = Path(output) / video_name(video)
    folder.mkdir(parents=True, exist_ok=True)
    count = 0
    frames = ((f.index, f.image) for f in read_frames(video, policy))
    for t, _, first, second in flow_inputs(frames, str(video)):
        field = settings.flow(first, second)
        write_png(settings.image(field), folder / f"{t:06d}.png")
        if flo:
            write_flo(field, folder / f"{t:06d}.flo")
        count += 1
    record = {"flow": settings.to_dict(), "resize": str(policy), "frame_flow": "t-1 -> t; frame 0: 0 -> 1"}
    write_json(folder / "flow_settings.json", record)  # last: a folder without it is incomplete
    return count


def run(args: argparse.Namespace) -> int:
    settings = flow_settings(args).to_json()
    names = [Path(v).stem if Path(v).is_file() else Path(v).name for v in args.videos]
    if len(set(names)) != len(names):
        raise DataError("two inputs have the same name; their outputs would collide")
    jobs = [(v, args.output, settings, args.resize, args.flo) for v in args.videos]
    if args.jobs > 1 and len(jobs) > 1:
        with interrupts_ignored():
            pool = get_context("spawn").Pool(args.jobs)
        with pool:  # leaving it terminates the workers
            counts = pool.starmap(flow_video, jobs, chunksize=1)
    else:
        counts = [flow_video(*job) for job in jobs]
    for video, count in zip(args.videos, counts):
        print(f"{video}: {count} flow images")
    return 0
