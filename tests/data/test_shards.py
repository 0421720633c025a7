"""`--shard i/n`: shards built apart and put together equal an unsharded build, record for record."""
from __future__ import annotations

import functools
import json
import warnings

import numpy as np
import pytest

from dynsal.cli import main
from dynsal.data import dataset as D
from dynsal.data import shards as S
from dynsal.data.build import build_split
from dynsal.data.hdf5_writer import Hdf5Writer
from dynsal.data.lmdb_writer import LmdbWriter
from dynsal.data.sources import diem_sources
from dynsal.errors import DataError, DynsalWarning
from tests.data.readers import hdf5_contents, lmdb_contents, lmdb_files
from tests.data.synthetic import panning_video, steady_gaze

SETTINGS = D.DatasetSettings(resize="fixed:24x32", sigma="5px", mirror=True)
WRITERS = {"lmdb": LmdbWriter, "hdf5": functools.partial(Hdf5Writer, rows_per_file=5)}


@pytest.fixture()
def diem(tmp_path):
    """Three panning videos of 4, 3 and 2 frames with three viewers' gaze each: (videos, gaze)."""
    videos, gaze = tmp_path / "video", tmp_path / "gaze"
    videos.mkdir()
    for seed, (name, count) in enumerate((("a_64x48", 4), ("b_64x48", 3), ("c_64x48", 2))):
        panning_video(videos / f"{name}.avi", count, 48, 64, seed=seed)
        steady_gaze(gaze, name, count, (64, 48))
    return videos, gaze


def build(root, sources, backend="lmdb", settings=SETTINGS, shard=None):
    if shard is not None:
        root, backend = S.shard_root(root, "train", shard), "lmdb"
    return build_split("train", sources, root, settings, WRITERS[backend], backend, progress=False, shard=shard)


def same_dataset(a, b, backend, split="train"):
    if backend == "lmdb":
        return lmdb_contents(a, split) == lmdb_contents(b, split) and lmdb_files(a, split) == lmdb_files(b, split)
    ours, theirs = hdf5_contents(a, split), hdf5_contents(b, split)
    return ours.keys() == theirs.keys() and all(np.array_equal(ours[k], theirs[k]) for k in ours)


def no_computing(monkeypatch):
    def refuse(job):
        raise AssertionError("a sample was computed although a finished shard holds it")
    monkeypatch.setattr(D, "make_samples", refuse)


def test_videos_are_spread_by_sample_count():
    plan = [D.PlanItem(p, v, 0, 0) for p, v in enumerate([0] * 5 + [1] * 3 + [2] * 3 + [3] * 1)]
    assert S.assign_videos(plan, 4, 2) == [0, 1, 1, 0]  # 5+1 against 3+3
    assert S.assign_videos(plan, 4, 1) == [0, 0, 0, 0]
    assert S.assign_videos(plan, 4, 5) == [0, 1, 2, 3]  # more shards than videos: the last stays empty


@pytest.mark.parametrize("backend", ["lmdb", "hdf5"])
def test_shards_put_together_equal_an_unsharded_build(tmp_path, diem, backend, monkeypatch):
    sources = diem_sources([diem[0]], diem[1])
    fresh = build(tmp_path / "fresh", sources, backend)
    parts = [build(tmp_path / "out", sources, shard=(i, 2)) for i in range(2)]
    assert [sorted(p["videos"]) for p in parts] == [["a_64x48"], ["b_64x48", "c_64x48"]]  # 8 samples against 6+4
    assert sorted(parts[0]["keys"] + parts[1]["keys"]) == fresh["keys"]  # the whole split's keys, each once
    assert all(p["shard"] == [i, 2] and p["split_count"] == fresh["count"] for i, p in enumerate(parts))
    no_computing(monkeypatch)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DynsalWarning)  # no shard is refused
        merged = build(tmp_path / "out", sources, backend)
    assert same_dataset(tmp_path / "out", tmp_path / "fresh", backend)
    assert merged == fresh  # the same manifest: counts, keys, settings, source hashes


def test_unfinished_and_foreign_shards_are_computed_here(tmp_path, diem, monkeypatch):
    sources = diem_sources([diem[0]], diem[1])
    build(tmp_path / "out", sources, shard=(0, 2))
    other = D.DatasetSettings(resize="fixed:24x32", sigma="6px", mirror=True)
    build(tmp_path / "out", sources, settings=other, shard=(1, 2))  # another sigma: not this dataset's shard
    (S.shard_root(tmp_path / "out", "train", (1, 3)) / ".train_lmdb.partial").mkdir(parents=True)  # interrupted
    computed = []
    original = D.make_samples
    monkeypatch.setattr(D, "make_samples", lambda job: computed.append(job) or original(job))
    with pytest.warns(DynsalWarning) as warned:  # one `dynsal: warning: …` line each on the command line
        build(tmp_path / "out", sources)
    err = "\n".join(str(w.message) for w in warned)
    assert "train_1of2: shard built from other inputs or settings; not used" in err
    assert "train_1of3: shard not finished; its videos are computed here" in err
    assert len(computed) == 3 + 2  # the frames of b and c; a came from shard 0/2
    build(tmp_path / "fresh", sources)
    assert same_dataset(tmp_path / "out", tmp_path / "fresh", "lmdb")


def test_merge_only_names_the_videos_no_finished_shard_holds(tmp_path, diem):
    sources = diem_sources([diem[0]], diem[1])
    build(tmp_path / "out", sources, shard=(0, 2))
    with pytest.raises(DataError, match=r"--merge-only: no finished shard holds b_64x48, c_64x48 \(not finished: "
                                        r"shard 1 of 2\); finish those"):
        build_split("train", sources, tmp_path / "out", SETTINGS, LmdbWriter, "lmdb", progress=False, merge_only=True)
    assert not (tmp_path / "out" / "train_lmdb_manifest.json").exists()
    build(tmp_path / "out", sources, shard=(1, 2))
    build_split("train", sources, tmp_path / "out", SETTINGS, LmdbWriter, "lmdb", progress=False, merge_only=True)
    build(tmp_path / "fresh", sources)
    assert same_dataset(tmp_path / "out", tmp_path / "fresh", "lmdb")


def test_a_shard_missing_a_record_is_named(tmp_path, diem):
    import lmdb

    sources = diem_sources([diem[0]], diem[1])
    part = build(tmp_path / "out", sources, shard=(0, 1))
    frames = S.shard_root(tmp_path / "out", "train", (0, 1)) / "train_frames_lmdb"
    with lmdb.open(str(frames)) as env, env.begin(write=True) as txn:
        txn.delete(part["keys"][3].encode())
    with pytest.raises(DataError, match=f"train_0of1: the shard lacks record {part['keys'][3]}; delete the shard"):
        build(tmp_path / "out", sources)


def test_shard_command_line(tmp_path, diem, capsys):
    videos, gaze = diem
    common = ["--videos", str(videos), "--gaze", str(gaze), "--resize", "fixed:24x32", "--sigma", "5px",
              "--val-fraction", "0.34", "--no-progress"]
    for i in range(2):
        assert main(["make-hdf5", "-o", str(tmp_path / "out"), *common, "--shard", f"{i}/2"]) == 0
    out = capsys.readouterr().out
    assert "train: 4 samples from 1 video -> " + str(tmp_path / "out" / "shards" / "train_0of2") in out
    assert not (tmp_path / "out" / "train_h5.txt").exists()
    assert main(["make-hdf5", "-o", str(tmp_path / "out"), *common]) == 0
    assert main(["make-hdf5", "-o", str(tmp_path / "fresh"), *common]) == 0
    assert all(same_dataset(tmp_path / "out", tmp_path / "fresh", "hdf5", split) for split in ("train", "val"))
    manifest = json.loads((tmp_path / "out" / "val_hdf5_manifest.json").read_text())
    assert manifest["count"] == manifest["split_count"] and "shard" not in manifest
    assert main(["make-lmdb", "-o", str(tmp_path / "out"), *common, "--shard", "2/2"]) == 1
    assert "--shard '2/2': write it as i/n with 0 <= i < n" in capsys.readouterr().err
    assert main(["make-lmdb", "-o", str(tmp_path / "out"), *common, "--shard", "0/2", "--merge-only"]) == 1
    assert "--merge-only puts shards together; it does not go with --shard" in capsys.readouterr().err
    assert main(["make-lmdb", "-o", str(tmp_path / "out"), *common, "--merge-only"]) == 0  # both shards finished
