"""List, download and verify published weights.

  dynsal weights list
  dynsal weights fetch stsconv             # into $DYNSAL_MODELS (default ~/.cache/dynsal/models)
  dynsal weights fetch stsconv --file ~/Downloads/stsconvnet.caffemodel    # offline: import a copy
  dynsal weights verify stsconv [--file stsconvnet.caffemodel]

Downloads show progress, resume after an interruption (run the same command again; a resume is
checked against the server's ETag/Last-Modified and Content-Range, else the download starts again)
and keep a file only once its structure (and checksum, where one is published) is verified. The
SHA-256 of every fetched or imported file is printed and recorded as <file>.sha256 beside it.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from dynsal.errors import DynsalError
from dynsal.weights.download import check_unchanged, checksum_path, fetch, import_file, verify
from dynsal.weights.registry import load_registry, local_path, lookup, models_dir


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=("list", "fetch", "verify"))
    parser.add_argument("name", nargs="?", help="registered weights name, or a net name (e.g. stsconv)")
    parser.add_argument("--dir", help="weights folder (default: $DYNSAL_MODELS or ~/.cache/dynsal/models)")
    parser.add_argument("--file", help="fetch: import this local copy (downloaded elsewhere) instead of downloading; "
                        "verify: check this file instead of the one in the weights folder")
    parser.add_argument("--url", help="fetch from this address instead of the registered one (a mirror)")
    parser.add_argument("--registry", help="a registry JSON file to use instead of the shipped one")


def run(args: argparse.Namespace) -> int:
    registry = load_registry(args.registry)
    folder = Path(args.dir) if args.dir else models_dir()
    if args.action == "list":
        for entry in registry.values():
            path = local_path(entry, folder)
            state = f"present at {path}" if path.exists() else "not downloaded"
            checksum = "sha256 registered" if entry.sha256 else "no published checksum"
            print(f"{entry.name:20s} net {entry.net:8s} {state}; {checksum}\n    {entry.source}")
        return 0
    if not args.name:
        raise DynsalError(f"weights {args.action}: name the weights (one of: {', '.join(registry)})")
    entry = lookup(args.name, registry)
    if args.action == "fetch":
        if args.file and args.url:
            raise DynsalError("weights fetch: give --file (a local copy) or --url (a mirror), not both")
        path, digest = import_file(entry, Path(args.file), folder) if args.file else fetch(entry, folder, args.url,
                                                                                               progress=not args.quiet)
        print(f"{entry.name}: verified at {path}\nsha256 {digest} (recorded in {checksum_path(path)})")
        return 0
    path = Path(args.file) if args.file else local_path(entry, folder)
    if not path.exists():
        raise DynsalError(f"{path} not found: run `dynsal weights fetch {entry.name}`, or download {entry.url} "
                          f"and import it with `dynsal weights fetch {entry.name} --file DOWNLOADED_FILE`")
    digest = check_unchanged(path)
    report = verify(entry, path, digest)
    print(f"{path}: fits {entry.net} ({len(report.matched)} layers with weights); sha256 {digest}")
    return 0
