"""Subcommands of the `dynsal` command: each module has `add_arguments(parser)` and `run(args) -> int`."""
from __future__ import annotations

import argparse
import json
from typing import Any, Tuple

from dynsal.errors import DynsalError


def parse_shard(text: str) -> Tuple[int, int]:
    """`--shard i/n` -> (i, n) with 0 <= i < n (shared by predict and the dataset builds)."""
    index, sep, count = text.partition("/")
    if not (sep and index.isdigit() and count.isdigit() and int(index) < int(count)):
        raise DynsalError(f"--shard {text!r}: write it as i/n with 0 <= i < n, e.g. 0/4")
    return int(index), int(count)


def plural(number: int, noun: str) -> str:
    """A count with its noun: "1 map", "2 maps", "0 maps"."""
    return f"{number} {noun}{'' if number == 1 else 's'}"


def parse_parameter(text: str) -> Tuple[str, Any]:
    """`NAME=VALUE` -> (name, value), the value read as JSON when it is JSON (numbers, true), else text."""
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    name, value = text.split("=", 1)
    try:
        return name, json.loads(value)
    except json.JSONDecodeError:
        return name, value
