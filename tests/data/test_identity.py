"""`dynsal.data.identity`: what an input was (size, modification time, SHA-256; one hash over a frame folder),
and the phrase naming a change; `dynsal.files.sha256_file`, the one checksum of a file."""
from __future__ import annotations

import hashlib
import os

import pytest

from dynsal.data.identity import (
    file_identity,
    folder_identity,
    identity_change,
    input_identity,
    request_difference,
    unchanged_since,
)
from dynsal.errors import DataError
from dynsal.files import sha256_file


def test_sha256_of_a_file_larger_than_one_chunk(tmp_path):
    path = tmp_path / "big.bin"
    data = os.urandom(3 * (1 << 20) + 17)
    path.write_bytes(data)
    assert sha256_file(path) == hashlib.sha256(data).hexdigest()
    with pytest.raises(FileNotFoundError, match="none.bin"):
        sha256_file(tmp_path / "none.bin")


def test_a_file_is_the_same_input_while_its_bytes_are(tmp_path):
    path = tmp_path / "clip.avi"
    path.write_bytes(b"frames" * 100)
    first = file_identity(path)
    assert first == {"kind": "file", "size": 600, "mtime_ns": path.stat().st_mtime_ns,
                     "sha256": hashlib.sha256(b"frames" * 100).hexdigest()}
    os.utime(path, ns=(0, first["mtime_ns"] + 5 * 10 ** 9))  # touch: same bytes
    assert identity_change(first, file_identity(path)) == ""
    path.write_bytes(b"FRAMES" * 100)
    os.utime(path, ns=(0, first["mtime_ns"]))  # other bytes under the old time (cp -p)
    change = identity_change(first, file_identity(path))
    assert change == (f"input content: sha256 {first['sha256'][:12]}… → {file_identity(path)['sha256'][:12]}… "
                      "(same modification time)")
    path.write_bytes(b"FRAMES" * 50)
    assert "(size 600 → 300 bytes, modified " in identity_change(first, file_identity(path))


def test_a_frame_folder_changes_with_any_frame_its_name_or_count(tmp_path):
    folder = tmp_path / "shots"
    folder.mkdir()
    for i in range(3):
        (folder / f"f{i}.png").write_bytes(bytes([i]) * 10)
    (folder / "notes.txt").write_text("not a frame")
    first = folder_identity(folder)
    assert first["kind"] == "frames" and first["frames"] == 3 and first["size"] == 30
    assert input_identity(folder) == first
    (folder / "notes.txt").write_text("still not a frame")  # not read as a frame: the same input
    assert identity_change(first, folder_identity(folder)) == ""
    os.replace(folder / "f2.png", folder / "f3.png")  # the same bytes under another name
    assert identity_change(first, folder_identity(folder)).startswith("input content: sha256 ")
    (folder / "f3.png").unlink()
    assert "(frames 3 → 2, size 30 → 20 bytes" in identity_change(first, folder_identity(folder))


def test_a_stream_and_an_old_record_are_never_the_same_input(tmp_path):
    stream = input_identity("rtsp://camera/live", stream=True)
    assert stream == {"kind": "stream"}
    assert identity_change(stream, stream) == "input: a stream, which cannot be compared with what it gave before"
    path = tmp_path / "clip.avi"
    path.write_bytes(b"x")
    assert identity_change(None, file_identity(path)).startswith("input content: not recorded → sha256 ")


def test_request_difference_names_the_input_first(tmp_path):
    path = tmp_path / "clip.avi"
    path.write_bytes(b"x")
    old = {"resize": "fit:512", "input_identity": file_identity(path)}
    path.write_bytes(b"y")
    new = {"resize": "native", "input_identity": file_identity(path)}
    assert request_difference(old, new, ("resize",)).split(", resize ") == [
        identity_change(old["input_identity"], new["input_identity"]), '"fit:512" → "native"']
    assert request_difference(new, dict(new), ("resize",)) == ""


def test_an_input_changed_while_it_was_read_is_named(tmp_path):
    path = tmp_path / "clip.avi"
    path.write_bytes(b"part")
    identity = file_identity(path)
    unchanged_since(path, identity)
    with open(path, "ab") as handle:
        handle.write(b" and the rest")
    with pytest.raises(DataError, match=f"{path}: changed while dynsal read it \\(size 4 → 17 bytes"):
        unchanged_since(path, identity)
    unchanged_since("rtsp://camera/live", {"kind": "stream"})  # nothing to compare
    with pytest.raises(DataError, match="none.avi: no such video file or frame folder"):
        file_identity(tmp_path / "none.avi")
