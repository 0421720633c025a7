"""`dynsal weights`: resumable, verified downloads, tested against a server on 127.0.0.1."""
from __future__ import annotations

import hashlib
import json
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from dynsal import zoo
from dynsal.caffe.caffemodel import attach_blobs
from dynsal.caffe.graph import build_graph
from dynsal.caffe.shapes import infer_shapes
from dynsal.cli import main


class FileServer:
    """Serves one byte string as a static file server does: an ETag (and Last-Modified when given), Range
    requests answered 206 with Content-Range, If-Range honoured (a validator that no longer matches gets the
    whole file, 200). `ranges=False` ignores Range; `range_lie` shifts the start its Content-Range reports;
    `cut_next` ends the next response half-way. `requests` records each request's (Range, If-Range)."""

    def __init__(self, payload: bytes, etag: bool = True, last_modified: str | None = None, ranges: bool = True,
                 range_lie: int = 0):
        self.payload, self.cut_next, self.requests = payload, False, []
        self.etag, self.last_modified, self.ranges, self.range_lie = etag, last_modified, ranges, range_lie
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                header, if_range = self.headers.get("Range"), self.headers.get("If-Range")
                server.requests.append((header, if_range))
                payload, etag = server.payload, server.current_etag()
                partial = header and server.ranges and if_range in (None, etag, server.last_modified)
                start = int(header.split("=")[1].split("-")[0]) if partial else 0
                if partial and start >= len(payload):
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(payload)}")
                    self.end_headers()
                    return
                body = payload[start:]
                self.send_response(206 if partial else 200)
                self.send_header("Content-Length", str(len(body)))
                if partial:
                    self.send_header("Content-Range",
                                     f"bytes {start + server.range_lie}-{len(payload) - 1}/{len(payload)}")
                if etag:
                    self.send_header("ETag", etag)
                if server.last_modified:
                    self.send_header("Last-Modified", server.last_modified)
                self.end_headers()
                if server.cut_next:
                    server.cut_next = False
                    body = body[: len(body) // 2]
                try:
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):  # the client stopped reading (a restart)
                    pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/ssnet.caffemodel"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def current_etag(self) -> str | None:
        return f'"{hashlib.sha256(self.payload).hexdigest()[:16]}"' if self.etag else None

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def ssnet_caffemodel(shape_change: bool = False, value: float = 0.5) -> bytes:
    net = zoo.deploy("ssnet")
    _, params = infer_shapes(build_graph(net))
    weights = {k: [np.full(s, value, np.float32) for s in v] for k, v in params.items() if v}
    if shape_change:
        weights["conv9"] = [np.zeros((1, 32, 11, 11), np.float32), np.zeros(1, np.float32)]
    return attach_blobs(net, weights).SerializeToString()


@pytest.fixture()
def served(tmp_path):
    payload = ssnet_caffemodel()
    server = FileServer(payload)
    registry = tmp_path / "registry.json"
    entry = {"name": "ssnet-test", "net": "ssnet", "file": "ssnet.caffemodel", "url": server.url,
             "sha256": hashlib.sha256(payload).hexdigest(), "source": "test"}
    registry.write_text(json.dumps({"version": 1, "weights": [entry]}))
    yield server, registry, tmp_path / "models", payload
    server.close()


def test_fetch_resumes_and_verifies(served, capsys):
    server, registry, models, payload = served
    server.cut_next = True
    args = ["weights", "fetch", "ssnet-test", "--registry", str(registry), "--dir", str(models)]
    assert main(args) == 1
    assert "run the same command again to resume" in capsys.readouterr().err
    assert not (models / "ssnet.caffemodel").exists()
    partial = models / "ssnet.caffemodel.unverified.part"
    assert 0 < partial.stat().st_size < len(payload)
    assert main(args) == 0
    assert server.requests[-1] == (f"bytes={len(payload) // 2}-", server.current_etag())
    assert (models / "ssnet.caffemodel").read_bytes() == payload and not partial.exists()
    assert main(["weights", "verify", "ssnet", "--registry", str(registry), "--dir", str(models)]) == 0
    assert "fits ssnet (10 layers with weights)" in capsys.readouterr().out
    assert main(["weights", "list", "--registry", str(registry), "--dir", str(models)]) == 0
    assert "present at" in capsys.readouterr().out


def test_wrong_structure_is_not_kept(served, capsys):
    server, registry, models, _ = served
    server.payload = ssnet_caffemodel(shape_change=True)
    data = json.loads(registry.read_text())
    data["weights"][0]["sha256"] = None
    registry.write_text(json.dumps(data))
    assert main(["weights", "fetch", "ssnet-test", "--registry", str(registry), "--dir", str(models)]) == 1
    err = capsys.readouterr().err
    assert "does not have the structure of ssnet" in err and "conv9" in err
    assert not list(models.iterdir())


def test_checksum_mismatch(served, capsys):
    server, registry, models, payload = served
    server.payload = payload[:-4] + b"\x00\x00\x00\x00"
    assert main(["weights", "fetch", "ssnet-test", "--registry", str(registry), "--dir", str(models)]) == 1
    assert "SHA-256 differs" in capsys.readouterr().err


def test_offline_and_missing_file_messages(tmp_path, capsys):
    registry = tmp_path / "registry.json"
    entry = {"name": "w", "net": "ssnet", "file": "w.caffemodel", "url": "http://127.0.0.1:9/w.caffemodel",
             "sha256": None}
    registry.write_text(json.dumps({"weights": [entry]}))
    assert main(["weights", "fetch", "w", "--registry", str(registry), "--dir", str(tmp_path)]) == 1
    assert f"dynsal weights fetch w --file DOWNLOADED_FILE --dir {tmp_path}" in capsys.readouterr().err
    assert main(["weights", "verify", "w", "--registry", str(registry), "--dir", str(tmp_path)]) == 1
    assert "run `dynsal weights fetch w`" in capsys.readouterr().err


def test_a_file_url_is_copied_and_verified_without_network(tmp_path, capsys, monkeypatch):
    """A registry entry pointing at a shared folder (file:///...): fetched without any socket, verified."""
    payload = ssnet_caffemodel()
    mirror = tmp_path / "shared mirror" / "ssnet.caffemodel"
    mirror.parent.mkdir()
    mirror.write_bytes(payload)
    registry = tmp_path / "registry.json"
    entry = {"name": "ssnet-lab", "net": "ssnet", "file": "ssnet.caffemodel", "url": mirror.as_uri(),
             "sha256": hashlib.sha256(payload).hexdigest()}
    registry.write_text(json.dumps({"weights": [entry]}))

    def no_network(*args, **kwargs):
        raise AssertionError("a file URL opened a connection")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    args = ["weights", "fetch", "ssnet-lab", "--registry", str(registry), "--dir", str(tmp_path / "models")]
    assert main(args) == 0
    assert (tmp_path / "models" / "ssnet.caffemodel").read_bytes() == payload
    assert hashlib.sha256(payload).hexdigest() in capsys.readouterr().out
    entry.update(url="file://labserver/models/ssnet.caffemodel", file="other.caffemodel")
    registry.write_text(json.dumps({"weights": [entry]}))
    assert main(args) == 1
    assert "a file URL on host 'labserver'; mount that folder here" in capsys.readouterr().err
    mirror.write_bytes(payload[:-4] + b"\x00\x00\x00\x00")
    entry.update(url=mirror.as_uri())
    registry.write_text(json.dumps({"weights": [entry]}))
    assert main(args) == 1
    assert "SHA-256 differs" in capsys.readouterr().err and not (tmp_path / "models" / "other.caffemodel").exists()


def test_shipped_registry_has_the_published_stsconvnet(capsys, tmp_path):
    assert main(["weights", "list", "--dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "stsconvnet-diem" in out and "net stsconv" in out and "no published checksum" in out
