"""List the networks of the zoo, or write their definitions.

Examples:
  dynsal zoo list
  dynsal zoo write prototxt/        # regenerate the checked-in prototxt/ folder
"""
from __future__ import annotations

import argparse

from dynsal import zoo


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=("list", "write"), help="list the nets, or write their files")
    parser.add_argument("folder", nargs="?", default="prototxt",
                        help="where `write` puts the files (default: prototxt)")


def run(args: argparse.Namespace) -> int:
    if args.action == "list":
        for net in zoo.NETS.values():
            inputs = ", ".join(zoo.input_names(net))
            print(f"{net.name:8s} {net.title:12s} inputs {inputs:15s} {net.description}")
        return 0
    for path in zoo.write_all(args.folder):
        print(path)
    return 0
