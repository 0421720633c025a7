"""Resumable, validated, verified downloads of weight files, and the offline import of a local copy.

- The file grows as `<target>.part`, beside `<target>.part.json` recording the address and the
  server's validators (ETag, Last-Modified) and length. An interrupted download resumes with an
  HTTP Range request made conditional on them (If-Range: a strong ETag, else Last-Modified); the
  answer is kept only when it is 206 with a Content-Range starting where the part ends and the
  recorded length, else the download starts again from zero (a server that ignores Range, a file
  changed in between, no validator to resume safely). So a part never ends as a mix of two files.
- Only a complete, verified file gets its final name: SHA-256 when the registry has one, and always
  the structure (every learnable layer of the net, with the right shapes).
- The SHA-256 of every fetched or imported file is printed and recorded beside it as
  `<file>.sha256` (`sha256sum -c` reads it); a later fetch or verify of a file that no longer has it
  is an error.
- A `file:` URL (a lab's mirror on a shared file system; cluster nodes often have no internet) is
  copied and verified like an imported file, with no network.
- Progress goes to stderr (tqdm when installed).
"""
from __future__ import annotations

import json
import os
import re
import shutil
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import NamedTuple, Optional, Tuple

from dynsal.caffe import io
from dynsal.caffe.caffemodel import WeightsReport, match_weights
from dynsal.errors import DynsalError, WeightsMismatchError
from dynsal.files import atomic_output, sha256_file, write_atomic
from dynsal.progress import progress_bar
from dynsal.weights.origin import zoo_param_shapes
from dynsal.weights.registry import WeightsEntry

CHUNK = 1 << 20
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+)")


class Validators(NamedTuple):
    """What identifies the file a part was downloaded from (saved as `<part>.json`)."""

    url: str
    etag: Optional[str]
    last_modified: Optional[str]
    length: Optional[int]

    def if_range(self) -> Optional[str]:
        """The If-Range value: a strong ETag, else Last-Modified; None when there is neither."""
        if self.etag and not self.etag.startswith("W/"):
            return self.etag
        return self.last_modified


def _validators(url: str, response, start: int) -> Validators:
    length = response.headers.get("Content-Length")
    return Validators(url, response.headers.get("ETag"), response.headers.get("Last-Modified"),
                      int(length) + start if length is not None else None)


def _saved(part: Path, record: Path, url: str) -> Optional[Validators]:
    """The validators of a part that can be resumed (same address, a validator, a known length), else None."""
    try:
        saved = Validators(**json.loads(record.read_text()))
    except (OSError, ValueError, TypeError):
        return None
    usable = saved.url == url and saved.if_range() and saved.length and 0 < part.stat().st_size <= saved.length
    return saved if usable else None


def _request(url: str, timeout: float, offline_hint: str, headers: dict):
    try:
        return urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416:  # the range starts at the end: returned, for the caller to decide
            return exc
        raise DynsalError(f"downloading {url}: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise DynsalError(f"cannot reach {url} ({getattr(exc, 'reason', exc)}){offline_hint}") from None


def _continues(response, have: int, saved: Validators) -> bool:
    """Whether a 206 answer continues the saved part: Content-Range from `have`, the same length and ETag."""
    match = _CONTENT_RANGE.fullmatch((response.headers.get("Content-Range") or "").strip())
    etag = response.headers.get("ETag")
    return bool(match and int(match[1]) == have and int(match[3]) == saved.length and int(match[2]) < saved.length
                and (etag is None or etag == saved.etag))


def _open(url: str, part: Path, record: Path, timeout: float, offline_hint: str) -> Tuple[object, int]:
    """(response, bytes of the part it continues): a validated continuation of the part, else the whole file
    (the part is then discarded). The response is None when the part is already complete."""
    saved = _saved(part, record, url) if part.exists() else None
    if saved is not None:
        have = part.stat().st_size
        response = _request(url, timeout, offline_hint, {"Range": f"bytes={have}-", "If-Range": saved.if_range()})
        if getattr(response, "code", None) == 416 and have == saved.length:
            return None, have
        if getattr(response, "status", None) == 206 and _continues(response, have, saved):
            return response, have
        response.close()
    part.unlink(missing_ok=True)
    record.unlink(missing_ok=True)
    response = _request(url, timeout, offline_hint, {})
    if getattr(response, "code", None) == 416 or response.status != 200:
        response.close()
        raise DynsalError(f"downloading {url}: the server answered HTTP {response.status} to a plain request")
    write_atomic(record, json.dumps(_validators(url, response, 0)._asdict()).encode())
    return response, 0


def download(url: str, target: Path, timeout: float = 60, offline_hint: str = "", progress: bool = True) -> Path:
    """Download `url` to `target` via `<target>.part`, resuming a validated partial file; returns `target`.
    `progress`: bytes, rate and ETA on stderr (`dynsal.progress`).

    Raises:
        DynsalError: the server cannot be reached (`offline_hint` is added), answers with an error, or the
            connection ends early (one line, with the fix).
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + ".part")
    record = part.with_name(part.name + ".json")
    response, have = _open(url, part, record, timeout, offline_hint)
    if response is not None:
        with response:
            total = Validators(**json.loads(record.read_text())).length
            bar = progress_bar(total, target.name, "B", initial=have, unit_scale=True, leave=True, enabled=progress)
            with bar, open(part, "ab" if have else "wb") as handle:
                while True:
                    chunk = response.read(CHUNK)
                    if not chunk:
                        break
                    handle.write(chunk)
                    bar.update(len(chunk))
        size = part.stat().st_size
        if total is not None and size != total:
            raise DynsalError(f"downloading {url}: the connection ended at {size} of {total} bytes; "
                              "run the same command again to resume")
    os.replace(part, target)
    record.unlink(missing_ok=True)
    return target


def verify(entry: WeightsEntry, path: Path, digest: Optional[str] = None) -> WeightsReport:
    """Check a weights file: SHA-256 when registered, and the layer structure of `entry.net` always.

    Args:
        digest: the file's SHA-256 when already computed.

    Raises:
        WeightsMismatchError: checksum or structure wrong (names the file and what differs).
    """
    if entry.sha256 and (digest or sha256_file(path)) != entry.sha256:
        raise WeightsMismatchError(f"{path}: SHA-256 differs from the registry's {entry.sha256}; "
                                   "delete it and fetch again")
    report = match_weights(zoo_param_shapes(entry.net), io.read_net(path))
    if not report.ok:
        raise WeightsMismatchError(f"{path} does not have the structure of {entry.net}: " + "; ".join(report.lines()))
    return report


def checksum_path(path: Path) -> Path:
    """Where a fetched file's SHA-256 is recorded: `<file>.sha256`, in `sha256sum` format."""
    return path.with_name(path.name + ".sha256")


def recorded_sha256(path: Path) -> Optional[str]:
    """The SHA-256 recorded when `path` was fetched, or None."""
    try:
        return checksum_path(path).read_text().split()[0]
    except (OSError, IndexError):
        return None


def check_unchanged(path: Path) -> str:
    """The file's SHA-256, checked against the one recorded when it was fetched (when there is one).

    Raises:
        WeightsMismatchError: the file changed since it was fetched.
    """
    digest, recorded = sha256_file(path), recorded_sha256(path)
    if recorded is not None and recorded != digest:
        raise WeightsMismatchError(f"{path}: SHA-256 {digest} differs from {recorded}, recorded in "
                                   f"{checksum_path(path)} when it was fetched; the file changed: delete it and "
                                   "fetch again")
    return digest


def _record(path: Path, digest: str) -> None:
    write_atomic(checksum_path(path), f"{digest}  {path.name}\n".encode())


def fetch(entry: WeightsEntry, folder: Path, url: Optional[str] = None, progress: bool = True) -> Tuple[Path, str]:
    """Download (or resume) and verify `entry` into `folder`; an existing file is verified, not fetched.
    Returns (path, SHA-256), the checksum recorded beside the file. `progress`: as `download`.

    The download lands as `<file>.unverified` (growing as `.unverified.part`) and becomes `<file>` only
    after `verify` passes; a file that fails verification is deleted.
    """
    target = Path(folder) / entry.file
    if target.exists():
        digest = check_unchanged(target)
        verify(entry, target, digest)
        if recorded_sha256(target) is None:
            _record(target, digest)
        return target, digest
    address = url or entry.url
    local = local_file(address)
    if local is not None:  # a lab's mirror on a shared file system: copied and verified, no network
        return import_file(entry, local, folder)
    hint = (f"; offline? download {address} elsewhere, then import it: dynsal weights fetch {entry.name} "
            f"--file DOWNLOADED_FILE --dir {folder}")
    staging = download(address, target.with_name(target.name + ".unverified"), offline_hint=hint, progress=progress)
    digest = sha256_file(staging)
    try:
        verify(entry, staging, digest)
    except WeightsMismatchError:
        staging.unlink()
        raise
    staging.replace(target)
    _record(target, digest)
    return target, digest


def local_file(address: str) -> Optional[Path]:
    """The path of a `file:` URL (`file:///shared/models/x.caffemodel`, `file://localhost/...`); None for other
    schemes.

    Raises:
        DynsalError: a `file:` URL naming another host (mount its folder and give the local path).
    """
    parts = urllib.parse.urlsplit(address)
    if parts.scheme != "file":
        return None
    if parts.netloc not in ("", "localhost"):
        raise DynsalError(f"{address}: a file URL on host {parts.netloc!r}; mount that folder here and write "
                          "file:///PATH (or set DYNSAL_MODELS to a shared folder holding the weights)")
    return Path(urllib.request.url2pathname(parts.path))


def import_file(entry: WeightsEntry, source: Path, folder: Path) -> Tuple[Path, str]:
    """The offline path: copy a local `source` (downloaded elsewhere) into `folder` as `entry.file`, verified
    like a download; returns (path, SHA-256), the checksum recorded beside the file. Nothing is kept when
    verification fails, and an existing file is replaced only by a verified one.

    Raises:
        DynsalError: `source` does not exist; WeightsMismatchError: it fails verification.
    """
    source = Path(source)
    if not source.is_file():
        raise DynsalError(f"{source}: no such file to import")
    target = Path(folder) / entry.file
    with atomic_output(target) as tmp:
        shutil.copyfile(source, tmp)
        digest = sha256_file(tmp)
        verify(entry, tmp, digest)
    _record(target, digest)
    return target, digest
