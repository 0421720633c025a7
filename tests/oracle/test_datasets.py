"""Datasets built by dynsal, read by real Caffe's Data (LMDB) and HDF5Data layers of the zoo's nets.

dynsal builds train and val LMDBs and HDF5 files from test videos and synthetic DIEM gaze; inside
the chroot, Caffe's `stsconv` train_val nets (both backends, TRAIN and TEST phases) run forward a
few batches (more than a split holds, so the readers wrap around) and dump `data1`, `data1_b` and
`label`. They must equal, exactly, the uint8 records dynsal wrote after Caffe's transform
((x − mean)·scale), in key order, with the three LMDBs aligned; the HDF5 path must give the same
arrays as the LMDB path.
"""
from __future__ import annotations

import functools

import numpy as np
import pytest

from dynsal import zoo
from dynsal.caffe import io
from dynsal.data.build import build_split
from dynsal.data.dataset import DatasetSettings
from dynsal.data.hdf5_writer import Hdf5Writer
from dynsal.data.lmdb_writer import LmdbWriter
from dynsal.data.sources import diem_sources
from tests.data.readers import arrays, lmdb_contents
from tests.data.synthetic import panning_video, steady_gaze

BATCH, BATCHES = 2, 4
SETTINGS = DatasetSettings(resize="fixed:48x64", sigma="8px", mirror=True)  # H, W multiples of 4 (loss shape)
SPLITS = {"train": ("clipA_128x96", 3), "val": ("clipB_128x96", 2)}  # 6 and 4 samples with mirroring


def _expected(root, split: str):
    """The batches Caffe must produce from the LMDBs dynsal wrote: keys in order, wrapping around."""
    db = lmdb_contents(root, split)
    keys = [[k for k, _ in db[kind]] for kind in ("frames", "flows", "maps")]
    assert keys[0] == keys[1] == keys[2]
    mean = np.array(zoo.FRAME_MEAN, np.float32)[:, None, None]
    values = {
        "data1": [(a.astype(np.float32) - mean) * np.float32(zoo.INPUT_SCALE) for a in arrays(db["frames"])],
        "data1_b": [(a.astype(np.float32) - mean) * np.float32(zoo.INPUT_SCALE) for a in arrays(db["flows"])],
        "label": [(a.astype(np.float32) - np.float32(zoo.MAP_MEAN)) * np.float32(zoo.MAP_SCALE)
                  for a in arrays(db["maps"])],
    }
    order = [i % len(keys[0]) for i in range(BATCH * BATCHES)]
    return {blob: np.stack([v[i] for i in order]).reshape(BATCHES, BATCH, *v[0].shape) for blob, v in values.items()}


@pytest.mark.caffe_parity
def test_caffe_reads_dynsal_lmdb_and_hdf5_datasets(oracle, workdir, tmp_path):
    videos, gaze = tmp_path / "video", tmp_path / "event_data"
    videos.mkdir()
    for seed, (name, count) in enumerate(SPLITS.values()):
        panning_video(videos / f"{name}.avi", count, seed=seed)
        steady_gaze(gaze, name, count, (128, 96))
    data = workdir.host / "data"
    hdf5 = functools.partial(Hdf5Writer, rows_per_file=3, list_root=workdir.inside("data"))
    for split, (name, _) in SPLITS.items():
        sources = diem_sources([videos / f"{name}.avi"], gaze)
        build_split(split, sources, data, SETTINGS, LmdbWriter, "lmdb", progress=False)
        build_split(split, sources, data, SETTINGS, hdf5, "hdf5", progress=False)
    for backend in ("lmdb", "hdf5"):
        io.write_text(zoo.train_val("stsconv", backend, data_root=workdir.inside("data"), batch=BATCH),
                      workdir.host / f"{backend}.prototxt")
    code = f"""
import caffe, numpy as np
caffe.set_mode_cpu()
out = {{}}
for backend in ("lmdb", "hdf5"):
    for phase in ("TRAIN", "TEST"):
        net = caffe.Net(backend + ".prototxt", getattr(caffe, phase))
        for b in range({BATCHES}):
            net.forward()
            for blob in ("data1", "data1_b", "label"):
                out["%s/%s/%s/%d" % (backend, phase, blob, b)] = net.blobs[blob].data.copy()
np.savez("batches.npz", **out)
"""
    oracle.python(code, workdir)
    with np.load(workdir.host / "batches.npz") as npz:
        got = {k: npz[k] for k in npz.files}
    for phase, split in (("TRAIN", "train"), ("TEST", "val")):
        expected = _expected(data, split)
        for blob, batches in expected.items():
            for b in range(BATCHES):
                lmdb_batch, hdf5_batch = got[f"lmdb/{phase}/{blob}/{b}"], got[f"hdf5/{phase}/{blob}/{b}"]
                assert lmdb_batch.dtype == np.float32 and lmdb_batch.shape == batches[b].shape
                assert np.array_equal(lmdb_batch, batches[b]), (phase, blob, b)
                assert np.array_equal(hdf5_batch, batches[b]), (phase, blob, b)


def test_dataset_build_runs_on_bullseyes_python_numpy_and_opencv(bullseye_oracle, bullseye_workdir):
    """dynsal.data works on Python 3.9, numpy 1.19 and OpenCV 4.5 (Debian bullseye's), LMDB and HDF5."""
    import shutil
    from pathlib import Path

    shutil.copytree(Path(__file__).resolve().parents[1], bullseye_workdir.host / "src" / "tests",
                    ignore=shutil.ignore_patterns("__pycache__"))
    code = """
import sys, numpy, cv2
from pathlib import Path
from tests.data.synthetic import panning_video, steady_gaze
from dynsal.data.build import build_split
from dynsal.data.dataset import DatasetSettings
from dynsal.data.hdf5_writer import Hdf5Writer
from dynsal.data.lmdb_writer import LmdbWriter
from dynsal.data.sources import diem_sources
Path("v").mkdir()
panning_video(Path("v") / "a_64x48.avi", 4, 48, 64)
steady_gaze(Path("g"), "a_64x48", 4, (64, 48))
sources = diem_sources(["v"], "g")
settings = DatasetSettings(resize="fixed:24x32", sigma="5px", mirror=True, scales=(0.5,), observer_subsets=1)
lmdb = build_split("train", sources, "out", settings, LmdbWriter, "lmdb", progress=False)
hdf5 = build_split("train", sources, "out", settings, Hdf5Writer, "hdf5", progress=False)
print(sys.version_info[:2], numpy.__version__, cv2.__version__.split(".")[0], lmdb["count"], hdf5["count"])
"""
    out = bullseye_oracle.python(code, bullseye_workdir).stdout.split()
    assert out[:2] == ["(3,", "9)"] and out[2].startswith("1.19") and out[3] == "4"
    assert out[4:] == ["32", "32"]  # 4 frames × mirror × crop × (all + 1 observer subset)
