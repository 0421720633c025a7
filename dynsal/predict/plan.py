"""The checks `dynsal predict` makes before any work, so a run that would lose data does nothing.

For every input: its output name is a plain file name; none of its output paths
(`OutputSlot.paths`) is an input, lies inside an input folder, or holds an input; no two inputs
write one path; no two frames of a frame folder give one map name (`f001.png` and `f001.jpg`);
and what already exists at its output paths was made by dynsal (`OutputSlot.check`). The same
ownership check runs again under each input's lock just before it is written.
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Sequence

from dynsal.data.video import frame_files
from dynsal.errors import OutputError
from dynsal.paths import PathIndex, absolute
from dynsal.predict.destination import OutputSlot
from dynsal.predict.inputs import PredictInput
from dynsal.predict.outputs import OutputOptions

_MEETS = {
    "is": "the output {path} would be the input {input} itself",
    "inside": "the output {path} would be inside the input folder {input}",
    "holds": "the output {path} would replace a folder holding the input {input}",
}


def check_frame_names(folder: Path) -> None:
    """Refuse a frame folder where two frames share a name stem: their maps would overwrite each other."""
    seen: Dict[str, Path] = {}
    for path in frame_files(folder):
        if path.stem in seen:
            raise OutputError(f"{seen[path.stem]} and {path} would both give the map {path.stem}.png; remove or "
                              "rename one of them")
        seen[path.stem] = path


def check_outputs(out_dir: Path, inputs: Sequence[PredictInput], options: OutputOptions,
                  overwrite: bool = False) -> List[OutputSlot]:
    """Check every input's outputs before any work; returns their slots.

    Args:
        out_dir: the output folder the user named.
        inputs: the inputs of the run.
        options: which outputs are written.
        overwrite: finished outputs will be replaced (they must hold only what dynsal wrote).

    Raises:
        OutputError: one line naming the first output that would lose data, and what to do.
    """
    out_dir = Path(out_dir)
    if (out_dir.exists() or out_dir.is_symlink()) and not out_dir.is_dir():
        raise OutputError(f"{out_dir} exists and is not a folder; choose another output folder (-o)")
    protected = PathIndex(item.path for item in inputs if item.kind != "stream")  # a URL or webcam is no file
    writers: Dict[Path, PredictInput] = {}
    slots = []
    for item in inputs:
        slot = OutputSlot(out_dir, options.video_name(item.name), options.videos(still=item.kind == "image"))
        for path in slot.paths():
            meeting = protected.find(path)
            if meeting:
                relation, input_path = meeting
                raise OutputError(_MEETS[relation].format(path=path, input=input_path)
                                  + "; choose an output folder (-o) outside the inputs")
            other = writers.setdefault(absolute(path), item)
            if other is not item:
                raise OutputError(f"the inputs {other.path} and {item.path} would both write {path}; rename one")
        if item.kind == "frames":
            check_frame_names(item.path)
        slot.check(overwrite)
        slots.append(slot)
    return slots
