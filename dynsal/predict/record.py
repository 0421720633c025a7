"""`settings.json` of a prediction output: what ran, which files it wrote, and the request it answered.

It is written last into the output folder, so a folder holding it is complete; `format:
dynsal-predict` marks the folder as dynsal's own, and its `files` and `videos` lists are all that
dynsal may ever remove there (`dynsal.predict.destination`). The request (`REQUEST_KEYS`) is what a
rerun compares (`dynsal.data.identity.request_difference`): an output made for another request is not taken
as done. The request includes the input's identity (`input_identity`: size, modification time and SHA-256 of
a file, one hash over a frame folder's frames), so a video replaced under the same name is another request,
and a stream, which cannot be compared, never answers the same request twice.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, Optional

RECORD_FILE = "settings.json"
RECORD_FORMAT = "dynsal-predict"
RECORD_VERSION = 2  # 2: the input's identity (input_identity)
#: what determines the maps: a rerun whose values differ does not count the output as done
REQUEST_KEYS = ("input", "net", "prototxt_sha256", "weights_sha256", "precision", "resize", "flow",
                "postprocessing", "frame_range", "outputs")


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
