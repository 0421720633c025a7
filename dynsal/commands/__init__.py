"""Subcommands of the `dynsal` command: each module has `add_arguments(parser)` and `run(args) -> int`."""
from __future__ import annotations

from typing import Tuple

from dynsal.errors import DynsalError


def parse_shard(text: str) -> Tuple[int, int]:
    """`--shard i/n` -> (i, n) with 0 <= i < n (shared by predict and the dataset builds)."""
    index, sep, count = text.partition("/")
    if not (sep and index.isdigit() and count.isdigit() and int(index) < int(count)):
        raise DynsalError(f"--shard {text!r}: write it as i/n with 0 <= i < n, e.g. 0/4")
    return int(index), int(count)
