"""Issue 13, defects 4 (predict half) and 11 (predict items): non-finite net outputs, a tiny --resize, a
truncated video, two frames with one name. Each is one line (or a warning), with nothing looking complete."""
from __future__ import annotations

import json

import pytest

from tests.reliability.predict_setup import (
    FRAME_SIZE,
    frame_folder,
    maps_of,
    net_args,
    predict,
    snapshot,
    tiny_model,
    video,
)

pytest.importorskip("torch", reason="prediction runs the torch engine")


@pytest.mark.parametrize("bias", [float("nan"), float("inf")])
def test_non_finite_net_output_is_refused_naming_input_and_frame(tmp_path, capsys, bias):
    """NaN weights wrote all-zero maps, exit status 0, marked complete."""
    broken, good = tiny_model(tmp_path / "m", bias=bias), tiny_model(tmp_path / "m")
    clip = video(tmp_path / "clip.avi")
    out = tmp_path / "out"
    before = snapshot(tmp_path, skip=[out])
    status, text, err = predict(capsys, *net_args(broken), str(clip), "-o", str(out))
    pixels = FRAME_SIZE[0] * FRAME_SIZE[1]  # the net's output: every pixel of frame 0 (the bias is in each)
    assert status == 1 and err == (f"dynsal predict: {clip}: frame 000000: the net's output holds {pixels} NaN or "
                                   f"infinite values; the weights {broken[1]} are broken or diverged (look for "
                                   "non-finite blobs with `dynsal info`); no map was kept for this input\n")
    assert not any(out.iterdir()) and snapshot(tmp_path, skip=[out]) == before
    assert predict(capsys, *net_args(good), str(clip), "-o", str(out))[0] == 0  # not taken as complete


def test_a_tiny_resize_is_one_line(tmp_path, capsys):
    """`--resize fit:1` ended in an OpenCV traceback from the optical flow."""
    model = tiny_model(tmp_path / "m", two_stream=True)
    clip = video(tmp_path / "clip.avi")
    status, text, err = predict(capsys, *net_args(model), str(clip), "-o", str(tmp_path / "out"), "--resize", "fit:1")
    assert status == 1 and err == (f"dynsal predict: {clip}: dis optical flow of 1×1 frames failed: The input image "
                                   "must have either width or height >= 12; frames this small come from a small "
                                   "--resize, choose a larger one\n")
    assert not any((tmp_path / "out").iterdir())


def test_a_truncated_video_warns_naming_the_frame_where_decoding_stopped(tmp_path, capsys):
    """A truncated AVI gave fewer maps, exit status 0 and no word. Now: the maps of the decodable frames, a
    warning naming the last one (again on every rerun), and the shortfall in settings.json."""
    model = tiny_model(tmp_path / "m")
    clip = video(tmp_path / "clip.avi", count=20)
    data = clip.read_bytes()
    clip.write_bytes(data[:int(len(data) * 0.6)])
    out = tmp_path / "out"
    status, text, err = predict(capsys, *net_args(model), str(clip), "-o", str(out))
    decoded = len(maps_of(out / "clip"))
    assert status == 0 and 0 < decoded < 20
    warning = (f"dynsal predict: warning: {clip}: decoding stopped after frame {decoded - 1} of the 20 frames the "
               f"file declares (truncated or corrupt); maps were made for the {decoded} decoded frames\n")
    assert err == warning and f"clip: {decoded} maps" in text
    settings = json.loads((out / "clip" / "settings.json").read_text())
    assert settings["declared_frames"] == 20 and settings["decoded_frames"] == settings["frames"] == decoded
    status, text, err = predict(capsys, *net_args(model), str(clip), "-o", str(out))
    assert status == 0 and "already complete" in text and err == warning


def test_frames_with_one_name_are_refused_naming_both(tmp_path, capsys):
    """`f001.png` and `f001.jpg` in one folder overwrote each other's map."""
    model = tiny_model(tmp_path / "m")
    shots = frame_folder(tmp_path / "shots", names=["f000", "f001"])
    frame_folder(shots, names=["f001"], suffix=".jpg")
    before = snapshot(tmp_path)
    status, text, err = predict(capsys, *net_args(model), str(shots), "-o", str(tmp_path / "out"))
    assert status == 1 and err == (f"dynsal predict: error: {shots / 'f001.jpg'} and {shots / 'f001.png'} would both "
                                   "give the map f001.png; remove or rename one of them\n")
    assert snapshot(tmp_path) == before
