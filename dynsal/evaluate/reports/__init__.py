"""Report formats of `dynsal eval`, one module each (`as_<format>.py`); shared pieces in `common`."""
from __future__ import annotations

from pathlib import Path
from typing import Dict, Optional

from dynsal.errors import EvaluationError
from dynsal.paths import PathIndex


def check_report_paths(reports: Dict[str, Optional[str]], *evaluated) -> None:
    """Refuse report files that would land on or inside the predictions or the ground truth, or twice on one file.

    Args:
        reports: {option (e.g. "--csv"): path or None}.
        *evaluated: the folders evaluated (prediction folders, then the ground truth).

    Raises:
        EvaluationError: naming the option, the path and the folder it meets.
    """
    protected = PathIndex(list(evaluated))
    named: Dict[Path, str] = {}
    for option, path in reports.items():
        if not path:
            continue
        meeting = protected.find(path)
        if meeting:
            raise EvaluationError(f"{option} {path} would be written on or inside {meeting[1]}, which is evaluated; "
                                  "write the report elsewhere")
        other = named.setdefault(Path(path).resolve(), option)
        if other != option:
            raise EvaluationError(f"{other} and {option} both name {path}; give each report its own file")
