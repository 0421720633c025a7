"""Tables keyed by exact Caffe type strings: layer types (the shape rules, the torch engine's builders, the
exporter's lowerings) and solver types (the torch solver's update rules), registered as Caffe's layer_factory.hpp
registers its creators: a type registered twice is fatal."""
from __future__ import annotations

from typing import Callable, Dict


def registrar(table: Dict[str, Callable], kind: str = "layer type"):
    """A decorator factory `register(*types)` that puts the decorated function into `table` under each
    type; a type registered twice is a programming error (ValueError naming the `kind` of type)."""
    def register(*types: str):
        def add(fn):
            for type_name in types:
                if type_name in table:
                    raise ValueError(f"{kind} {type_name!r} registered twice")
                table[type_name] = fn
            return fn
        return add
    return register
