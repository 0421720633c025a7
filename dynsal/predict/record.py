"""`settings.json` of a prediction output: what ran, which files it wrote, and the request it answered.

It is written last into the output folder, so a folder holding it is complete; `format:
dynsal-predict` marks the folder as dynsal's own, and its `files` and `videos` lists are all that
dynsal may ever remove there (`dynsal.predict.destination`). The request (`REQUEST_KEYS`) is what a
rerun compares: an output made for another request is not taken as done. The request includes the input's
identity (`input_identity`: size, modification time and SHA-256 of a file, one hash over a frame folder's
frames, `dynsal.data.identity`), so a video replaced under the same name is another request, and a stream,
which cannot be compared, never answers the same request twice.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List, Optional

from dynsal.data.identity import identity_change

RECORD_FILE = "settings.json"
RECORD_FORMAT = "dynsal-predict"
RECORD_VERSION = 2  # 2: the input's identity (input_identity)
#: what determines the maps: a rerun whose values differ does not count the output as done
REQUEST_KEYS = ("input", "net", "prototxt_sha256", "weights_sha256", "precision", "resize", "flow",
                "postprocessing", "frame_range", "outputs")
IDENTITY_KEY = "input_identity"  # also part of the request, compared by content (identity_change)
_SHOWN = 12  # characters of a long value (a checksum) shown in a difference


def read_record(folder: Path) -> Optional[Dict[str, Any]]:
    """The record of a prediction output folder, or None when it holds no dynsal-predict settings.json."""
    path = Path(folder) / RECORD_FILE
    if path.is_symlink() or not path.is_file():
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("format") != RECORD_FORMAT:
        return None
    if not all(isinstance(record.get(key), list) for key in ("files", "videos")):
        return None
    return record


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


def request_difference(recorded: Dict[str, Any], wanted: Dict[str, Any]) -> str:
    """What differs between a recorded request and a new one, as `key old → new, …` (the input's identity
    as `input content: sha256 … → … (…)`); "" when equal.

    Args:
        recorded: a record (read_record).
        wanted: the new request, {key: JSON value} for every key of REQUEST_KEYS, and IDENTITY_KEY.
    """
    wanted = json.loads(json.dumps(wanted))  # tuples → lists, as the record holds them
    old, new = {}, {}
    for key in REQUEST_KEYS:
        old.update(_flat(recorded.get(key), key))
        new.update(_flat(wanted.get(key), key))
    changes: List[str] = [f"{key} {_shown(old.get(key))} → {_shown(new.get(key))}"
                          for key in sorted(set(old) | set(new)) if old.get(key) != new.get(key)]
    changes.insert(0, identity_change(recorded.get(IDENTITY_KEY), wanted[IDENTITY_KEY]))
    return ", ".join(change for change in changes if change)
