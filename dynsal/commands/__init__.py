"""Subcommands of the `dynsal` command: each module has `add_arguments(parser)` and `run(args) -> int`."""
from __future__ import annotations

import argparse
import json
from typing import Any, Tuple


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
