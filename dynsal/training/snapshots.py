"""A solver's snapshots on disk: `<prefix>_iter_<N>.solverstate[.h5]` with the caffemodel it names.

`--resume latest` resumes from the newest complete one — the highest N whose solverstate reads and whose
caffemodel exists — so one job script serves the first run and every requeued one (docs/cluster.md).
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Optional

from dynsal.caffe import io
from dynsal.errors import DynsalError

_STATE = re.compile(r"_iter_(\d+)\.solverstate(\.h5)?$")


def latest_snapshot(prefix: str) -> Optional[Path]:
    """The newest complete solverstate of `prefix` (None when there is none); incomplete ones are skipped."""
    base = Path(prefix)
    folder = base.parent if str(base.parent) else Path(".")
    found = []
    for path in folder.glob(f"{base.name}_iter_*.solverstate*"):
        match = _STATE.search(path.name)
        if match and path.name.startswith(base.name + "_iter_"):
            found.append((int(match.group(1)), path))
    for _, path in sorted(found, reverse=True):
        try:
            state = io.read_solverstate(path)
        except (DynsalError, OSError):
            continue
        model = Path(state.learned_net) if state.learned_net else None
        if model is None or model.exists() or (path.parent / model.name).exists():
            return path
    return None
