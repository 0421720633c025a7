"""Submodules that load on first attribute access (PEP 562), so that `import dynsal` stays light (no torch,
no OpenCV) while `dynsal.metrics`, `dynsal.data.flow` or `dynsal.engines.torch.solver` work as written
after a bare `import dynsal`, as the README's API table writes them."""
from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType
from typing import Callable


def submodule_loader(package: str) -> Callable[[str], ModuleType]:
    """A module `__getattr__` for `package` that imports `package.<name>` when that submodule exists.

    Raises (from the returned function):
        AttributeError: `name` is private or no submodule of `package`, as for any missing attribute.
    """
    def __getattr__(name: str) -> ModuleType:
        if not name.startswith("_") and importlib.util.find_spec(f"{package}.{name}") is not None:
            return importlib.import_module(f"{package}.{name}")
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
