"""A video's optical flow as files: `OUT/<video>/<frame>.png` flow images (+ `.flo` fields) and
`flow_settings.json`, what `dynsal flow` writes and `dynsal predict --flow-settings` reads back.

The flow image of frame t is the motion from frame t−1 to t (frame 0: 0 → 1), frames named by their
0-based index with 6 digits. `flow_settings.json` ({"flow": FlowSettings, "resize": policy, "flo",
"frames", "input_identity": the video's identity, `dynsal.data.identity`}) is written last, so a folder
without it was interrupted. A rerun keeps a folder whose record answers the same request, the video's
content included (`finished_flow`), and refuses one made for another (a video replaced under its name,
other settings) naming the difference, unless it is told to overwrite: the old record is then removed
first, then the files it lists, so a folder is never a mix of two videos.

`write_flow_folders` is `dynsal flow`: many videos (this shard's part of them), the finished ones kept,
the others made in this process or in worker processes, one video each, with a progress bar.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from dynsal.data.flo import write_flo
from dynsal.data.flow import FlowSettings, flow_inputs
from dynsal.data.identity import IDENTITY_KEY, Identity, input_identity, request_difference, unchanged_since
from dynsal.data.images import write_png
from dynsal.data.video import ResizePolicy, declared_frame_count, read_frames, video_name
from dynsal.errors import DataError
from dynsal.files import write_json
from dynsal.progress import progress_bar
from dynsal.sharding import select
from dynsal.workers import WorkerProcesses

SETTINGS_FILE = "flow_settings.json"
#: what determines a flow folder besides its video's identity
REQUEST_KEYS = ("flow", "resize", "flo")


def _request(settings_json: str, resize: str, flo: bool, identity: Identity) -> Dict:
    return {"flow": FlowSettings.from_json(settings_json).to_dict(), "resize": str(ResizePolicy.parse(resize)),
            "flo": flo, IDENTITY_KEY: identity}


def _record(folder: Path) -> Optional[Dict]:
    """The record of a finished flow folder, or None (no record: an interrupted or new folder)."""
    try:
        record = json.loads((folder / SETTINGS_FILE).read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def finished_flow(video: str, output: str, settings_json: str, resize: str, flo: bool,
                  overwrite: bool = False) -> Tuple[Identity, Optional[int]]:
    """The video's identity (its file read once to hash it), and the frames of its finished flow folder when
    that answers the same request (None: the folder is to be made).

    Raises:
        DataError: the folder was made for another request (naming each difference), unless `overwrite`.
    """
    identity = input_identity(video)
    folder = Path(output) / video_name(video)
    record = _record(folder)
    if record is None:
        return identity, None
    difference = request_difference(record, _request(settings_json, resize, flo, identity), REQUEST_KEYS)
    if not difference:
        frames = record.get("frames")
        complete = isinstance(frames, int) and all((folder / name).is_file() for name in _recorded_files(record))
        return identity, frames if complete else None  # a file lost since: made again
    if overwrite:
        return identity, None
    raise DataError(f"{folder} holds the flow of another request ({difference}); rerun with --overwrite to "
                    "replace it, or choose another output folder (-o)")


def _recorded_files(record: Dict) -> List[str]:
    """The flow files a record lists: `<t>.png` (and `<t>.flo`) for t below its `frames`."""
    frames = record.get("frames")
    suffixes = (".png", ".flo") if record.get("flo") else (".png",)
    return [f"{t:06d}{suffix}" for t in range(frames if isinstance(frames, int) else 0) for suffix in suffixes]


def _remove_recorded(folder: Path) -> None:
    """Remove a finished folder's record, then the flow files it lists."""
    record = _record(folder)
    if record is None:
        return
    (folder / SETTINGS_FILE).unlink()
    for name in _recorded_files(record):
        (folder / name).unlink(missing_ok=True)


def write_flow_folder(video: str, output: str, settings_json: str, resize: str, flo: bool,
                      identity: Optional[Identity] = None, on_frame: Optional[Callable[[], None]] = None) -> int:
    """Write one video's flow images (and .flo files) under `output/<video>/`, replacing what an earlier
    record there lists; returns the number of frames. Arguments are plain values so worker processes can
    run it; `identity` is the video's (`finished_flow`; taken here when None); `on_frame` is called after
    each frame (progress).

    Raises:
        DataError: the video cannot be decoded, or changed while it was read (no record is then written).
    """
    identity = identity or input_identity(video)
    settings = FlowSettings.from_json(settings_json)
    policy = ResizePolicy.parse(resize)
    folder = Path(output) / video_name(video)
    folder.mkdir(parents=True, exist_ok=True)
    _remove_recorded(folder)
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
    unchanged_since(video, identity)
    record = dict(_request(settings_json, resize, flo, identity), frames=count,
                  frame_flow="t-1 -> t; frame 0: 0 -> 1")
    write_json(folder / SETTINGS_FILE, record)  # last: a folder without it is incomplete
    return count


@dataclass(frozen=True)
class FlowFolder:
    """What `write_flow_folders` did for one video.

    Attributes:
        video: the input (file or frame folder).
        frames: the flow images its folder holds.
        made: whether this run made them (False: the folder was already complete).
    """

    video: str
    frames: int
    made: bool


def _write_job(job: tuple) -> int:
    """`write_flow_folder(*job)` in a worker process."""
    return write_flow_folder(*job)


def write_flow_folders(videos: Sequence[str], output: str, settings: FlowSettings, resize: str = "native",
                       flo: bool = False, *, overwrite: bool = False, jobs: int = 1,
                       shard: Tuple[int, int] = (0, 1), progress: bool = True) -> List[FlowFolder]:
    """The flow folders of `videos` under `output` (`write_flow_folder` for each one not finished already).

    Args:
        videos: video files or frame folders (their names must differ: they name the folders).
        output: the folder holding one flow folder per video.
        settings: the flow method, parameters, encoding and normalisation.
        resize: the `ResizePolicy` the frames are read at ("native", "fixed:HxW", "fit:N").
        flo: also write the flow fields as .flo files.
        overwrite: redo folders made for another request instead of refusing them.
        jobs: videos processed at once in worker processes (1: in this process, progress by frame;
            more: progress by finished video).
        shard: (i, n): only part i of n of the videos, parts balanced by frames (`dynsal.sharding`).
        progress: show a progress bar (frames) on stderr.

    Returns:
        One `FlowFolder` per video of the shard, in input order.

    Raises:
        DataError: two inputs with the same name, a folder made for another request (without
            `overwrite`), a video that cannot be decoded or worker processes that cannot start.
    """
    names = [video_name(v) for v in videos]
    if len(set(names)) != len(names):
        raise DataError("two inputs have the same name; their outputs would collide")
    settings_json = settings.to_json()
    chosen = select(list(videos), [(declared_frame_count(v) or (1,))[0] or 1 for v in videos], shard)
    finished = [finished_flow(v, output, settings_json, resize, flo, overwrite) for v in chosen]
    todo = [(v, output, settings_json, resize, flo, identity)
            for v, (identity, frames) in zip(chosen, finished) if frames is None]
    totals = [(declared_frame_count(job[0]) or (None,))[0] for job in todo]
    bar = progress_bar(None if None in totals else sum(totals), "dynsal flow", "frames", enabled=progress,
                       leave=True)
    with bar:
        if jobs > 1 and len(todo) > 1:
            with WorkerProcesses(jobs, error=DataError).pool() as pool:  # leaving it terminates the workers
                counts = []
                for count in pool.imap(_write_job, todo, chunksize=1):
                    counts.append(count)
                    bar.update(count)
        else:
            counts = [write_flow_folder(*job, on_frame=lambda: bar.update(1)) for job in todo]
    made = dict(zip((job[0] for job in todo), counts))
    return [FlowFolder(v, made[v], True) if v in made else FlowFolder(v, frames, False)
            for v, (_, frames) in zip(chosen, finished)]
