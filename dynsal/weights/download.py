"""Resumable, verified downloads of weight files.

- The file grows as `<target>.part`; an interrupted download resumes with an HTTP Range request
  (a server that ignores Range restarts it from zero).
- Only a complete, verified file is renamed to its final name: SHA-256 when the registry has one,
  and always the structure (every learnable layer of the net, with the right shapes).
- Progress goes to stderr (tqdm when installed).
"""
from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request
from pathlib import Path

from dynsal import zoo
from dynsal.caffe import io
from dynsal.caffe.graph import build_graph
from dynsal.caffe.shapes import infer_shapes
from dynsal.caffe.weights import WeightsReport, match_weights
from dynsal.errors import DynsalError, WeightsMismatchError
from dynsal.progress import progress_bar
from dynsal.weights.registry import WeightsEntry

CHUNK = 1 << 20


def download(url: str, target: Path, timeout: float = 60, progress: bool = True) -> Path:
    """Download `url` to `target` via `<target>.part`, resuming a partial file; returns `target`.
    `progress`: show bytes, rate and ETA on stderr (`dynsal.progress`).

    Raises:
        DynsalError: the server cannot be reached or answers with an error (one line, with the fix).
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + ".part")
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # nothing left to fetch: the part file is complete
            part.replace(target)
            return target
        raise DynsalError(f"downloading {url}: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise DynsalError(f"cannot reach {url} ({getattr(exc, 'reason', exc)}); offline? download the file "
                          f"elsewhere and put it at {target}") from None
    with response:
        resumed = response.status == 206
        mode = "ab" if resumed else "wb"
        length = response.headers.get("Content-Length")
        total = (int(length) + (have if resumed else 0)) if length else None
        bar = progress_bar(total, target.name, "B", initial=have if resumed else 0, unit_scale=True, leave=True,
                           enabled=progress)
        with bar, open(part, mode) as handle:
            while True:
                chunk = response.read(CHUNK)
                if not chunk:
                    break
                handle.write(chunk)
                bar.update(len(chunk))
    if total is not None and part.stat().st_size != total:
        raise DynsalError(f"downloading {url}: the connection ended at {part.stat().st_size} of {total} bytes; "
                          "run the same command again to resume")
    os.replace(part, target)
    return target


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def verify(entry: WeightsEntry, path: Path) -> WeightsReport:
    """Check a weights file: SHA-256 when registered, and the layer structure of `entry.net` always.

    Raises:
        WeightsMismatchError: checksum or structure wrong (names the file and what differs).
    """
    if entry.sha256 and sha256(path) != entry.sha256:
        raise WeightsMismatchError(f"{path}: SHA-256 differs from the registry's {entry.sha256}; "
                                   "delete it and fetch again")
    _, params = infer_shapes(build_graph(zoo.deploy(entry.net)))
    report = match_weights(params, io.read_net(path))
    if not report.ok:
        raise WeightsMismatchError(f"{path} does not have the structure of {entry.net}: " + "; ".join(report.lines()))
    return report


def fetch(entry: WeightsEntry, folder: Path, url: str | None = None, progress: bool = True) -> Path:
    """Download (or resume) and verify `entry` into `folder`; an existing file is verified, not fetched.

    The download lands as `<file>.unverified` (growing as `.unverified.part`) and becomes `<file>` only
    after `verify` passes; a file that fails verification is deleted.
    """
    target = Path(folder) / entry.file
    if target.exists():
        verify(entry, target)
        return target
    staging = download(url or entry.url, target.with_name(target.name + ".unverified"), progress=progress)
    try:
        verify(entry, staging)
    except WeightsMismatchError:
        staging.unlink()
        raise
    staging.replace(target)
    return target
