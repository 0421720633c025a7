"""Where one input's outputs go, and the rules that keep everything else in the output folder safe.

For an input named NAME under the output folder OUT:

    OUT/NAME/              its maps (+ maps.npz) and settings.json (written last): the finished output
    OUT/NAME_overlay.mp4   its videos (`_side_by_side.mp4` too, on request)
    OUT/.NAME.partial/     the output being made (holding the marker `.dynsal-partial`), renamed to
                           OUT/NAME when complete, so a folder OUT/NAME is always complete
    OUT/.NAME.lock         the lock held while NAME is written (`dynsal.lock`)
    OUT/.NAME.replaced/    a finished output being removed because `--overwrite` replaced it

dynsal removes or replaces only what it made: a folder OUT/NAME whose settings.json is a dynsal
record (`dynsal.predict.record`), and then only the files that record lists (in the folder, or in its
`maps/` sub-folder for the dhf1k layout); the videos a record
lists; a `.partial` folder holding the marker. Anything else at these paths makes `check` refuse
with one line, before any work. A commit is a few renames that a rerun finishes (`recover`) when
an interruption stopped them halfway, so an interrupted run never leaves a mix of two outputs.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from dynsal.data.ground_truth import MAPS_FOLDER
from dynsal.data.identity import request_difference
from dynsal.errors import OutputError
from dynsal.files import sync_folder
from dynsal.lock import OutputLock, is_dynsal_lock
from dynsal.predict.record import RECORD_FILE, REQUEST_KEYS, read_record

PARTIAL_MARKER = ".dynsal-partial"
VIDEO_KINDS = ("overlay", "side_by_side")


def listed_file(name) -> bool:
    """Whether a record's file entry is one dynsal writes: a plain file name, or one in `maps/` (a record is
    not trusted with other paths)."""
    if not isinstance(name, str) or name in (".", "..", RECORD_FILE):
        return False
    parts = name.split("/")
    return (len(parts) == 1 or (len(parts) == 2 and parts[0] == MAPS_FOLDER)) and parts[-1] not in ("", ".", "..")


def foreign_files(folder: Path, record: Dict) -> List[str]:
    """What `folder` holds (its files and those of its `maps/`) that `record` does not list."""
    listed = {name for name in record["files"] if listed_file(name)} | {RECORD_FILE}
    found = []
    for entry in sorted(os.listdir(folder)):
        if entry == MAPS_FOLDER and (folder / entry).is_dir() and not (folder / entry).is_symlink():
            found += [f"{entry}/{name}" for name in sorted(os.listdir(folder / entry))]
        else:
            found.append(entry)
    return [name for name in found if name not in listed]


def check_name(name: str) -> None:
    """Refuse an output name that is not one plain, visible file name (e.g. '', '.', '..', 'a/b', '.x')."""
    if not name or name.startswith(".") or any(ch in name for ch in "/\\\0"):
        raise OutputError(f"{name!r} cannot name an output folder (it must be a plain file name that does not "
                          "start with '.'); rename the input")


class OutputSlot:
    """One input's place in the output folder (see the module docstring for the layout and rules).

    Args:
        out_dir: the output folder the user named.
        name: the input's output name (a plain file name).
        videos: the video kinds this input writes (a subset of VIDEO_KINDS).
    """

    def __init__(self, out_dir: Path, name: str, videos: Sequence[str] = ()):
        check_name(name)
        self.out_dir, self.name = Path(out_dir), name
        self.final = self.out_dir / name
        self.staging = self.out_dir / f".{name}.partial"
        self.lock_path = self.out_dir / f".{name}.lock"
        self.replaced = self.out_dir / f".{name}.replaced"
        self.videos: Dict[str, Path] = {kind: self.out_dir / self.video_name(kind) for kind in videos}

    def video_name(self, kind: str) -> str:
        """The file name of this input's video of `kind` (e.g. `clip_overlay.mp4`)."""
        return f"{self.name}_{kind}.mp4"

    def paths(self) -> List[Path]:
        """Every path this input may create, replace or remove."""
        return [self.final, self.staging, self.lock_path, self.replaced, *self.videos.values()]

    # ------------------------------------------------------------------------------------------ checks
    def record(self) -> Optional[Dict]:
        """The record of the finished output, or None when there is none."""
        return None if self.final.is_symlink() else read_record(self.final)

    def finished_for(self, request: Dict) -> Dict:
        """The record of the finished output, when it answers `request` and holds every file it lists.

        Raises:
            OutputError: it answers another request (naming each difference), or a file it lists is missing.
        """
        record = self.record()
        if record is None:
            raise OutputError(f"{self.final}: no finished output (no settings.json of dynsal's)")
        difference = request_difference(record, request, REQUEST_KEYS)
        if difference:
            raise OutputError(f"{self.final} holds the maps of another request ({difference}); rerun with "
                              "--overwrite to replace them, or choose another output folder (-o)")
        missing = [self.final / name for name in record["files"] if not (self.final / name).is_file()]
        missing += [self.out_dir / name for name in self._own_videos(record) if not (self.out_dir / name).is_file()]
        if missing:
            raise OutputError(f"{missing[0]} is missing from the finished output {self.final}; rerun with "
                              "--overwrite to redo it")
        return record

    def _staged_record(self) -> Optional[Dict]:
        return None if self.staging.is_symlink() else read_record(self.staging)

    def _recorded_videos(self) -> set:
        """Video names that a record of this slot (finished, staged or being replaced) claims."""
        claimed = set()
        for record in (self.record(), self._staged_record(), read_record(self.replaced)):
            claimed.update(self._own_videos(record))
        return claimed

    def _own_videos(self, record: Optional[Dict]) -> List[str]:
        """The videos a record lists, kept only where they are this slot's names (a record is not trusted
        with other paths)."""
        allowed = {self.video_name(kind) for kind in VIDEO_KINDS}
        return [name for name in (record or {}).get("videos", []) if name in allowed]

    @staticmethod
    def _ours_or_empty(folder: Path) -> bool:
        """A staging or replaced folder is dynsal's when it holds the marker or a record; an empty one (just
        created, or emptied) holds nothing to lose."""
        return ((folder / PARTIAL_MARKER).is_file() or read_record(folder) is not None
                or not any(folder.iterdir()))

    def check(self, overwrite: bool) -> None:
        """Refuse (OutputError) when a path of this slot holds something dynsal did not make.

        Args:
            overwrite: the finished output will be replaced: it must hold only the files its record lists.
        """
        not_ours = "exists and was not made by dynsal predict; move it away or choose another output folder (-o)"
        if self.final.exists() or self.final.is_symlink():
            record = self.record()
            if not self.final.is_dir() or record is None:
                raise OutputError(f"{self.final} {not_ours}")
            if overwrite:
                foreign = foreign_files(self.final, record)
                if foreign:
                    raise OutputError(f"{self.final} holds {', '.join(foreign[:3])}"
                                      f"{' …' if len(foreign) > 3 else ''}, which dynsal did not write; move "
                                      "it out before --overwrite replaces the folder")
        if self.staging.exists() or self.staging.is_symlink():
            if self.staging.is_symlink() or not self.staging.is_dir() or not self._ours_or_empty(self.staging):
                raise OutputError(f"{self.staging} {not_ours}")
        if self.replaced.exists() or self.replaced.is_symlink():
            if self.replaced.is_symlink() or not self.replaced.is_dir() or not self._ours_or_empty(self.replaced):
                raise OutputError(f"{self.replaced} {not_ours}")
        if (self.lock_path.exists() or self.lock_path.is_symlink()) and not is_dynsal_lock(self.lock_path):
            raise OutputError(f"{self.lock_path} {not_ours}")
        claimed = self._recorded_videos()
        for path in self.videos.values():
            if path.exists() or path.is_symlink():
                if path.is_symlink() or not path.is_file() or path.name not in claimed:
                    raise OutputError(f"{path} {not_ours}")

    def lock(self) -> OutputLock:
        """The lock to hold while this input's outputs are made or replaced (entering it creates the output
        folder)."""
        return OutputLock(self.lock_path, str(self.final), "dynsal predict")

    # ------------------------------------------------------------------------------------------ changes
    def recover(self) -> None:
        """Finish a commit an interruption stopped halfway, or drop an unfinished output (hold the lock)."""
        if self.staging.is_dir() and not self.staging.is_symlink():
            if self._staged_record() is not None:
                self.commit()
            else:
                shutil.rmtree(self.staging)
        if self.replaced.is_dir() and not self.replaced.is_symlink():
            self._remove_replaced(keep=self._own_videos(self.record()))

    def start(self) -> Path:
        """Create the (empty, marked) folder the new output is written into; returns it."""
        self.staging.mkdir()
        (self.staging / PARTIAL_MARKER).write_bytes(b"")
        return self.staging

    def discard(self) -> None:
        """Drop the unfinished output."""
        shutil.rmtree(self.staging, ignore_errors=True)

    def commit(self) -> Path:
        """Make the staged output (its record written last) the finished one, replacing an older one."""
        record = self._staged_record()
        if record is None:
            raise OutputError(f"{self.staging}: no settings.json; the output is not complete")
        new_videos = self._own_videos(record)
        for name in new_videos:
            if (self.staging / name).is_file():
                os.replace(self.staging / name, self.out_dir / name)
        (self.staging / PARTIAL_MARKER).unlink(missing_ok=True)
        sync_folder(self.out_dir)  # the videos are in place before the folder that lists them
        if self.replaced.is_dir():
            self._remove_replaced(keep=new_videos)
        if self.final.is_dir():
            os.replace(self.final, self.replaced)
        os.replace(self.staging, self.final)
        sync_folder(self.out_dir)
        if self.replaced.is_dir():
            self._remove_replaced(keep=new_videos)
        return self.final

    def _remove_replaced(self, keep: Sequence[str]) -> None:
        """Remove a replaced output: the files and videos its record lists (not `keep`), then its folder."""
        record = read_record(self.replaced)
        if record is not None:
            for name in set(self._own_videos(record)) - set(keep):
                video = self.out_dir / name
                if video.is_file() and not video.is_symlink():
                    video.unlink()
            for name in record["files"]:
                if listed_file(name):
                    (self.replaced / name).unlink(missing_ok=True)
            maps = self.replaced / MAPS_FOLDER
            if maps.is_dir() and not maps.is_symlink() and not any(maps.iterdir()):
                maps.rmdir()
            (self.replaced / RECORD_FILE).unlink()
        try:
            self.replaced.rmdir()
        except OSError:
            raise OutputError(f"{self.replaced} still holds files dynsal did not write; move them out and "
                              "remove the folder") from None
