"""dynsal's numpy data sources against Caffe's Data (LMDB) and HDF5Data layers, batch by batch."""
from __future__ import annotations

import h5py
import numpy as np
import pytest
from google.protobuf import text_format

from dynsal.caffe import io
from dynsal.caffe.schema import pb
from dynsal.data.caffe_sources import make_source
from tests.oracle.datasets import write_lmdb

pytestmark = pytest.mark.caffe_parity

BATCHES = 4
NET = """
name: "sources"
layer {{ name: "frames" type: "Data" top: "data" top: "label"
  transform_param {{ crop_size: 6 mean_file: "{root}/mean.binaryproto" scale: 0.25 }}
  data_param {{ source: "{root}/db" batch_size: 2 backend: LMDB rand_skip: 1 }} }}
layer {{ name: "h5" type: "HDF5Data" top: "x" top: "y" hdf5_data_param {{ source: "{root}/list.txt" batch_size: 3 }} }}
"""
DUMP = f"""
import caffe, numpy as np
caffe.set_mode_cpu()
net = caffe.Net("net.prototxt", caffe.TEST)
out = {{}}
for i in range({BATCHES}):
    net.forward()
    for name in ("data", "label", "x", "y"):
        out[name + "_" + str(i)] = net.blobs[name].data.copy()
np.savez("caffe.npz", **out)
"""


def write_sources(folder, list_root):
    rng = np.random.default_rng(4)
    write_lmdb(folder / "db", [rng.integers(0, 256, (3, 9, 10), dtype=np.uint8) for _ in range(5)])
    io.write_mean_file(rng.uniform(0, 255, (3, 9, 10)).astype(np.float32), folder / "mean.binaryproto")
    for i, rows in enumerate((4, 3)):
        with h5py.File(folder / f"{i}.h5", "w") as handle:
            handle["x"] = rng.standard_normal((rows, 2, 3)).astype(np.float32)
            handle["y"] = rng.standard_normal((rows, 1)).astype(np.float32)
    (folder / "list.txt").write_text(f"{list_root}/0.h5\n{list_root}/1.h5\n")


def test_sources_equal_caffes_data_layers(oracle, workdir, tmp_path):
    write_sources(workdir.host, workdir.inner)
    (workdir.host / "net.prototxt").write_text(NET.format(root=workdir.inner))
    oracle.python(DUMP, workdir)
    expected = dict(np.load(workdir.host / "caffe.npz"))
    write_sources(tmp_path, str(tmp_path))
    net = text_format.Parse(NET.format(root=tmp_path), pb.NetParameter())
    sources = [make_source(layer, pb.TEST) for layer in net.layer]
    for i in range(BATCHES):
        got = {}
        for source in sources:
            got.update(source.next_batch())
        for name in ("data", "label", "x", "y"):
            np.testing.assert_allclose(got[name], expected[f"{name}_{i}"].reshape(got[name].shape), rtol=0,
                                       atol=1e-5, err_msg=f"{name}, batch {i}")
