"""Webcams, network streams and the live window: `dynsal predict 0`, `dynsal predict http://...`,
`dynsal.saliency_maps(...)` in Python, `--show`."""
from __future__ import annotations

import functools
import http.server
import importlib.metadata
import threading

import cv2
import numpy as np
import pytest

import dynsal
from dynsal.cli import main
from dynsal.predict import live
from dynsal.predict.video_writer import open_video_writer
from tests.predict.helpers import FRAME_SIZE, zoo_weights
from tests.predict.test_video_writer import frames

pytest.importorskip("torch", reason="prediction tests run the torch engine")


REAL_CAPTURE = cv2.VideoCapture


class FakeWebcam:
    """cv2.VideoCapture for webcam index 0: `count` frames, then the camera stops; counts the reads.
    Files (the written MP4s being checked) are opened by the real VideoCapture."""

    reads = 0

    def __new__(cls, source, *args):
        return super().__new__(cls) if source == 0 else REAL_CAPTURE(source, *args)

    def __init__(self, source, count: int = 8):
        self.frames = frames(count, *FRAME_SIZE)

    def isOpened(self):
        return True

    def get(self, prop):
        return 30.0 if prop == cv2.CAP_PROP_FPS else 0.0

    def read(self):
        FakeWebcam.reads += 1
        return (True, self.frames.pop(0)) if self.frames else (False, None)

    def release(self):
        pass


@pytest.fixture
def webcam(monkeypatch):
    FakeWebcam.reads = 0
    monkeypatch.setattr(cv2, "VideoCapture", FakeWebcam)
    return FakeWebcam


@pytest.fixture(scope="module")
def ssnet(tmp_path_factory):
    return zoo_weights("ssnet", tmp_path_factory.mktemp("weights"))


def test_python_one_liner_on_a_webcam(webcam, ssnet):
    maps = dynsal.saliency_maps(0, net="ssnet", weights=str(ssnet), engine="torch", end=3)
    assert maps.shape == (3,) + FRAME_SIZE and maps.dtype == np.uint8
    assert webcam.reads == 4  # frame 3 too (the flow pair of the last map), and no more


def test_webcam_index_on_the_command_line(webcam, ssnet, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["predict", "--net", "ssnet", "--weights", str(ssnet), "--engine", "torch", "0", "-o", str(out),
                 "--no-overlay"]) == 0
    assert "webcam0: 8 maps in" in capsys.readouterr().out
    assert len(list((out / "webcam0").glob("*.png"))) == 8


def test_a_stream_is_never_already_complete(webcam, ssnet, tmp_path, capsys):
    """What a webcam or URL gives now cannot be compared with an earlier reading: a rerun into its finished output
    is refused (not skipped as complete), and --overwrite reads it again."""
    out = tmp_path / "out"
    command = ["predict", "--net", "ssnet", "--weights", str(ssnet), "--engine", "torch", "0", "-o", str(out),
               "--no-overlay", "--end", "2"]
    assert main(command) == 0
    capsys.readouterr()
    assert main(command) == 1
    captured = capsys.readouterr()
    assert "already complete" not in captured.out.replace("0 already complete", "")
    assert captured.err == (f"dynsal predict: {out / 'webcam0'} holds the maps of another request (input: a stream, "
                            "which cannot be compared with what it gave before); rerun with --overwrite to replace "
                            "them, or choose another output folder (-o)\n")
    assert main(command + ["--overwrite"]) == 0 and "webcam0: 2 maps in" in capsys.readouterr().out


@pytest.fixture
def http_clip(tmp_path):
    """A small H.264 MP4 served by a local HTTP server on 127.0.0.1: its URL."""
    folder = tmp_path / "served"
    folder.mkdir()
    writer = open_video_writer(folder / "clip.mp4", 25.0, FRAME_SIZE[::-1])
    for frame in frames(5, *FRAME_SIZE):
        writer.write(frame)
    writer.release()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/clip.mp4"
    server.shutdown()
    server.server_close()


def test_an_http_video_url_is_an_input(http_clip, ssnet, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["predict", "--net", "ssnet", "--weights", str(ssnet), "--engine", "torch", http_clip, "-o",
                 str(out)]) == 0
    assert "clip: 5 maps in" in capsys.readouterr().out
    assert sorted(p.name for p in (out / "clip").glob("*.png")) == [f"{i:06d}.png" for i in range(5)]
    predictor = dynsal.Predictor("ssnet", weights=str(ssnet), engine="torch")
    names = [p.name for p in predictor.predictions_of(http_clip, every=2)]
    assert names == ["000000", "000002", "000004"]


def test_an_unreachable_stream_is_one_line(ssnet, tmp_path, capsys):
    assert main(["predict", "--net", "ssnet", "--weights", str(ssnet), "--engine", "torch",
                 "http://127.0.0.1:9/none.mp4", "-o", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert "http://127.0.0.1:9/none.mp4: OpenCV cannot open it" in err and err.count("none.mp4") == 1


def test_show_needs_a_gui_opencv(ssnet, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(live, "gui_available", lambda: False)
    assert main(["predict", "--net", "ssnet", "--weights", str(ssnet), "--engine", "torch", "0", "--show",
                 "-o", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    installed = importlib.metadata.version("opencv-contrib-python-headless")  # what the set-up puts in place
    assert "--show needs OpenCV with a GUI" in err and (
        f"pip install --force-reinstall --no-deps opencv-contrib-python=={installed}" in err), err


def test_show_draws_overlays_and_q_stops_the_stream(webcam, ssnet, tmp_path, monkeypatch, capsys):
    shown = []
    monkeypatch.setattr(live, "gui_available", lambda: True)
    monkeypatch.setattr(live.cv2, "imshow", lambda title, image: shown.append(image.shape))
    monkeypatch.setattr(live.cv2, "waitKey", lambda delay: ord("q") if len(shown) == 3 else -1)
    monkeypatch.setattr(live.cv2, "destroyWindow", lambda title: None)
    out = tmp_path / "out"
    assert main(["predict", "--net", "ssnet", "--weights", str(ssnet), "--engine", "torch", "0", "--show",
                 "-o", str(out)]) == 0
    assert shown == [FRAME_SIZE + (3,)] * 3
    assert len(list((out / "webcam0").glob("*.png"))) == 3 and (out / "webcam0" / "settings.json").is_file()
