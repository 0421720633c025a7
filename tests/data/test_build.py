"""Dataset builds: aligned LMDBs, HDF5 = LMDB after Caffe's transform, resume, bad input, augmentation."""
from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path

import h5py
import numpy as np
import pytest

from dynsal.data import gaze as G
from dynsal.data import ground_truth as GT
from dynsal.data.build import build_split, manifest_path
from dynsal.data.dataset import DIEM_TEST_VIDEOS, DatasetSettings, VideoSource, augment, split_videos
from dynsal.data.flow import FlowSettings, compute_flow, mirror_flow
from dynsal.data.hdf5_writer import Hdf5Writer
from dynsal.data.lmdb_writer import LmdbWriter
from dynsal.data.sources import diem_sources, layout_sources
from dynsal.data.video import ResizePolicy, read_frames
from dynsal.errors import DataError
from dynsal.zoo import FRAME_MEAN, INPUT_SCALE, MAP_MEAN, MAP_SCALE
from tests.data.readers import arrays, hdf5_contents, lmdb_contents, lmdb_files
from tests.data.synthetic import panning_video, steady_gaze

SETTINGS = DatasetSettings(resize="fixed:48x64", sigma="8px")
VIDEOS = (("clipA_128x96", 6), ("clipB_128x96", 5))


@pytest.fixture()
def diem(tmp_path):
    """Two panning videos with three viewers' gaze each: (videos folder, gaze folder)."""
    videos, gaze = tmp_path / "video", tmp_path / "event_data"
    videos.mkdir()
    for seed, (name, count) in enumerate(VIDEOS):
        panning_video(videos / f"{name}.avi", count, seed=seed)
        steady_gaze(gaze, name, count, (128, 96))
    return videos, gaze


def build(root, sources, settings=SETTINGS, backend="lmdb", **kwargs):
    writer = LmdbWriter if backend == "lmdb" else functools.partial(Hdf5Writer, rows_per_file=4)
    writer = kwargs.pop("writer", writer)
    return build_split("train", sources, root, settings, writer, backend, progress=False, **kwargs)


def test_lmdbs_are_aligned_and_hold_what_the_net_sees(tmp_path, diem):
    sources = diem_sources([diem[0]], diem[1])
    manifest = build(tmp_path / "out", sources)
    db = lmdb_contents(tmp_path / "out")
    keys = [k for k, _ in db["frames"]]
    assert keys == [k for k, _ in db["flows"]] == [k for k, _ in db["maps"]] == manifest["keys"]
    assert manifest["count"] == len(keys) == 11 and keys == sorted(keys)
    assert len(set(k.split("_", 1)[0] for k in keys)) == 11 and keys[0].startswith("00000000_")
    frames, flows, maps = (arrays(db[k]) for k in ("frames", "flows", "maps"))
    flow_settings = FlowSettings()
    for key, frame, flow_image, saliency in zip(keys, frames, flows, maps):
        video, index = key.split("_", 1)[1].rsplit("_", 1)
        index = int(index)
        decoded = [f.image for f in read_frames(diem[0] / f"{video}.avi", ResizePolicy.parse("fixed:48x64"))]
        assert frame.shape == (3, 48, 64) and frame.dtype == np.uint8
        assert np.array_equal(frame, decoded[index][..., ::-1].transpose(2, 0, 1))  # RGB, CHW
        a, b = (0, 1) if index == 0 else (index - 1, index)
        expected_flow = flow_settings.image(compute_flow(decoded[a], decoded[b]))
        assert np.array_equal(flow_image, expected_flow[..., ::-1].transpose(2, 0, 1))
        points = G.diem_fixations(G.gaze_files(diem[1], video), (128, 96), 6)[index]
        assert len(points) == 3
        assert np.array_equal(saliency[0], GT.to_uint8(G.density_map(points, (128, 96), (48, 64), 8.0)))
    assert json.loads(manifest_path(tmp_path / "out", "train", "lmdb").read_text())["sources"].keys() == \
        {"clipA_128x96", "clipB_128x96"}
    assert not (tmp_path / "out" / ".train_lmdb.partial").exists()


def test_hdf5_holds_the_lmdb_values_after_caffes_transform(tmp_path, diem):
    sources = diem_sources([diem[0]], diem[1])
    build(tmp_path / "out", sources)
    manifest = build(tmp_path / "out", sources, backend="hdf5")
    assert manifest["files"] == 3 and manifest["rows_per_file"] == 4
    listed = (tmp_path / "out" / "train_h5.txt").read_text().split()
    assert listed == [str((tmp_path / "out" / "train_h5" / f"train_0000{i}.h5").resolve()) for i in range(3)]
    h5 = hdf5_contents(tmp_path / "out")
    db = lmdb_contents(tmp_path / "out")
    mean = np.array(FRAME_MEAN, np.float32)[:, None, None]
    for name, kind, centre, scale in (("data1", "frames", mean, INPUT_SCALE), ("data1_b", "flows", mean, INPUT_SCALE),
                                      ("label", "maps", np.float32(MAP_MEAN), MAP_SCALE)):
        expected = np.stack([(a.astype(np.float32) - centre) * np.float32(scale) for a in arrays(db[kind])])
        assert h5[name].dtype == np.float32 and np.array_equal(h5[name], expected)
    with h5py.File(listed[0], "r") as handle:
        assert handle["data1"].chunks == (1, 3, 48, 64)


class Interrupt(Exception):
    pass


def _interrupting(writer_class, after: int):
    """A writer whose put raises Interrupt after `after` samples (a build killed mid-way)."""
    calls = {"n": 0}

    def make(*args, **kwargs):
        writer = writer_class(*args, **kwargs)
        original = writer.put

        def put(sample):
            calls["n"] += 1
            if calls["n"] > after:
                raise Interrupt()
            original(sample)
        writer.put = put
        return writer
    return make, calls


@pytest.mark.parametrize("backend", ["lmdb", "hdf5"])
def test_interrupted_build_resumes_to_the_same_dataset(tmp_path, diem, backend):
    sources = diem_sources([diem[0]], diem[1])
    settings = DatasetSettings(resize="fixed:48x64", sigma="8px", mirror=True)
    writer_class = LmdbWriter if backend == "lmdb" else functools.partial(Hdf5Writer, rows_per_file=4)
    make, calls = _interrupting(writer_class, after=16)  # 12 samples of clipA, then 4 of clipB
    with pytest.raises(Interrupt):
        build(tmp_path / "resumed", sources, settings, backend, writer=make)
    root = tmp_path / "resumed"
    assert not manifest_path(root, "train", backend).exists()
    assert not (root / "train_frames_lmdb").exists() and not (root / "train_h5.txt").exists()
    progress = json.loads((root / f".train_{backend}.partial" / "progress.json").read_text())
    assert progress["done"] == ["clipA_128x96"]
    make, calls = _interrupting(writer_class, after=10 ** 6)
    build(root, sources, settings, backend, writer=make)
    assert calls["n"] == 10  # only clipB's 5 frames × 2 variants were redone
    build(tmp_path / "fresh", sources, settings, backend)
    if backend == "lmdb":
        assert lmdb_contents(root) == lmdb_contents(tmp_path / "fresh")
        assert lmdb_files(root) == lmdb_files(tmp_path / "fresh")  # sealed: byte for byte, whatever the batches
    else:
        ours, fresh = hdf5_contents(root), hdf5_contents(tmp_path / "fresh")
        assert all(np.array_equal(ours[k], fresh[k]) for k in ours)
    with pytest.raises(DataError, match="finished train .* exists; pass --overwrite"):
        build(root, sources, settings, backend)
    build(root, sources, settings, backend, overwrite=True)


def test_resume_with_other_settings_is_refused(tmp_path, diem):
    sources = diem_sources([diem[0]], diem[1])
    make, _ = _interrupting(LmdbWriter, after=3)
    with pytest.raises(Interrupt):
        build(tmp_path / "out", sources, writer=make)
    with pytest.raises(DataError, match="interrupted build with other inputs or settings"):
        build(tmp_path / "out", sources, DatasetSettings(resize="fixed:48x64", sigma="9px"))


@pytest.mark.parametrize("backend", ["lmdb", "hdf5"])
def test_a_video_changed_before_the_resume_is_refused_naming_it(tmp_path, diem, backend):
    """Issue 30: the samples of a video replaced (same name, same frame count, other content) between a killed
    build and its rerun must not be mixed with those of the old one."""
    sources = diem_sources([diem[0]], diem[1])
    writer_class = LmdbWriter if backend == "lmdb" else functools.partial(Hdf5Writer, rows_per_file=4)
    make, _ = _interrupting(writer_class, after=8)  # clipA's 6 frames are done, clipB's are not
    with pytest.raises(Interrupt):
        build(tmp_path / "out", sources, backend=backend, writer=make)
    staging = tmp_path / "out" / f".train_{backend}.partial"
    progress = (staging / "progress.json").read_bytes()
    clip = diem[0] / "clipA_128x96.avi"
    old = hashlib.sha256(clip.read_bytes()).hexdigest()
    panning_video(clip, 6, seed=9)
    new = hashlib.sha256(clip.read_bytes()).hexdigest()
    with pytest.raises(DataError) as refused:
        build(tmp_path / "out", sources, backend=backend)
    assert str(refused.value) == (
        f"{staging}: holds an interrupted build with other inputs or settings (the video clipA_128x96 changed: "
        f"{clip}: sha256 {old[:12]}… → {new[:12]}…); its samples must not be mixed with new ones: rerun it with the "
        "same ones, or delete the folder to start afresh")
    assert (staging / "progress.json").read_bytes() == progress
    assert not manifest_path(tmp_path / "out", "train", backend).exists()


def test_torn_hdf5_file_is_rewritten(tmp_path, diem):
    sources = diem_sources([diem[0]], diem[1])
    make, _ = _interrupting(functools.partial(Hdf5Writer, rows_per_file=4), after=8)
    with pytest.raises(Interrupt):
        build(tmp_path / "out", sources, backend="hdf5", writer=make)
    staging = tmp_path / "out" / ".train_hdf5.partial"
    torn = sorted((staging / "h5").glob("*.h5"))[0]
    torn.write_bytes(torn.read_bytes()[:100])
    build(tmp_path / "out", sources, backend="hdf5")
    build(tmp_path / "fresh", sources, backend="hdf5")
    ours, fresh = hdf5_contents(tmp_path / "out"), hdf5_contents(tmp_path / "fresh")
    assert all(np.array_equal(ours[k], fresh[k]) for k in ours)


def test_two_workers_write_the_same_dataset(tmp_path, diem):
    sources = diem_sources([diem[0]], diem[1])
    build(tmp_path / "one", sources, jobs=1)
    build(tmp_path / "two", sources, jobs=2)
    assert lmdb_contents(tmp_path / "one") == lmdb_contents(tmp_path / "two")


def test_lmdb_map_grows_when_full(tmp_path, diem):
    sources = diem_sources([diem[0]], diem[1])
    sizes = []

    def small(*args):
        writer = LmdbWriter(*args, map_size=1 << 15)
        sizes.append(writer)
        return writer
    build(tmp_path / "small", sources, writer=small)
    build(tmp_path / "big", sources)
    assert lmdb_contents(tmp_path / "small") == lmdb_contents(tmp_path / "big")
    assert lmdb_files(tmp_path / "small") == lmdb_files(tmp_path / "big")  # a 32 KB map cannot hold it: it grew


def _nothing_finished(root: Path):
    return not manifest_path(root, "train", "lmdb").exists() and not (root / "train_frames_lmdb").exists()


def test_bad_input_names_the_file_and_leaves_nothing_finished(tmp_path, diem):
    videos, gaze = diem
    panning_video(videos / "extra_128x96.avi", 4)
    with pytest.raises(DataError, match="no gaze file for video 'extra_128x96'"):
        diem_sources([videos], gaze)
    (videos / "extra_128x96.avi").unlink()
    steady_gaze(gaze, "clipB_128x96", 9, (128, 96))  # gaze for 9 frames, the video has 5
    sources = diem_sources([videos], gaze)
    with pytest.raises(DataError, match=r"diem\ds.asc_clipB_128x96.txt: gaze rows go up to frame 9 but the video "
                                        r".*clipB_128x96.avi has 5 frames"):
        build(tmp_path / "out", sources)
    assert _nothing_finished(tmp_path / "out")
    broken = videos / "clipB_128x96.avi"
    broken.write_bytes(b"\x00" * 4096)
    with pytest.raises(DataError, match="clipB_128x96.avi"):
        build(tmp_path / "out2", diem_sources([videos], gaze))
    assert _nothing_finished(tmp_path / "out2")


def test_augmentation_mirrors_and_crops_consistently():
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (40, 60, 3), dtype=np.uint8)
    saliency = rng.integers(0, 256, (40, 60), dtype=np.uint8)
    flow = np.zeros((40, 60, 2), np.float32) + np.array([2.0, 1.0], np.float32)
    f, fl, s = augment(frame, flow, saliency, True, 1.0, seed=1)
    assert np.array_equal(f, frame[:, ::-1]) and np.array_equal(s, saliency[:, ::-1])
    assert np.array_equal(fl, mirror_flow(flow))
    f, fl, s = augment(frame, flow, saliency, False, 0.5, seed=1)
    assert f.shape == frame.shape and s.shape == saliency.shape
    assert np.allclose(fl, [4.0, 2.0])  # a crop of half the size, rescaled ×2: motion ×2
    again = augment(frame, flow, saliency, False, 0.5, seed=1)
    assert np.array_equal(again[0], f) and not np.array_equal(augment(frame, flow, saliency, False, 0.5, 2)[0], f)


def test_augmented_samples_in_the_dataset(tmp_path, diem):
    sources = diem_sources([diem[0] / "clipA_128x96.avi"], diem[1])
    settings = DatasetSettings(resize="fixed:48x64", sigma="8px", mirror=True, scales=(0.75,), shuffle=False)
    manifest = build(tmp_path / "out", sources, settings)
    assert manifest["keys"][:4] == ["00000000_clipA_128x96_000000", "00000001_clipA_128x96_000000_m",
                                    "00000002_clipA_128x96_000000_s0.75", "00000003_clipA_128x96_000000_s0.75_m"]
    frames, maps = arrays(lmdb_contents(tmp_path / "out")["frames"]), arrays(lmdb_contents(tmp_path / "out")["maps"])
    assert np.array_equal(frames[1], frames[0][:, :, ::-1]) and np.array_equal(maps[1], maps[0][:, :, ::-1])
    assert np.array_equal(frames[3], frames[2][:, :, ::-1])


def test_splits():
    names = list(DIEM_TEST_VIDEOS[:3]) + ["arctic_bears_1066x710", "basketball_of_sorts_960x540"]
    splits = split_videos(names, "diem")
    assert splits["val"] == sorted(DIEM_TEST_VIDEOS[:3]) and splits["train"] == sorted(names[3:])
    assert len(DIEM_TEST_VIDEOS) == 20
    seeded = split_videos([f"v{i}" for i in range(10)], val_fraction=0.3, seed=4)
    assert len(seeded["val"]) == 3 and seeded == split_videos([f"v{i}" for i in range(10)], val_fraction=0.3, seed=4)
    with pytest.raises(DataError, match="unknown split preset"):
        split_videos(names, "dhf1k")


def test_layout_dataset(tmp_path):
    import cv2

    for v in ("v1", "v2"):
        for sub in ("images", "maps"):
            (tmp_path / "train" / v / sub).mkdir(parents=True)
        for i in range(3):
            cv2.imwrite(str(tmp_path / "train" / v / "images" / f"{i + 1:04d}.png"),
                        np.random.default_rng(i).integers(0, 256, (24, 32, 3), dtype=np.uint8))
            cv2.imwrite(str(tmp_path / "train" / v / "maps" / f"{i + 1:04d}.png"), np.full((48, 64), 40 * i, np.uint8))
    settings = DatasetSettings(resize="native", shuffle=False)
    manifest = build(tmp_path / "out", layout_sources(tmp_path / "train"), settings)
    assert manifest["count"] == 6 and manifest["keys"][0] == "00000000_v1_000000"
    db = lmdb_contents(tmp_path / "out")
    maps = arrays(db["maps"])
    assert [int(m[0, 0, 0]) for m in maps] == [0, 40, 80, 0, 40, 80] and maps[0].shape == (1, 24, 32)
    image = cv2.imread(str(tmp_path / "train" / "v1" / "images" / "0002.png"))
    assert np.array_equal(arrays(db["frames"])[1], image[..., ::-1].transpose(2, 0, 1))


def test_settings_are_checked():
    for bad, message in (({"stride": 0}, "stride"), ({"scales": (1.5,)}, "scales"), ({"resize": "big"}, "resize"),
                         ({"eyes": "third"}, "eyes"), ({"flow": {"method": "nope"}}, "flow method")):
        with pytest.raises(DataError, match=message):
            DatasetSettings(**bad)
    with pytest.raises(DataError, match="rows per file"):
        Hdf5Writer(Path("staging"), "train", 3, rows_per_file=0)
    with pytest.raises(DataError, match="same name"):
        build_split("train", [VideoSource("a", Path("x")), VideoSource("a", Path("y"))], "out", SETTINGS,
                    LmdbWriter, "lmdb")


def test_build_interrupted_while_moving_outputs_finishes_on_rerun(tmp_path, diem, monkeypatch):
    """A build killed between renaming its databases resumes the renames and ends complete."""
    from dynsal.data import build as B

    sources = diem_sources([diem[0]], diem[1])
    real_replace = B.os.replace

    def replace(a, b):
        if str(a).endswith("flows_lmdb.sealed"):  # killed after moving the frames database
            raise Interrupt()
        real_replace(a, b)
    monkeypatch.setattr(B.os, "replace", replace)
    with pytest.raises(Interrupt):
        build(tmp_path / "out", sources)
    assert (tmp_path / "out" / "train_frames_lmdb").exists() and not manifest_path(tmp_path / "out", "train",
                                                                                    "lmdb").exists()
    monkeypatch.setattr(B.os, "replace", real_replace)
    manifest = build(tmp_path / "out", sources)
    build(tmp_path / "fresh", sources)
    assert lmdb_contents(tmp_path / "out") == lmdb_contents(tmp_path / "fresh")
    assert lmdb_files(tmp_path / "out") == lmdb_files(tmp_path / "fresh")
    assert manifest["count"] == 11 and not (tmp_path / "out" / ".train_lmdb.partial").exists()


def test_build_interrupted_while_sealing_finishes_on_rerun(tmp_path, diem, monkeypatch):
    """A build killed while sealing its databases (frames sealed, flows half-written) seals again on the rerun:
    the part-written copy is written anew, the sealed one kept, and the files equal an uninterrupted build's."""
    from dynsal.data import lmdb_writer as W

    sources = diem_sources([diem[0]], diem[1])
    real_seal = W.seal_copy

    def seal(source, target):
        real_seal(source, target)
        if source.name == "flows_lmdb":
            raise Interrupt()  # killed before the rename: flows_lmdb.sealed.part is left behind
    monkeypatch.setattr(W, "seal_copy", seal)
    with pytest.raises(Interrupt):
        build(tmp_path / "out", sources)
    staging = tmp_path / "out" / ".train_lmdb.partial"
    assert sorted(p.name for p in staging.glob("*_lmdb*")) == [
        "flows_lmdb", "flows_lmdb.sealed.part", "frames_lmdb.sealed", "maps_lmdb"]
    monkeypatch.setattr(W, "seal_copy", real_seal)
    build(tmp_path / "out", sources)
    build(tmp_path / "fresh", sources)
    assert lmdb_files(tmp_path / "out") == lmdb_files(tmp_path / "fresh")
    assert lmdb_contents(tmp_path / "out") == lmdb_contents(tmp_path / "fresh")


def test_observer_subset_maps(tmp_path, diem):
    """Gaze augmentation: `_o1` samples carry the map of one seeded draw of 1 of the 3 viewers."""
    sources = diem_sources([diem[0] / "clipA_128x96.avi"], diem[1])
    settings = DatasetSettings(resize="fixed:48x64", sigma="8px", observer_subsets=1, observer_fraction=0.34,
                               shuffle=False)
    manifest = build(tmp_path / "out", sources, settings)
    assert manifest["keys"][:2] == ["00000000_clipA_128x96_000000", "00000001_clipA_128x96_000000_o1"]
    db = lmdb_contents(tmp_path / "out")
    frames, maps = arrays(db["frames"]), arrays(db["maps"])
    files = G.gaze_files(diem[1], "clipA_128x96")
    per_viewer = [G.diem_fixations([f], (128, 96), 6) for f in files]
    chosen = set()
    for i in range(0, 12, 2):
        frame = i // 2
        assert np.array_equal(frames[i], frames[i + 1])
        everyone = np.concatenate([v[frame] for v in per_viewer])
        assert np.array_equal(maps[i][0], GT.to_uint8(G.density_map(everyone, (128, 96), (48, 64), 8.0)))
        matches = [v for v in range(3) if np.array_equal(
            maps[i + 1][0], GT.to_uint8(G.density_map(per_viewer[v][frame], (128, 96), (48, 64), 8.0)))]
        assert len(matches) == 1
        chosen.add(matches[0])
    assert len(chosen) == 1  # one draw per video
    with pytest.raises(DataError, match="observer subsets"):
        DatasetSettings(observer_subsets=1, observer_fraction=0)


def test_no_worker_processes_is_a_clear_error(tmp_path, diem, monkeypatch):
    """Where a process pool cannot start (no /dev/shm), --jobs N says to run with --jobs 1."""
    from dynsal import workers as W

    class NoPool:
        def Pool(self, *args, **kwargs):
            raise OSError(38, "Function not implemented")
    monkeypatch.setattr(W, "get_context", lambda method: NoPool())
    sources = diem_sources([diem[0]], diem[1])
    with pytest.raises(DataError, match="cannot start 2 worker processes.*run with --jobs 1"):
        build(tmp_path / "out", sources, jobs=2)
    assert build(tmp_path / "out", sources)["count"] == 11
