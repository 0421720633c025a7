"""What an input was when dynsal read it: its identity, recorded with every output made from it and compared
when a rerun would keep that output.

- a file (video, still image): `{"kind": "file", "size", "mtime_ns", "sha256"}`, the SHA-256 of its bytes;
- a frame folder: `{"kind": "frames", "frames", "size", "mtime_ns", "sha256"}`: the number of frames (the
  image files a folder is read as, `dynsal.data.video.frame_files`), their total size and newest
  modification time, and one SHA-256 over the name, size and SHA-256 of each frame in reading order (so a
  frame renamed, replaced, added or removed changes it);
- a stream or webcam: `{"kind": "stream"}`: what it gives now cannot be compared with what it gave before.

A rerun that would keep an output compares the request it answered with the new one (`request_difference`:
the identity and every setting that determined the output). The content hash decides whether two
identities are the same input; size and modification time are recorded to explain a change, not to decide
it, since `cp -p` and `rsync -t` give a file other bytes with the old time, and `touch` a new time to the
same bytes. Each file is read once, in chunks (`dynsal.files.sha256_file`), whatever its size.
`unchanged_since` re-reads only the sizes and times, to refuse an input that changed while it was decoded.
"""
from __future__ import annotations

import datetime
import hashlib
import json
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Union

from dynsal.data.video import frame_files
from dynsal.errors import DataError
from dynsal.files import sha256_file

Identity = Dict[str, Any]
STREAM: Identity = {"kind": "stream"}
IDENTITY_KEY = "input_identity"  # where a record holds the identity of its input
_SHOWN = 12  # hex digits of a hash (characters of a long value) shown in a message


def _read_error(path: Path, exc: OSError) -> DataError:
    if isinstance(exc, FileNotFoundError):
        return DataError(f"{path}: no such video file or frame folder")
    return DataError(f"{path}: cannot read it ({exc.strerror or exc}); fix its permissions or remove it from the "
                     "inputs")


def file_identity(path: Union[str, Path]) -> Identity:
    """The identity of one file (module docstring).

    Raises:
        DataError: the file cannot be read (naming it).
    """
    path = Path(path)
    try:
        stat = path.stat()
        digest = sha256_file(path)
    except OSError as exc:
        raise _read_error(path, exc) from None
    return {"kind": "file", "size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": digest}


def folder_identity(folder: Union[str, Path]) -> Identity:
    """The identity of a frame folder (module docstring), from its frames' own identities."""
    frames = [(path.name, file_identity(path)) for path in frame_files(folder)]
    digest = hashlib.sha256()
    for name, identity in frames:
        digest.update(f"{name}\0{identity['size']}\0{identity['sha256']}\n".encode("utf-8", "surrogateescape"))
    return {"kind": "frames", "frames": len(frames), "size": sum(i["size"] for _, i in frames),
            "mtime_ns": max((i["mtime_ns"] for _, i in frames), default=0), "sha256": digest.hexdigest()}


def input_identity(source: Union[str, Path, int], stream: bool = False) -> Identity:
    """The identity of a video file, image, frame folder, or (`stream`) a stream URL or webcam index."""
    if stream:
        return dict(STREAM)
    return folder_identity(source) if Path(source).is_dir() else file_identity(source)


def _short(digest: Optional[str]) -> str:
    return f"{digest[:_SHOWN]}…" if digest else "none"


def _when(mtime_ns: int) -> str:
    return datetime.datetime.fromtimestamp(mtime_ns / 1e9).isoformat(timespec="seconds")


def identity_change(recorded: Optional[Identity], current: Identity) -> str:
    """What changed between a recorded identity and the current one, one phrase; "" when it is the same input.

    E.g. `input content: sha256 1a2b3c4d5e6f… → 9f8e7d6c5b4a… (size 5,210 → 8,990 bytes, modified
    2026-12-07T12:00:01 → 2026-12-07T12:04:40)`. A stream is never the same input.
    """
    if current.get("kind") == "stream" or (recorded or {}).get("kind") == "stream":
        return "input: a stream, which cannot be compared with what it gave before"
    if not isinstance(recorded, dict) or "sha256" not in recorded:
        return f"input content: not recorded → sha256 {_short(current['sha256'])} (made by an older dynsal)"
    if recorded.get("kind") == current["kind"] and recorded["sha256"] == current["sha256"]:
        return ""
    details: List[str] = []
    if recorded.get("kind") != current["kind"]:
        details.append(f"{recorded.get('kind')} → {current['kind']}")
    if recorded.get("frames") != current.get("frames"):
        details.append(f"frames {recorded.get('frames')} → {current.get('frames')}")
    if recorded.get("size") != current["size"]:
        details.append(f"size {recorded.get('size', 0):,} → {current['size']:,} bytes")
    if recorded.get("mtime_ns") != current["mtime_ns"]:
        details.append(f"modified {_when(recorded.get('mtime_ns', 0))} → {_when(current['mtime_ns'])}")
    else:
        details.append("same modification time")
    return (f"input content: sha256 {_short(recorded['sha256'])} → {_short(current['sha256'])} "
            f"({', '.join(details)})")


def hash_change(recorded: Optional[str], current: Optional[str]) -> str:
    """`sha256 1a2b3c4d5e6f… → 9f8e7d6c5b4a…` (either may be None: the file was added or removed)."""
    return f"sha256 {_short(recorded)} → {_short(current)}"


def unchanged_since(source: Union[str, Path], identity: Identity) -> None:
    """Check that a file or frame folder still has the size and modification time of `identity` (taken
    before it was decoded); streams are not checked.

    Raises:
        DataError: it changed while it was read (naming it): what was made from it may mix two contents.
    """
    if identity.get("kind") not in ("file", "frames"):
        return
    path = Path(source)
    try:
        if identity["kind"] == "file":
            stat = path.stat()
            now = (stat.st_size, stat.st_mtime_ns, None)
        else:
            stats = [p.stat() for p in frame_files(path)]
            now = (sum(s.st_size for s in stats), max((s.st_mtime_ns for s in stats), default=0), len(stats))
    except OSError as exc:
        raise _read_error(path, exc) from None
    if now != (identity["size"], identity["mtime_ns"], identity.get("frames")):
        raise DataError(f"{path}: changed while dynsal read it (size {identity['size']:,} → {now[0]:,} bytes, "
                        f"modified {_when(identity['mtime_ns'])} → {_when(now[1])}); nothing made from it was kept: "
                        f"rerun once it is complete")



def _flat(value: Any, prefix: str) -> Dict[str, Any]:
    if isinstance(value, dict):
        flat: Dict[str, Any] = {}
        for key in sorted(value):
            flat.update(_flat(value[key], f"{prefix}.{key}"))
        return flat
    return {prefix: value}


def _shown(value: Any) -> str:
    text = json.dumps(value)
    return text[:_SHOWN + 1] + "…\"" if isinstance(value, str) and len(value) > 2 * _SHOWN else text


def request_difference(recorded: Dict[str, Any], wanted: Dict[str, Any], keys: Sequence[str]) -> str:
    """What differs between a recorded request and a new one: the input's identity first (`identity_change`),
    then `key old → new` for each (flattened) setting of `keys`, joined by ", "; "" when it is the same request.

    Args:
        recorded: the record of an earlier output.
        wanted: the new request: {key: JSON value} for every key of `keys`, and IDENTITY_KEY.
        keys: the settings that determine the output.
    """
    wanted = json.loads(json.dumps(wanted))  # tuples → lists, as the record holds them
    old, new = {}, {}
    for key in keys:
        old.update(_flat(recorded.get(key), key))
        new.update(_flat(wanted.get(key), key))
    changes: List[str] = [identity_change(recorded.get(IDENTITY_KEY), wanted[IDENTITY_KEY])]
    changes += [f"{key} {_shown(old.get(key))} → {_shown(new.get(key))}"
                for key in sorted(set(old) | set(new)) if old.get(key) != new.get(key)]
    return ", ".join(change for change in changes if change)
