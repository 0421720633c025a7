"""Issue 13 defect 12 and issue 14 "Reruns": the CLI uses the model's post-processing settings (flags override
only when given); settings.json records what ran; a rerun whose request differs from the recorded one is
refused in one line naming the difference, and --overwrite redoes it."""
from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from dynsal.predict.inputs import expand_inputs
from dynsal.predict.outputs import OutputOptions
from dynsal.predict.predictor import Predictor
from tests.reliability.predict_setup import maps_of, net_args, predict, snapshot, tiny_model, video

pytest.importorskip("torch", reason="prediction runs the torch engine")

PLAIN = {"postprocessing": {"stretch": False, "blur_kernel": 0}}


def test_the_cli_uses_the_models_postprocessing(tmp_path, capsys):
    """`<weights>.json` with `stretch: false, blur_kernel: 0` still gave a blurred, stretched map on the CLI."""
    model = tiny_model(tmp_path / "m", settings=PLAIN)
    clip = video(tmp_path / "clip.avi")
    assert predict(capsys, *net_args(model), str(clip), "-o", str(tmp_path / "cli"), "--no-overlay")[0] == 0
    settings = json.loads((tmp_path / "cli" / "clip" / "settings.json").read_text())
    assert settings["postprocessing"]["stretch"] is False and settings["postprocessing"]["blur_kernel"] == 0
    api = Predictor(None, str(model[0]), str(model[1]), engine="torch")
    [item] = expand_inputs([str(clip)])
    api.predict_input(item, tmp_path / "api", OutputOptions(overlay=False))
    cli_maps, api_maps = maps_of(tmp_path / "cli" / "clip"), maps_of(tmp_path / "api" / "clip")
    assert cli_maps.keys() == api_maps.keys() and all((cli_maps[k] == api_maps[k]).all() for k in cli_maps)
    assert max(m.max() for m in cli_maps.values()) < 255  # not stretched
    authors = tiny_model(tmp_path / "authors")  # the same weights without the settings JSON
    assert predict(capsys, *net_args(authors), str(clip), "-o", str(tmp_path / "authors"), "--no-overlay")[0] == 0
    assert all(maps_of(tmp_path / "authors" / "clip")[k].max() == 255 for k in cli_maps)  # stretched
    # a flag changes only what it names: --no-stretch keeps the model's blur 0; --no-blur keeps its stretch off
    for flag in ("--no-stretch", "--no-blur"):
        out = tmp_path / flag
        assert predict(capsys, *net_args(model), str(clip), "-o", str(out), "--no-overlay", flag)[0] == 0
        assert json.loads((out / "clip" / "settings.json").read_text())["postprocessing"] == \
            settings["postprocessing"]
        assert all((maps_of(out / "clip")[k] == cli_maps[k]).all() for k in cli_maps)


def test_settings_record_what_ran(tmp_path, capsys):
    model = tiny_model(tmp_path / "m")
    clip = video(tmp_path / "clip.avi")
    assert predict(capsys, *net_args(model), str(clip), "-o", str(tmp_path / "out"), "--engine", "auto")[0] == 0
    settings = json.loads((tmp_path / "out" / "clip" / "settings.json").read_text())
    assert settings["weights_sha256"] == hashlib.sha256(model[1].read_bytes()).hexdigest()
    assert settings["prototxt_sha256"] == hashlib.sha256(model[0].read_bytes()).hexdigest()
    assert settings["engine"] in ("torch", "caffe") and settings["input"] == str(clip)
    assert settings["outputs"] == {"png": True, "npz": False, "overlay": True, "side_by_side": False, "layout": "flat"}
    assert settings["files"] == [f"{i:06d}.png" for i in range(4)] and settings["videos"] == ["clip_overlay.mp4"]


@pytest.mark.parametrize("change, difference", [
    (["--end", "3"], "frame_range.end null → 3"),
    (["--no-blur"], "postprocessing.blur_kernel 5 → 0"),
    (["--npz"], "outputs.npz false → true"),
    (["--resize", "fixed:32x40"], 'resize "fit:512" → "fixed:32x40"'),
    ("weights", "weights_sha256 "),
])
def test_a_rerun_with_another_request_is_refused_naming_the_difference(tmp_path, capsys, change, difference):
    """A rerun with other weights or `--end 8` after `--end 5` kept the old maps as complete."""
    first = tiny_model(tmp_path / "m")
    clip = video(tmp_path / "clip.avi")
    out = tmp_path / "out"
    assert predict(capsys, *net_args(first), str(clip), "-o", str(out))[0] == 0
    model, extra = (tiny_model(tmp_path / "m", seed=1), []) if change == "weights" else (first, change)
    before = snapshot(tmp_path)
    status, text, err = predict(capsys, *net_args(model), str(clip), "-o", str(out), *extra)
    assert status == 1 and len(err.splitlines()) == 1, err
    assert err.startswith(f"dynsal predict: {clip}: {out / 'clip'} holds the maps of another request ({difference}")
    assert err.endswith("); rerun with --overwrite to replace them, or choose another output folder (-o)\n")
    assert snapshot(tmp_path) == before
    status, text, err = predict(capsys, *net_args(model), str(clip), "-o", str(out), *extra, "--overwrite")
    assert status == 0 and "clip:" in text and " maps in " in text, err
    assert predict(capsys, *net_args(model), str(clip), "-o", str(out), *extra)[1].startswith("clip: already complete")


def test_a_complete_output_missing_a_file_is_not_taken_as_done(tmp_path, capsys):
    model = tiny_model(tmp_path / "m")
    clip = video(tmp_path / "clip.avi")
    out = tmp_path / "out"
    assert predict(capsys, *net_args(model), str(clip), "-o", str(out))[0] == 0
    (out / "clip" / "000002.png").unlink()
    status, text, err = predict(capsys, *net_args(model), str(clip), "-o", str(out))
    assert status == 1 and err == (f"dynsal predict: {clip}: {out / 'clip' / '000002.png'} is missing from the "
                                   f"finished output {out / 'clip'}; rerun with --overwrite to redo it\n")
    assert predict(capsys, *net_args(model), str(clip), "-o", str(out), "--overwrite")[0] == 0
    assert np.array_equal(sorted(maps_of(out / "clip")), [f"{i:06d}.png" for i in range(4)])


@pytest.mark.parametrize("settings, message", [
    ([1, 2], "a model's settings must be a JSON object with resize, flow and postprocessing entries, not a list"),
    ({"postprocessing": {"blurr": 3}}, "unknown post-processing setting(s) blurr; known: scale, shift, resize, "
                                       "blur_kernel, stretch"),
    ({"postprocessing": {"blur_kernel": 4}}, "blur_kernel 4: the Gaussian blur's kernel must be 0 (no blur) or an odd "
                                             "number of pixels"),
])
def test_bad_model_settings_are_one_line(tmp_path, capsys, settings, message):
    model = tiny_model(tmp_path / "m", settings=settings)
    clip = video(tmp_path / "clip.avi")
    for flags in ([], ["--no-blur"]):
        status, text, err = predict(capsys, *net_args(model), str(clip), "-o", str(tmp_path / "out"), *flags)
        assert status == 1 and len(err.splitlines()) == 1 and f"{model[1]}.json: {message}" in err, err
        assert not (tmp_path / "out").exists()
