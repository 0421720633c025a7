"""Files written safely: a complete file or none, with the user's umask, through exclusive temporary names.

Every file dynsal writes in one piece goes through `write_atomic` (bytes; `write_json` for JSON) or `atomic_output` (a
path for libraries that open files by name, such as h5py): the data goes to a new temporary file
`.<name>.<random>.tmp` beside the target, created with `O_CREAT | O_EXCL | O_NOFOLLOW` (a file or
symlink planted at that name is never opened or followed) and mode 0666 minus the umask (as any
program's output; `tempfile.mkstemp` would give 0600), flushed to the disk (`fsync`), renamed over the
target, and the folder's entry flushed too: after a power loss the target is the old file or the new
one, never an empty or torn file under the new name (ext4, XFS and btrfs may otherwise persist the
rename before the data). An error or interruption removes the temporary file, so a partial file never
appears under the target's name. An OSError raised while writing names the target (`with_path`); the
CLI reports it in one line. `sync_file` / `sync_folder` do the same for files written by libraries
(videos, HDF5) and for folders renamed into place. `sha256_file` is dynsal's one checksum of a file (weights,
inputs, dataset sources), read in chunks.
"""
from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import secrets
import shutil
from pathlib import Path
from typing import Iterator, Tuple, Union

PathLike = Union[str, os.PathLike]
_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
_NAME_ROOM = 200  # of a name's 255 bytes, what the temporary name keeps of the target's name
_NEARLY_FULL = 1 << 20  # bytes free under which a library's I/O error is taken for a full disk
_HASH_CHUNK = 1 << 20  # bytes read at a time by sha256_file: memory stays flat whatever the file's size


def create_exclusive(path: PathLike) -> Tuple[int, Path]:
    """A new, empty temporary file beside `path` (its parent folders made): (open fd, its path).

    The file is created exclusively (never an existing file or symlink) with mode 0666 & ~umask.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        tmp = path.with_name(f".{path.name[:_NAME_ROOM]}.{secrets.token_hex(6)}.tmp")
        try:
            return os.open(tmp, _FLAGS, 0o666), tmp
        except FileExistsError:
            continue
        except OSError as exc:
            raise with_path(exc, path) from None


@contextlib.contextmanager
def atomic_output(path: PathLike) -> Iterator[Path]:
    """Yield an exclusive temporary path to write `path` through; renamed over `path` on success,
    removed on any error or interruption."""
    fd, tmp = create_exclusive(path)
    os.close(fd)
    with _replacing(tmp, path):
        yield tmp
        sync_file(tmp)


def write_atomic(path: PathLike, data: bytes) -> None:
    """Write `data` to `path` atomically (module docstring); every write and the close are checked."""
    fd, tmp = create_exclusive(path)
    with _replacing(tmp, path), os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def write_json(path: PathLike, value) -> None:
    """Write `value` as indented, key-sorted JSON, atomically (dynsal's records, manifests and settings)."""
    write_atomic(path, (json.dumps(value, indent=1, sort_keys=True) + "\n").encode())


def sha256_file(path: PathLike) -> str:
    """The SHA-256 of a file's bytes (hex), read 1 MiB at a time; an OSError names the file."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(_HASH_CHUNK), b""):
                digest.update(block)
    except OSError as exc:
        raise with_path(exc, path) from None
    return digest.hexdigest()


def sync_file(path: PathLike) -> None:
    """Flush a file's data to the disk (a file a library wrote by name)."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def sync_folder(folder: PathLike) -> None:
    """Flush a folder's entries (files renamed or created in it) to the disk; file systems that cannot
    sync a folder (EINVAL) need nothing more."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise with_path(exc, folder) from None
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno != errno.EINVAL:
            raise with_path(exc, folder) from None
    finally:
        os.close(fd)


@contextlib.contextmanager
def _replacing(tmp: Path, path: PathLike) -> Iterator[None]:
    """Rename `tmp` over `path` when the block succeeds; remove it when the block fails."""
    try:
        yield
        os.replace(tmp, path)
        sync_folder(Path(path).parent)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise with_path(exc, path) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def with_path(exc: OSError, path: PathLike) -> OSError:
    """`exc` naming the target `path` (not the temporary file; write() and close() errors name none)."""
    if exc.errno is None:
        return exc
    return type(exc)(exc.errno, exc.strerror or str(exc), str(path))


def library_os_error(exc: Exception, path: PathLike) -> OSError:
    """An OSError naming `path` for a write failure reported by a C library (h5py, lmdb).

    The errno is the exception's own, else the `errno = N` in its text (HDF5's), else EIO; an I/O error
    on a file system with under 1 MiB free is reported as ENOSPC (LMDB says EIO when the disk is full).
    """
    code = getattr(exc, "errno", None)
    if not isinstance(code, int):
        found = re.search(r"errno = (\d+)", str(exc))
        code = int(found[1]) if found else errno.EIO
    if code == errno.EIO and _free_bytes(Path(path)) < _NEARLY_FULL:
        code = errno.ENOSPC
    return OSError(code, os.strerror(code), str(path))


def _free_bytes(path: Path) -> int:
    """Free bytes on the file system holding `path` (or its nearest existing parent)."""
    for folder in (path, *path.parents):
        if folder.exists():
            return shutil.disk_usage(folder).free
    return 0
