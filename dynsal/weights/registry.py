"""The weights registry: name -> net, file name, URL, checksum (where published), provenance.

Weights live in a local folder: $DYNSAL_MODELS, default `~/.cache/dynsal/models`. A registry file of
the same JSON layout can replace the shipped one (`--registry`), e.g. for a mirror.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Optional

from dynsal.errors import DynsalError

SHIPPED_REGISTRY = Path(__file__).with_name("registry.json")


@dataclass(frozen=True)
class WeightsEntry:
    """One registered set of weights."""

    name: str
    net: str  # a dynsal.zoo net name: the structure the file must have
    file: str
    url: str
    sha256: Optional[str]
    source: str


def models_dir() -> Path:
    """Where weights are kept: $DYNSAL_MODELS, else ~/.cache/dynsal/models."""
    return Path(os.environ.get("DYNSAL_MODELS", Path.home() / ".cache" / "dynsal" / "models"))


def load_registry(path=None) -> Dict[str, WeightsEntry]:
    """{name: entry} from a registry JSON file (default: the one shipped with dynsal)."""
    path = Path(path) if path else SHIPPED_REGISTRY
    try:
        data = json.loads(path.read_text())
        entries = [WeightsEntry(e["name"], e["net"], e["file"], e["url"], e.get("sha256"), e.get("source", ""))
                   for e in data["weights"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DynsalError(f"{path}: not a readable weights registry ({exc})") from None
    for entry in entries:
        _check_file_name(entry, path)
    return {entry.name: entry for entry in entries}


def _check_file_name(entry: WeightsEntry, registry: Path) -> None:
    """An entry's `file` must stay inside the weights folder: a relative path without `..` (a registry from
    a mirror or a stranger could otherwise write anywhere).

    Raises:
        DynsalError: naming the registry and the entry.
    """
    name = entry.file
    parts = Path(name).parts if isinstance(name, str) else ()
    if not parts or Path(name).is_absolute() or any(part in (".", "..") for part in parts) or "\\" in name:
        raise DynsalError(f"{registry}: entry {entry.name!r} has file {name!r}; it must be a file name inside the "
                          "weights folder (relative, without '..')")


def lookup(name: str, registry: Dict[str, WeightsEntry]) -> WeightsEntry:
    """The entry called `name`, or for a net name (e.g. "stsconv") the first entry for that net."""
    if name in registry:
        return registry[name]
    for entry in registry.values():
        if entry.net == name:
            return entry
    raise DynsalError(f"no registered weights called {name!r}; registered: {', '.join(registry) or 'none'}")


def local_path(entry: WeightsEntry, folder=None) -> Path:
    return Path(folder or models_dir()) / entry.file
