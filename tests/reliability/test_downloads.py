"""Defect 6: weight downloads stay inside --dir, resume only when the server proves the file is the same,
work offline by importing a local copy, and print and record the SHA-256 of what they keep. Against an
HTTP server on 127.0.0.1 (tests/weights)."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from tests.reliability.faults import changed, run_dynsal, tree
from tests.weights.test_weights import FileServer, ssnet_caffemodel


def _registry(tmp_path: Path, url: str, file: str = "ssnet.caffemodel", sha256=None) -> Path:
    path = tmp_path / "registry.json"
    entry = {"name": "ssnet-test", "net": "ssnet", "file": file, "url": url, "sha256": sha256, "source": "test"}
    path.write_text(json.dumps({"version": 1, "weights": [entry]}))
    return path


def _fetch(registry: Path, models: Path, *extra):
    """`dynsal weights fetch` without its progress bar (stderr then holds only the error line)."""
    return run_dynsal(["weights", "fetch", "ssnet-test", "--registry", registry, "--dir", models, *extra],
                      env={"TQDM_DISABLE": "1"})


@pytest.fixture(scope="module")
def payloads():
    """Two different, structurally valid SSNet caffemodels (the file on the server before and after a change)."""
    first = ssnet_caffemodel()
    second = ssnet_caffemodel(value=0.25)
    assert len(first) == len(second) and first != second
    return first, second


@pytest.mark.parametrize("file", ["../../outside.caffemodel", "/tmp/dynsal-outside.caffemodel",
                                  "sub/../../outside.caffemodel", "..", ""])
def test_registry_files_are_confined_to_the_weights_folder(tmp_path, file):
    """A registry entry with `"file": "../../x"` or an absolute path wrote outside --dir."""
    registry = _registry(tmp_path, "http://127.0.0.1:9/never-asked", file)
    models = tmp_path / "a" / "b" / "models"
    before = tree(tmp_path)
    result = _fetch(registry, models)
    assert result.returncode == 1
    assert result.error_line() == (f"dynsal weights: error: {registry}: entry 'ssnet-test' has file {file!r}; it "
                                   "must be a file name inside the weights folder (relative, without '..')")
    assert changed(before, tree(tmp_path)) == [] and not Path("/tmp/dynsal-outside.caffemodel").exists()


def _interrupted(tmp_path: Path, server: FileServer, sha256=None):
    registry = _registry(tmp_path, server.url, sha256=sha256)
    models = tmp_path / "models"
    server.cut_next = True
    result = _fetch(registry, models)
    assert result.returncode == 1 and "run the same command again to resume" in result.error_line()
    return registry, models


def test_a_file_changed_on_the_server_restarts_the_download(tmp_path, payloads):
    """The server's file changes between the interrupted and the resumed download: the If-Range ETag no longer
    matches, the server sends the whole new file (200), and the result is that file, not half of each."""
    first, second = payloads
    server = FileServer(first)
    try:
        registry, models = _interrupted(tmp_path, server)
        old_etag = server.current_etag()
        server.payload = second
        result = _fetch(registry, models)
        assert result.returncode == 0, result.stderr
        assert server.requests[1:] == [(f"bytes={len(first) // 2}-", old_etag), (None, None)]
    finally:
        server.close()
    assert (models / "ssnet.caffemodel").read_bytes() == second


LAST_MODIFIED = "Wed, 21 Oct 2015 07:28:00 GMT"


@pytest.mark.parametrize("server_options, validator, restarted", [
    ({}, "etag", False),  # a strong ETag: resumed
    ({"etag": False, "last_modified": LAST_MODIFIED}, LAST_MODIFIED, False),  # Last-Modified: resumed
    ({"etag": False}, None, True),  # no validator: nothing proves the file is the same, not even tried
    ({"ranges": False}, "etag", True),  # Range ignored (200): restarted
    ({"range_lie": 7}, "etag", True),  # a Content-Range not starting where the part ends: restarted
])
def test_resumes_only_what_the_server_validates(tmp_path, payloads, server_options, validator, restarted):
    payload = payloads[0]
    server = FileServer(payload, **server_options)
    try:
        registry, models = _interrupted(tmp_path, server, sha256=hashlib.sha256(payload).hexdigest())
        result = _fetch(registry, models)
        assert result.returncode == 0, result.stderr
        requests = server.requests[1:]
        validator = server.current_etag() if validator == "etag" else validator
    finally:
        server.close()
    assert (models / "ssnet.caffemodel").read_bytes() == payload
    resume = [(f"bytes={len(payload) // 2}-", validator)] if validator else []
    assert requests == resume + ([(None, None)] if restarted else [])
    assert sorted(p.name for p in models.iterdir()) == ["ssnet.caffemodel", "ssnet.caffemodel.sha256"]


def test_sha256_is_printed_and_recorded_and_checked_later(tmp_path, payloads):
    payload = payloads[0]
    digest = hashlib.sha256(payload).hexdigest()
    server = FileServer(payload)
    try:
        registry = _registry(tmp_path, server.url)
        result = _fetch(registry, tmp_path / "models")
    finally:
        server.close()
    model = tmp_path / "models" / "ssnet.caffemodel"
    assert result.returncode == 0
    assert f"sha256 {digest} (recorded in {model}.sha256)" in result.stdout
    assert (tmp_path / "models" / "ssnet.caffemodel.sha256").read_text() == f"{digest}  ssnet.caffemodel\n"
    verified = run_dynsal(["weights", "verify", "ssnet-test", "--registry", registry, "--dir", tmp_path / "models"])
    assert verified.returncode == 0 and f"sha256 {digest}" in verified.stdout
    model.write_bytes(payloads[1])  # changed after it was fetched (same structure, no published checksum)
    for action in ("verify", "fetch"):
        result = run_dynsal(["weights", action, "ssnet-test", "--registry", registry, "--dir", tmp_path / "models"])
        assert result.returncode == 1
        assert f"recorded in {model}.sha256 when it was fetched; the file changed" in result.error_line()


def test_offline_message_names_the_import_that_works(tmp_path, payloads):
    """The offline hint "put it at ….unverified" did not work; the hint now is a command, and it works."""
    registry = _registry(tmp_path, "http://127.0.0.1:9/ssnet.caffemodel")
    models = tmp_path / "models"
    result = _fetch(registry, models)
    assert result.returncode == 1
    line = result.error_line()
    command = f"dynsal weights fetch ssnet-test --file DOWNLOADED_FILE --dir {models}"
    assert "cannot reach http://127.0.0.1:9/ssnet.caffemodel" in line and line.endswith(command)
    copy = tmp_path / "Downloads" / "ssnet.caffemodel"
    copy.parent.mkdir()
    copy.write_bytes(payloads[0])
    imported = _fetch(registry, models, "--file", copy)
    assert imported.returncode == 0, imported.stderr
    assert (models / "ssnet.caffemodel").read_bytes() == payloads[0]
    assert f"sha256 {hashlib.sha256(payloads[0]).hexdigest()}" in imported.stdout
    assert (models / "ssnet.caffemodel.sha256").is_file()


def test_an_import_that_fails_verification_keeps_nothing(tmp_path, payloads):
    registry = _registry(tmp_path, "http://127.0.0.1:9/x", sha256=hashlib.sha256(payloads[0]).hexdigest())
    models = tmp_path / "models"
    wrong = tmp_path / "wrong.caffemodel"
    wrong.write_bytes(payloads[1])
    before = tree(tmp_path)
    result = _fetch(registry, models, "--file", wrong)
    assert result.returncode == 1 and "SHA-256 differs from the registry's" in result.error_line()
    assert [p for p in changed(before, tree(tmp_path)) if p != "models"] == []
    assert not models.exists() or not list(models.iterdir())
