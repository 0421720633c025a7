"""`dynsal flow`, `dynsal make-lmdb`, `dynsal make-hdf5` and the scripts/ wrappers, end to end."""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np

from dynsal.cli import main
from dynsal.data import flow_folder
from dynsal.data.flo import read_flo
from dynsal.data.flow import FlowSettings, compute_flow
from dynsal.data.ground_truth import read_fixations, read_map
from dynsal.data.video import read_frames
from tests.data.readers import arrays, hdf5_contents, lmdb_contents
from tests.data.synthetic import panning_video, steady_gaze

REPO = Path(__file__).resolve().parents[2]


def test_flow_command_writes_images_flo_and_settings(tmp_path, capsys):
    video = panning_video(tmp_path / "pan.avi", 4, 48, 64, step=3)
    out = tmp_path / "flows"
    assert main(["flow", str(video), "-o", str(out), "--flo", "--method", "farneback", "--encoding", "xy",
                 "--normalisation", "fixed", "--max-magnitude", "8", "--param", "winsize=9"]) == 0
    assert "4 flow images" in capsys.readouterr().out
    folder = out / "pan"
    assert sorted(p.name for p in folder.glob("*.png")) == [f"{i:06d}.png" for i in range(4)]
    record = json.loads((folder / "flow_settings.json").read_text())
    settings = FlowSettings.from_dict(record["flow"])
    assert settings == FlowSettings("farneback", {"winsize": 9}, "xy", "fixed", 8.0) and record["resize"] == "native"
    frames = [f.image for f in read_frames(video)]
    flow = compute_flow(frames[1], frames[2], "farneback", winsize=9)
    assert np.array_equal(read_flo(folder / "000002.flo"), flow)
    assert np.array_equal(cv2.imread(str(folder / "000002.png")), settings.image(flow))
    assert np.median(flow[8:-8, 8:-8, 0]) < -2.5  # content moves left by 3 px a frame
    assert np.array_equal(read_flo(folder / "000000.flo"), compute_flow(frames[0], frames[1], "farneback", winsize=9))


def test_flow_rerun_keeps_what_is_complete_and_refuses_a_changed_video(tmp_path, capsys):
    """Issue 30: a flow folder records its video's identity. A rerun keeps a complete folder of the same video
    (a killed run resumes), refuses one made from a video since replaced under the same name, naming the
    change, and --overwrite replaces it wholly (no flow image of the old, longer video left behind)."""
    video = panning_video(tmp_path / "pan.avi", 4, 48, 64, step=3)
    out = tmp_path / "flows"
    assert main(["flow", str(video), "-o", str(out), "--flo"]) == 0
    folder = out / "pan"
    record = json.loads((folder / "flow_settings.json").read_text())
    old = hashlib.sha256(video.read_bytes()).hexdigest()
    assert record["frames"] == 4 and record["input_identity"]["sha256"] == old
    capsys.readouterr()
    stamps = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    assert main(["flow", str(video), "-o", str(out), "--flo"]) == 0
    assert capsys.readouterr().out == f"{video}: already complete (4 flow images; --overwrite to redo)\n"
    assert {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} == stamps
    panning_video(tmp_path / "pan.avi", 3, 48, 64, step=2, seed=5)
    new = hashlib.sha256(video.read_bytes()).hexdigest()
    assert main(["flow", str(video), "-o", str(out), "--flo"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"dynsal flow: error: {folder} holds the flow of another request (input content: sha256 "
                          f"{old[:12]}… → {new[:12]}… (size ") and err.endswith(
        "; rerun with --overwrite to replace it, or choose another output folder (-o)\n"), err
    assert {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} == stamps
    assert main(["flow", str(video), "-o", str(out), "--flo", "--overwrite"]) == 0
    assert "3 flow images" in capsys.readouterr().out
    assert sorted(p.name for p in folder.iterdir()) == [f"{i:06d}{s}" for i in range(3) for s in (".flo", ".png")] + [
        "flow_settings.json"]
    assert main(["flow", str(video), "-o", str(tmp_path / "fresh"), "--flo"]) == 0
    assert all((folder / name).read_bytes() == (tmp_path / "fresh" / "pan" / name).read_bytes()
               for name in os.listdir(folder) if name != "flow_settings.json")
    (folder / "000001.png").unlink()  # a file lost since: the folder is made again, not taken as complete
    assert main(["flow", str(video), "-o", str(out), "--flo"]) == 0 and "3 flow images" in capsys.readouterr().out
    assert (folder / "000001.png").read_bytes() == (tmp_path / "fresh" / "pan" / "000001.png").read_bytes()
    assert main(["flow", str(video), "-o", str(out), "--method", "farneback"]) == 1
    assert 'flow.method "dis" → "farneback"' in capsys.readouterr().err


def test_flow_command_errors(tmp_path, capsys):
    assert main(["flow", str(tmp_path / "none.avi"), "-o", str(tmp_path / "o")]) == 1
    assert "none.avi: no such video file" in capsys.readouterr().err
    video = panning_video(tmp_path / "pan.avi", 3, 32, 32)
    assert main(["flow", str(video), "-o", str(tmp_path / "o"), "--method", "pwcnet"]) == 1
    assert "unknown flow method 'pwcnet'" in capsys.readouterr().err
    assert main(["flow", str(video), "-o", str(tmp_path / "o"), "--param", "colour=1"]) == 1
    assert "unknown parameter(s) colour" in capsys.readouterr().err


def test_flow_without_worker_processes_is_one_line(tmp_path, capsys, monkeypatch):
    """Where a process pool cannot start (no /dev/shm), `flow --jobs 2` says to run with --jobs 1."""
    from dynsal import workers

    class NoPool:
        def Pool(self, *args, **kwargs):
            raise OSError(38, "Function not implemented")
    monkeypatch.setattr(workers, "get_context", lambda method: NoPool())
    videos = [str(panning_video(tmp_path / f"{name}.avi", 3, 32, 32)) for name in "ab"]
    assert main(["flow", *videos, "-o", str(tmp_path / "o"), "--jobs", "2", "--no-progress"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cannot start 2 worker processes" in err[0] and "run with --jobs 1" in err[0], err


def test_flow_shards_are_balanced_by_frames(tmp_path, capsys, monkeypatch):
    videos = [str(panning_video(tmp_path / f"{name}.avi", n, 32, 32)) for name, n in (("a", 5), ("b", 2), ("c", 3))]
    for index in range(2):
        assert main(["flow", *videos, "-o", str(tmp_path / f"o{index}"), "--shard", f"{index}/2", "--no-progress"]) == 0
    assert capsys.readouterr().out.splitlines() == [f"{videos[0]}: 5 flow images", f"{videos[1]}: 2 flow images",
                                                    f"{videos[2]}: 3 flow images"]  # 5 | 2 + 3, not a + c | b
    monkeypatch.delenv("SLURM_ARRAY_TASK_ID", raising=False)
    assert main(["flow", *videos, "-o", str(tmp_path / "o"), "--shard", "slurm"]) == 1
    assert "--shard slurm: SLURM_ARRAY_TASK_ID" in capsys.readouterr().err and not (tmp_path / "o").exists()


def _diem(tmp_path):
    videos, gaze = tmp_path / "video", tmp_path / "gaze"
    videos.mkdir()
    for seed, name in enumerate(("a_64x48", "b_64x48", "c_64x48")):
        panning_video(videos / f"{name}.avi", 3, 48, 64, seed=seed)
        steady_gaze(gaze, name, 3, (64, 48))
    return videos, gaze


def test_script_and_command_build_the_same_lmdbs(tmp_path):
    videos, gaze = _diem(tmp_path)
    common = ["--videos", str(videos), "--gaze", str(gaze), "--resize", "fixed:24x32", "--sigma", "5px",
              "--val-fraction", "0.34", "--no-progress"]
    assert main(["make-lmdb", "-o", str(tmp_path / "cli"), *common]) == 0
    result = subprocess.run([sys.executable, str(REPO / "scripts" / "make_lmdb.py"), "-o", str(tmp_path / "script"),
                             *common, "--jobs", "2"], capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0, result.stderr
    assert "train: 6 samples from 2 videos" in result.stdout and "val: 3 samples from 1 video " in result.stdout
    for split in ("train", "val"):
        assert lmdb_contents(tmp_path / "cli", split) == lmdb_contents(tmp_path / "script", split)
    manifest = json.loads((tmp_path / "cli" / "train_lmdb_manifest.json").read_text())
    assert manifest["format"] == "dynsal-dataset" and manifest["settings"]["sigma"] == "5px"
    assert main(["make-lmdb", "-o", str(tmp_path / "cli"), *common]) == 1  # finished: needs --overwrite
    assert main(["make-lmdb", "-o", str(tmp_path / "cli"), *common, "--overwrite"]) == 0


def test_make_hdf5_script_from_a_layout(tmp_path):
    for video in ("v1", "v2"):
        for i in range(2):
            pictures = (("images", np.full((24, 32, 3), 50 * i, np.uint8)), ("maps", np.full((24, 32), 9, np.uint8)))
            for sub, image in pictures:
                (tmp_path / "ucf" / "train" / video / sub).mkdir(parents=True, exist_ok=True)
                cv2.imwrite(str(tmp_path / "ucf" / "train" / video / sub / f"{i:03d}.png"), image)
    result = subprocess.run([sys.executable, str(REPO / "scripts" / "make_hdf5.py"), "--layout", str(tmp_path / "ucf"),
                             "--splits", "train", "-o", str(tmp_path / "out"), "--resize", "native",
                             "--list-root", "/data", "--data1", "flow", "--no-progress"],
                            capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out" / "train_h5.txt").read_text() == "/data/train_h5/train_00000.h5\n"
    (tmp_path / "out" / "train_h5.txt").write_text(str(tmp_path / "out" / "train_h5" / "train_00000.h5"))
    h5 = hdf5_contents(tmp_path / "out")
    assert h5["data1"].shape == (4, 3, 24, 32) and np.array_equal(h5["data1"], h5["data1_b"])  # TSNet: data1 = flow
    assert np.allclose(h5["label"], (9 - 127) / 128)


def test_make_lmdb_input_errors(tmp_path, capsys):
    videos, gaze = _diem(tmp_path)
    assert main(["make-lmdb", "-o", str(tmp_path / "o"), "--layout", str(tmp_path), "--videos", str(videos)]) == 1
    assert "either --layout or --videos" in capsys.readouterr().err
    assert main(["make-lmdb", "-o", str(tmp_path / "o"), "--videos", str(videos)]) == 1
    assert "give --videos and --gaze" in capsys.readouterr().err
    assert main(["make-lmdb", "-o", str(tmp_path / "o"), "--layout", str(tmp_path)]) == 1
    assert "no train, val folder(s)" in capsys.readouterr().err
    assert main(["make-lmdb", "-o", str(tmp_path / "o"), "--videos", str(videos), "--gaze", str(gaze),
                 "--splits", "test"]) == 1
    assert "unknown split(s) test" in capsys.readouterr().err


def test_make_lmdb_augmentation_and_ground_truth_options(tmp_path):
    videos, gaze = _diem(tmp_path)
    assert main(["make-lmdb", "-o", str(tmp_path / "out"), "--videos", str(videos / "a_64x48.avi"), "--gaze",
                 str(gaze), "--resize", "fixed:24x32", "--mirror", "--scales", "0.5", "--observer-subsets", "2",
                 "--observer-fraction", "0.34", "--eyes", "left", "--screen", "1280x960", "--sigma", "0.2deg",
                 "--geometry", "60", "30", "1280", "--method", "farneback", "--encoding", "xy", "--no-shuffle",
                 "--splits", "train", "--no-progress"]) == 0
    manifest = json.loads((tmp_path / "out" / "train_lmdb_manifest.json").read_text())
    assert manifest["count"] == 3 * 2 * 2 * 3  # frames × mirror × scales × (all + 2 subsets)
    assert manifest["keys"][:4] == ["00000000_a_64x48_000000", "00000001_a_64x48_000000_m",
                                    "00000002_a_64x48_000000_s0.50", "00000003_a_64x48_000000_s0.50_m"]
    assert manifest["keys"][4] == "00000004_a_64x48_000000_o1"
    settings = manifest["settings"]
    assert settings["flow"]["method"] == "farneback" and settings["geometry"] == [60, 30, 1280]
    assert settings["eyes"] == "left" and settings["observer_subsets"] == 2


def test_saved_ground_truth_is_read_by_dynsal_eval(tmp_path):
    """--save-ground-truth writes maps and fixations in the layout `dynsal eval` reads, matching the LMDB maps."""
    videos, gaze = _diem(tmp_path)
    assert main(["make-lmdb", "-o", str(tmp_path / "out"), "--videos", str(videos), "--gaze", str(gaze), "--resize",
                 "fixed:24x32", "--sigma", "5px", "--no-shuffle", "--splits", "train", "--no-progress",
                 "--save-ground-truth", str(tmp_path / "gt")]) == 0
    maps = sorted((tmp_path / "gt" / "a_64x48" / "maps").glob("*.png"))
    assert [p.name for p in maps] == ["000000.png", "000001.png", "000002.png"]
    lmdb_maps = arrays(lmdb_contents(tmp_path / "out")["maps"])
    assert np.array_equal(read_map(maps[1]), lmdb_maps[1][0])
    fixations = read_fixations(tmp_path / "gt" / "a_64x48" / "fixation" / "000001.png")
    assert fixations.shape == (24, 32) and fixations.sum() == 3
    assert lmdb_maps[1][0][fixations].min() > 200  # the density peaks where the viewers look


def test_interrupted_flow_run_leaves_no_settings_file(tmp_path, monkeypatch):
    """flow_settings.json is written last: a folder without it was interrupted."""
    video = panning_video(tmp_path / "pan.avi", 4, 32, 32)
    calls = {"n": 0}
    real = flow_folder.write_flo

    def failing(field, path):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        real(field, path)
    monkeypatch.setattr(flow_folder, "write_flo", failing)
    assert main(["flow", str(video), "-o", str(tmp_path / "o"), "--flo"]) == 130
    folder = tmp_path / "o" / "pan"
    assert (folder / "000000.flo").exists() and not (folder / "flow_settings.json").exists()
