"""Where a path lies relative to others: the rule behind "an output never lands on or inside an input".

Paths are compared after `Path.resolve()` (symbolic links followed, `.` and `..` removed), so
`shots`, `./shots` and `/abs/path/shots` are one folder, and `results/run1/..` is `results`.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Dict, Iterable, Optional, Tuple, Union

PathLike = Union[str, "os.PathLike[str]"]


def absolute(path: PathLike) -> Path:
    """`path` resolved to an absolute path without `.`, `..` or symbolic links (it need not exist)."""
    return Path(path).resolve()


class PathIndex:
    """Protected paths (inputs, ground truth), resolved once, that other paths are checked against.

    Args:
        paths: the protected files and folders.
    """

    def __init__(self, paths: Iterable[PathLike]):
        self._paths: Dict[Path, Path] = {absolute(path): Path(path) for path in paths}
        self._holders: Dict[Path, Path] = {}
        for resolved, given in self._paths.items():
            for parent in resolved.parents:
                self._holders.setdefault(parent, given)

    def find(self, path: PathLike) -> Optional[Tuple[str, Path]]:
        """How `path` meets a protected path: ("is", p) when it is p, ("inside", p) when it lies inside the
        folder p, ("holds", p) when p lies inside it; None when it meets none (p as given to the index)."""
        resolved = absolute(path)
        if resolved in self._paths:
            return "is", self._paths[resolved]
        for parent in resolved.parents:
            if parent in self._paths:
                return "inside", self._paths[parent]
        if resolved in self._holders:
            return "holds", self._holders[resolved]
        return None
