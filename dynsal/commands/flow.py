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
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Callable, Optional

from dynsal.commands import plural
from dynsal.commands.make_lmdb import add_flow_arguments, flow_settings
from dynsal.data.video import frame_count
from dynsal.errors import DataError
from dynsal.progress import progress_bar


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


def flow_video(video: str, output: str, settings_json: str, resize: str, flo: bool,
               on_frame: Optional[Callable[[], None]] = None) -> int:
    """Write one video's flow images (and .flo files); returns the number of frames. `on_frame` is
    called after each frame (progress)."""
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
        if on_frame is not None:
            on_frame()
    record = {"flow": settings.to_dict(), "resize": str(policy), "frame_flow": "t-1 -> t; frame 0: 0 -> 1"}
    write_json(folder / "flow_settings.json", record)  # last: a folder without it is incomplete
    return count


def run(args: argparse.Namespace) -> int:
    settings = flow_settings(args).to_json()
    names = [Path(v).stem if Path(v).is_file() else Path(v).name for v in args.videos]
    if len(set(names)) != len(names):
        raise DataError("two inputs have the same name; their outputs would collide")
    jobs = [(v, args.output, settings, args.resize, args.flo) for v in args.videos]
    totals = [frame_count(v) for v in args.videos]
    bar = progress_bar(None if None in totals else sum(totals), "dynsal flow", "frames", enabled=not args.quiet,
                       leave=True)
    with bar:
        if args.jobs > 1 and len(jobs) > 1:  # progress by finished video
            with ProcessPoolExecutor(max_workers=args.jobs) as pool:
                futures = {pool.submit(flow_video, *job): i for i, job in enumerate(jobs)}
                counts = [0] * len(jobs)
                for future in as_completed(futures):
                    counts[futures[future]] = future.result()
                    bar.update(counts[futures[future]])
        else:
            counts = [flow_video(*job, on_frame=lambda: bar.update(1)) for job in jobs]
    for video, count in zip(args.videos, counts):
        print(f"{video}: {plural(count, 'flow image')}")
    return 0
