"""Progress bars for long work: tqdm on stderr when it is installed (an optional dependency)."""
from __future__ import annotations

import sys
from typing import Optional


def progress_bar(total: Optional[int], desc: str, unit: str = "it", initial: int = 0, enabled: bool = True,
                 unit_scale: bool = False, leave: bool = False):
    """A tqdm bar (with rate and ETA), or None when disabled or tqdm is missing."""
    if not enabled:
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, initial=initial, desc=desc, unit=unit, unit_scale=unit_scale, file=sys.stderr,
                leave=leave)
