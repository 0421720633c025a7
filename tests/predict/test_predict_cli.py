"""`dynsal predict` end to end on generated videos and frame folders, for every zoo net."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from scipy.io import savemat

from dynsal.cli import main
from dynsal.zoo import NETS
from tests.data.synthetic import panning_video
from tests.predict.helpers import FRAME_SIZE, make_inputs, zoo_weights
from tests.predict.test_video_writer import codec_and_frames

REPO = Path(__file__).resolve().parents[2]
torch = pytest.importorskip("torch", reason="prediction tests run the torch engine")


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    folder = tmp_path_factory.mktemp("weights")
    return {name: zoo_weights(name, folder) for name in NETS}


def decoded_frames(path):
    capture = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, image = capture.read()
        if not ok:
            return frames
        frames.append(image)


@pytest.mark.parametrize("net", sorted(NETS))
def test_every_net_on_video_and_frames(net, weights, tmp_path, capsys):
    video, frame_dir = make_inputs(tmp_path)
    out = tmp_path / "out"
    assert main(["predict", "--net", net, "--weights", str(weights[net]), "--engine", "torch", str(video),
                 str(frame_dir), "-o", str(out), "--batch", "2", "--npz"]) == 0
    out_text = capsys.readouterr().out
    assert "done: 2 predicted, 0 already complete, 0 failed" in out_text and "clip: 5 maps in" in out_text
    maps = sorted((out / "clip").glob("*.png"))
    assert [p.name for p in maps] == [f"{i:06d}.png" for i in range(5)]
    assert sorted(p.stem for p in (out / "shots").glob("*.png")) == [f"frame_{i:03d}" for i in range(5)]
    image = cv2.imread(str(maps[0]), cv2.IMREAD_UNCHANGED)
    assert image.dtype == np.uint8 and image.shape == FRAME_SIZE
    settings = json.loads((out / "clip" / "settings.json").read_text())
    assert settings["net"] == net and settings["frames"] == 5 and settings["resize"] == "fit:512"
    assert settings["engine"] == "torch" and settings["precision"] == "fp32"
    assert settings["device"] == ("cuda:0" if torch.cuda.is_available() else "cpu")  # what --device auto ran
    assert (settings["flow"] is None) == (net == "ssnet")
    overlay = decoded_frames(out / "clip_overlay.mp4")
    assert len(overlay) == 5 and overlay[0].shape == FRAME_SIZE + (3,)
    assert codec_and_frames(out / "clip_overlay.mp4")[0] == "h264"  # what browsers play
    floats = np.load(out / "clip" / "maps.npz")["maps"]
    assert floats.shape == (5,) + FRAME_SIZE and 0 <= floats.min() and floats.max() <= 1
    np.testing.assert_allclose(floats[0] * 255, image, atol=0.51)


def test_frame_selection_and_still_images(weights, tmp_path):
    video, frame_dir = make_inputs(tmp_path, frames=7)
    out = tmp_path / "out"
    still = frame_dir / "frame_003.png"
    assert main(["predict", "--net", "stsconv", "--weights", str(weights["stsconv"]), "--engine", "torch",
                 str(video), str(still), "-o", str(out), "--start", "1", "--every", "2", "--end", "6"]) == 0
    assert sorted(p.name for p in (out / "clip").glob("*.png")) == ["000001.png", "000003.png", "000005.png"]
    settings = json.loads((out / "frame_003" / "settings.json").read_text())
    assert settings["zero_motion_flow"] is True and (out / "frame_003" / "frame_003.png").is_file()
    assert json.loads((out / "clip" / "settings.json").read_text())["zero_motion_flow"] is False
    single = tmp_path / "single"
    single.mkdir()
    still.rename(single / "only.png")  # a one-frame video: no motion, as a still image
    assert main(["predict", "--net", "stsconv", "--weights", str(weights["stsconv"]), "--engine", "torch",
                 str(single), "-o", str(out)]) == 0
    settings = json.loads((out / "single" / "settings.json").read_text())
    assert settings["zero_motion_flow"] is True and settings["frames"] == 1 and (out / "single" / "only.png").is_file()


def test_bad_input_is_reported_and_others_run(weights, tmp_path, capsys):
    video, _ = make_inputs(tmp_path)
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video at all")
    out = tmp_path / "out"
    args = ["predict", "--net", "ssnet", "--weights", str(weights["ssnet"]), "--engine", "torch", str(broken),
            str(video), "-o", str(out)]
    assert main(args) == 1
    captured = capsys.readouterr()
    assert f"{broken}" in captured.err and "1 predicted, 0 already complete, 1 failed" in captured.out
    missing = tmp_path / "missing.mp4"
    assert main(args[:7] + [str(missing), "-o", str(out)]) == 1
    assert capsys.readouterr().err.count(str(missing)) == 1  # named once, not "missing.mp4: missing.mp4: ..."
    assert (out / "clip" / "settings.json").is_file() and not (out / "broken").exists()
    assert not (out / ".broken.partial").exists()
    # a rerun skips what is complete; --overwrite redoes it
    assert main(args[:7] + [str(video), "-o", str(out)]) == 0
    assert "already complete" in capsys.readouterr().out
    assert main(args[:7] + [str(video), "-o", str(out), "--overwrite"]) == 0
    assert "1 predicted" in capsys.readouterr().out and not (out / ".clip.partial").exists()


def test_missing_weights_say_what_to_do(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DYNSAL_MODELS", str(tmp_path / "models"))
    video, _ = make_inputs(tmp_path)
    assert main(["predict", "--net", "stsconv", str(video), "-o", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err
    assert "dynsal weights fetch stsconvnet-diem" in err and str(tmp_path / "models") in err
    assert main(["predict", "--net", "ssnet", str(video), "-o", str(tmp_path / "o")]) == 1
    assert "no published weights for 'ssnet'" in capsys.readouterr().err


def test_stsmax_without_weights_names_both_ways_from_the_published_stsconvnet(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DYNSAL_MODELS", str(tmp_path / "models"))
    video, _ = make_inputs(tmp_path)
    assert main(["predict", "--net", "stsmax", str(video), "-o", str(tmp_path / "o")]) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    published = tmp_path / "models" / "stsconvnet.caffemodel"
    assert len(lines) == 1 and "no published weights for 'stsmax'" in lines[0]
    assert f"--weights {published}`" in lines[0] and "leaves conv_fuse unused" in lines[0]
    assert f"dynsal train prototxt/stsmax_solver.prototxt --weights {published}" in lines[0]
    recipe = (REPO / "recipes" / "diem.md").read_text()
    assert "dynsal train prototxt/stsmax_solver.prototxt --weights" in recipe and "--net stsmax --weights" in recipe


def test_stsconvnet_weights_run_as_stsmax_with_a_warning_and_their_origin_recorded(weights, tmp_path, capsys):
    """Caffe copies layers by name: STSConvNet's file fits STSMaxNet, whose layers are STSConvNet's minus conv_fuse."""
    video, _ = make_inputs(tmp_path, frames=2)
    out = tmp_path / "out"
    assert main(["predict", "--net", "stsmax", "--weights", str(weights["stsconv"]), "--engine", "torch",
                 str(video), "-o", str(out), "--no-overlay"]) == 0
    err = capsys.readouterr().err
    warning = [line for line in err.splitlines() if "warning" in line]
    assert len(warning) == 1 and "conv_fuse" in warning[0] and "STSConvNet's" in warning[0], err
    settings = json.loads((out / "clip" / "settings.json").read_text())
    assert (settings["net"], settings["weights_net"]) == ("stsmax", "stsconv")
    assert main(["predict", "--net", "stsmax", "--weights", str(weights["stsmax"]), "--engine", "torch",
                 str(video), "-o", str(tmp_path / "own"), "--no-overlay"]) == 0
    assert "warning" not in capsys.readouterr().err
    settings = json.loads((tmp_path / "own" / "clip" / "settings.json").read_text())
    assert (settings["net"], settings["weights_net"]) == ("stsmax", "stsmax")


def test_shards_split_the_inputs(weights, tmp_path, capsys):
    video, frame_dir = make_inputs(tmp_path, frames=3)
    base = ["predict", "--net", "ssnet", "--weights", str(weights["ssnet"]), "--engine", "torch", str(video),
            str(frame_dir), "-o", str(tmp_path / "out"), "--no-overlay"]
    assert main(base + ["--shard", "1/2"]) == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["shots"]
    assert main(base + ["--shard", "0/2"]) == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["clip", "shots"]
    assert main(base + ["--shard", "2/2"]) == 1
    assert "write it as i/n" in capsys.readouterr().err


def test_flow_settings_of_a_dataset_or_the_model_with_overrides(weights, tmp_path):
    """--flow-settings takes a dataset's / `dynsal flow`'s record; --flow-param overrides one parameter of it,
    or of the model's own settings JSON when no file is given."""
    import shutil

    video, _ = make_inputs(tmp_path)
    record = {"resize": "native", "flow": {"method": "farneback", "params": {"levels": 2}, "encoding": "xy",
                                           "normalisation": "fixed", "max_magnitude": 8.0}}
    (tmp_path / "flow_settings.json").write_text(json.dumps(record))
    common = ["predict", "--net", "tsnet", "--engine", "torch", str(video), "--no-overlay", "--no-png"]
    assert main([*common, "--weights", str(weights["tsnet"]), "-o", str(tmp_path / "a"), "--flow-settings",
                 str(tmp_path / "flow_settings.json"), "--flow-param", "winsize=9"]) == 0
    used = json.loads((tmp_path / "a" / "clip" / "settings.json").read_text())["flow"]
    assert used == {**record["flow"], "params": {"levels": 2, "winsize": 9}}
    model = tmp_path / "tsnet.caffemodel"
    shutil.copy(weights["tsnet"], model)
    (tmp_path / "tsnet.caffemodel.json").write_text(json.dumps(record))
    assert main([*common, "--weights", str(model), "-o", str(tmp_path / "b"), "--flow-param", "winsize=7"]) == 0
    used = json.loads((tmp_path / "b" / "clip" / "settings.json").read_text())["flow"]
    assert used == {**record["flow"], "params": {"levels": 2, "winsize": 7}}
    assert main([*common, "--weights", str(model), "-o", str(tmp_path / "c"), "--flow-method", "dis"]) == 0
    assert json.loads((tmp_path / "c" / "clip" / "settings.json").read_text())["flow"]["params"] == {}


def test_dhf1k_round_trip_predict_then_eval_matches_every_frame(weights, tmp_path, capsys):
    """DHF1K as distributed: video/001.AVI and annotation/0001/{maps,fixation/maps}/0001.* (1-based);
    `predict --layout dhf1k` writes exactly the annotation's names and `dynsal eval` pairs them all."""
    frames = 4
    (tmp_path / "DHF1K" / "video").mkdir(parents=True)
    panning_video(tmp_path / "DHF1K" / "video" / "001.AVI", frames, *FRAME_SIZE)
    annotation = tmp_path / "DHF1K" / "annotation" / "0001"
    rng = np.random.default_rng(0)
    for i in range(1, frames + 1):
        (annotation / "maps").mkdir(parents=True, exist_ok=True)
        (annotation / "fixation" / "maps").mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(annotation / "maps" / f"{i:04d}.png"), rng.integers(0, 256, FRAME_SIZE, dtype=np.uint8))
        fixations = np.zeros(FRAME_SIZE, np.uint8)
        fixations[rng.integers(0, FRAME_SIZE[0], 4), rng.integers(0, FRAME_SIZE[1], 4)] = 1
        savemat(str(annotation / "fixation" / "maps" / f"{i:04d}.mat"), {"I": fixations})
    out = tmp_path / "pred"
    assert main(["predict", "--net", "ssnet", "--weights", str(weights["ssnet"]), "--engine", "torch", "--layout",
                 "dhf1k", str(tmp_path / "DHF1K" / "video" / "001.AVI"), "-o", str(out), "--no-overlay"]) == 0
    assert sorted(p.name for p in (out / "0001" / "maps").iterdir()) == sorted(
        p.name for p in (annotation / "maps").iterdir())
    assert json.loads((out / "0001" / "settings.json").read_text())["outputs"]["layout"] == "dhf1k"
    assert main(["predict", "--net", "ssnet", "--weights", str(weights["ssnet"]), "--engine", "torch", "--layout",
                 "dhf1k", str(tmp_path / "DHF1K" / "video" / "001.AVI"), "-o", str(out), "--no-overlay"]) == 0
    assert "already complete in " + str(out / "0001") in capsys.readouterr().out  # the layout's name is checked
    assert main(["eval", str(out), str(tmp_path / "DHF1K" / "annotation"), "--metrics", "nss,cc", "--quiet"]) == 0
    assert f"1 video(s), {frames} frame(s)" in capsys.readouterr().out
    # --overwrite replaces exactly what the record lists, maps/ included, and nothing else is left behind
    (out / "0001" / "maps" / "notes.txt").write_text("mine")
    assert main(["predict", "--net", "ssnet", "--weights", str(weights["ssnet"]), "--engine", "torch", "--layout",
                 "dhf1k", str(tmp_path / "DHF1K" / "video" / "001.AVI"), "-o", str(out), "--overwrite"]) == 1
    assert "maps/notes.txt, which dynsal did not write" in capsys.readouterr().err
    (out / "0001" / "maps" / "notes.txt").unlink()
    assert main(["predict", "--net", "ssnet", "--weights", str(weights["ssnet"]), "--engine", "torch", "--layout",
                 "dhf1k", str(tmp_path / "DHF1K" / "video" / "001.AVI"), "-o", str(out), "--overwrite"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["0001", "0001_overlay.mp4"]
    assert len(list((out / "0001" / "maps").iterdir())) == frames


def test_weights_of_another_net_name_both_files_and_nets_once(weights, tmp_path, capsys):
    video, _ = make_inputs(tmp_path)
    assert main(["predict", "--net", "stsconv", "--weights", str(weights["ssnet"]), "--engine", "torch", str(video),
                 "-o", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert f"{weights['ssnet']} into --net stsconv: the caffemodel (net 'SSNet') does not fit net 'STSConvNet'" in err
    assert "lacks (" in err and err.count("dynsal init-weights") == 1 and "allow_missing" not in err
