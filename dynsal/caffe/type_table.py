"""Tables keyed by exact Caffe layer type strings (the torch engine's builders, the exporter's lowerings)."""
from __future__ import annotations

from typing import Callable, Dict


def registrar(table: Dict[str, Callable]):
    """A decorator factory `register(*types)` that puts the decorated function into `table` under each
    type; a type registered twice is a programming error (ValueError)."""
    def register(*types: str):
        def add(fn):
            for type_name in types:
                if type_name in table:
                    raise ValueError(f"layer type {type_name!r} registered twice")
                table[type_name] = fn
            return fn
        return add
    return register
