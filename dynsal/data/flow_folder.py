"""A video's optical flow as files: `OUT/<video>/<frame>.png` flow images (+ `.flo` fields) and
`flow_settings.json`, what `dynsal flow` writes and `dynsal predict --flow-settings` reads back.

The flow image of frame t is the motion from frame t−1 to t (frame 0: 0 → 1), frames named by their
0-based index with 6 digits. `flow_settings.json` ({"flow": FlowSettings, "resize": policy}) is
written last, so a folder without it was interrupted.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional

from dynsal.data.flo import write_flo
from dynsal.data.flow import FlowSettings, flow_inputs
from dynsal.data.images import write_json, write_png
from dynsal.data.video import ResizePolicy, read_frames, video_name

SETTINGS_FILE = "flow_settings.json"


def write_flow_folder(video: str, output: str, settings_json: str, resize: str, flo: bool,
                      on_frame: Optional[Callable[[], None]] = None) -> int:
    """Write one video's flow images (and .flo files) under `output/<video>/`; returns the number of
    frames. Arguments are plain values so worker processes can run it; `on_frame` is called after each
    frame (progress)."""
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
    write_json(folder / SETTINGS_FILE, record)  # last: a folder without it is incomplete
    return count
