"""Scripts that tests run must use the interpreter running the tests, not whatever `python3` PATH finds
(a venv's python running the suite without the venv activated finds another one)."""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Dict

WRONG_PYTHON_STATUS = 97


def this_python_only(env: Dict[str, str], folder: Path) -> Dict[str, str]:
    """`env` with PYTHON set to this interpreter and, first on PATH, a `python3` that fails saying it was run
    (exit status 97), so a script that ignores $PYTHON fails the test instead of passing by luck."""
    folder.mkdir(parents=True, exist_ok=True)
    impostor = folder / "python3"
    impostor.write_text(f"#!/bin/sh\necho 'python3 from PATH was run: use $PYTHON ({sys.executable})' >&2\n"
                        f"exit {WRONG_PYTHON_STATUS}\n")
    impostor.chmod(0o755)
    return dict(env, PYTHON=sys.executable, PATH=f"{folder}{os.pathsep}{env.get('PATH', '')}")
