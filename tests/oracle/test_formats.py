"""Caffe's file formats and net construction, checked against real BVLC Caffe (the oracle)."""
from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest

from dynsal import zoo
from dynsal.caffe import hdf5, io
from dynsal.caffe.blobs import array_to_blob, blob_to_array
from dynsal.caffe.caffemodel import attach_blobs
from dynsal.caffe.graph import build_graph
from dynsal.caffe.schema import pb
from dynsal.caffe.shapes import infer_shapes
from tests.oracle.datasets import write_tiny_training_set, write_zoo_hdf5, write_zoo_lmdbs

ODD_DEPLOY_SHAPE = (1, 3, 97, 131)
DATA_HW = (48, 72)  # multiples of 4: deconv1 then matches the label size (EuclideanLoss needs it)


@pytest.mark.caffe_parity
def test_schema_is_wire_compatible_with_caffe_proto(oracle, workdir):
    """Every field dynsal declares has Caffe's number, label, type and default; no field is missing."""
    code = """
import sys
from caffe.proto import caffe_pb2
from google.protobuf import descriptor_pb2
from dynsal.caffe.schema import FILE_DESCRIPTOR as ours
theirs = descriptor_pb2.FileDescriptorProto()
caffe_pb2.DESCRIPTOR.CopyToProto(theirs)
def norm(f):
    d = f.default_value
    try: d = float(d)
    except ValueError: pass
    return (f.number, f.label, f.type, f.type_name, d, f.options.packed)
def table(fdp):
    out = {}
    for m in fdp.message_type:
        for f in m.field: out[(m.name, f.name)] = norm(f)
        for e in m.enum_type: out[(m.name, e.name)] = sorted((v.name, v.number) for v in e.value)
    for e in fdp.enum_type: out[("", e.name)] = sorted((v.name, v.number) for v in e.value)
    return out
a, b = table(ours), table(theirs)
diffs = [k for k in set(a) | set(b) if a.get(k) != b.get(k)]
print(len(a), sorted(diffs))
"""
    count, diffs = oracle.python(code, workdir).stdout.strip().split(" ", 1)
    assert int(count) > 400
    assert diffs == "[]"


def _zoo_cases():
    for name in zoo.NETS:
        yield name, "deploy", "TEST"
        yield name, "deploy_odd", "TEST"
        for backend in ("lmdb", "hdf5"):
            for phase in ("TRAIN", "TEST"):
                yield name, f"train_val_{backend}", phase


def _zoo_net(name: str, variant: str, data_root: str):
    if variant == "deploy":
        return zoo.deploy(name)
    if variant == "deploy_odd":
        return zoo.deploy(name, ODD_DEPLOY_SHAPE)
    return zoo.train_val(name, variant.rsplit("_", 1)[1], data_root=data_root)


@pytest.fixture(scope="module")
def caffe_zoo_shapes(oracle, module_workdir, tmp_path_factory):
    """Blob and param shapes of every zoo net, variant and phase as real Caffe constructs them."""
    wd = module_workdir
    data = wd.host / "data"
    data.mkdir()
    write_zoo_lmdbs(data, *DATA_HW)
    write_zoo_hdf5(data, wd.inside("data"), *DATA_HW)
    jobs = []
    for name, variant, phase in _zoo_cases():
        file_name = f"{name}_{variant}.prototxt"
        io.write_text(_zoo_net(name, variant, wd.inside("data")), wd.host / file_name)
        jobs.append((f"{name}/{variant}/{phase}", wd.inside(file_name), phase))
    code = f"""
import json, caffe
caffe.set_mode_cpu()
out = {{}}
for key, path, phase in {jobs!r}:
    net = caffe.Net(path, getattr(caffe, phase))
    out[key] = {{"blobs": {{k: list(v.data.shape) for k, v in net.blobs.items()}},
                "params": {{k: [list(p.data.shape) for p in v] for k, v in net.params.items()}}}}
json.dump(out, open("shapes.json", "w"))
"""
    oracle.python(code, wd)
    result = json.loads((wd.host / "shapes.json").read_text())
    host_data = tmp_path_factory.mktemp("zoo_data")
    write_zoo_lmdbs(host_data, *DATA_HW)
    write_zoo_hdf5(host_data, str(host_data), *DATA_HW)
    return result, host_data


@pytest.mark.parametrize("name,variant,phase", list(_zoo_cases()))
@pytest.mark.caffe_parity
def test_zoo_shapes_match_caffe(caffe_zoo_shapes, name, variant, phase):
    """Real Caffe loads every generated prototxt and reports the blob/param shapes dynsal computes."""
    result, host_data = caffe_zoo_shapes
    expected = result[f"{name}/{variant}/{phase}"]
    graph = build_graph(_zoo_net(name, variant, str(host_data)), phase=phase)
    blobs, params = infer_shapes(graph)
    assert {k: list(v) for k, v in blobs.items()} == expected["blobs"]
    assert {k: [list(s) for s in v] for k, v in params.items() if v} == expected["params"]


def _random_weights(net_param, seed: int):
    rng = np.random.default_rng(seed)
    _, params = infer_shapes(build_graph(net_param))
    return {layer: [rng.standard_normal(s).astype(np.float32) for s in shapes]
            for layer, shapes in params.items() if shapes}


DUMP_PARAMS = """
import caffe, numpy as np, sys
caffe.set_mode_cpu()
net = caffe.Net(sys.argv[1], caffe.TEST, weights=sys.argv[2])
np.savez("params.npz", **{f"{k}/{i}": p.data for k, v in net.params.items() for i, p in enumerate(v)})
"""


def _caffe_params(oracle, workdir, prototxt: str, caffemodel: str):
    (workdir.host / "dump.py").write_text(DUMP_PARAMS)
    oracle.run(["python3", "dump.py", prototxt, caffemodel], workdir)
    with np.load(workdir.host / "params.npz") as npz:
        return {k: npz[k] for k in npz.files}


@pytest.mark.caffe_parity
def test_dynsal_caffemodel_loads_in_caffe(oracle, workdir):
    """A caffemodel written by dynsal (SSNet, random weights) loads in Caffe with identical values."""
    deploy = zoo.deploy("ssnet")
    weights = _random_weights(deploy, seed=1)
    io.write_text(deploy, workdir.host / "net.prototxt")
    io.write_binary(attach_blobs(deploy, weights), workdir.host / "net.caffemodel")
    loaded = _caffe_params(oracle, workdir, "net.prototxt", "net.caffemodel")
    assert sorted(loaded) == sorted(f"{k}/{i}" for k, v in weights.items() for i in range(len(v)))
    for layer, arrays in weights.items():
        for i, array in enumerate(arrays):
            np.testing.assert_array_equal(loaded[f"{layer}/{i}"], array)


SPLIT_NET = """
name: "split_net"
layer { name: "input" type: "Input" top: "x" input_param { shape { dim: 1 dim: 3 dim: 6 dim: 7 } } }
layer { name: "a" type: "Convolution" bottom: "x" top: "a" convolution_param { num_output: 4 kernel_size: 3 pad: 1 } }
layer { name: "b" type: "Convolution" bottom: "a" top: "b" convolution_param { num_output: 2 kernel_size: 1 } }
layer { name: "c" type: "Convolution" bottom: "a" top: "c"
        convolution_param { num_output: 2 kernel_size: 1 bias_term: false } }
layer { name: "sum" type: "Eltwise" bottom: "b" bottom: "c" top: "y" }
"""

HDF5_STRUCTURE = """
import caffe, h5py, sys
caffe.set_mode_cpu()
net = caffe.Net("net.prototxt", caffe.TEST, weights="ours.caffemodel.h5")
net.save_hdf5("caffe.caffemodel.h5")
def walk(group, out):
    for name, item in group.items():
        out.append([item.name, list(item.shape), str(item.dtype)] if isinstance(item, h5py.Dataset) else [item.name])
        if isinstance(item, h5py.Group):
            walk(item, out)
    return out
import json
print(json.dumps([walk(h5py.File(f, "r"), []) for f in ("ours.caffemodel.h5", "caffe.caffemodel.h5")]))
"""


@pytest.mark.caffe_parity
def test_hdf5_caffemodels_are_caffes(oracle, workdir):
    """A `.caffemodel.h5` written by dynsal (a net with an implicit Split) loads in Caffe with identical values
    and has the structure of the file Caffe's Net::ToHDF5 writes; dynsal reads Caffe's file back exactly."""
    net = io.read_net(_write(workdir.host / "net.prototxt", SPLIT_NET))
    weights = _random_weights(net, seed=4)
    hdf5.write_weights(workdir.host / "ours.caffemodel.h5", [layer.name for layer in build_graph(net).layers],
                       weights)
    loaded = _caffe_params(oracle, workdir, "net.prototxt", "ours.caffemodel.h5")
    assert sorted(loaded) == sorted(f"{k}/{i}" for k, v in weights.items() for i in range(len(v)))
    for layer, arrays in weights.items():
        for i, array in enumerate(arrays):
            np.testing.assert_array_equal(loaded[f"{layer}/{i}"], array)
    ours, theirs = json.loads(oracle.python(HDF5_STRUCTURE, workdir).stdout.strip().splitlines()[-1])
    assert ["/data/a_a_0_split"] in theirs  # the implicit Split has its (empty) group
    assert ours == theirs
    back = {layer.name: [blob_to_array(b) for b in layer.blobs]
            for layer in io.read_net(workdir.host / "caffe.caffemodel.h5").layer if len(layer.blobs)}
    assert sorted(back) == sorted(weights)
    assert {k: len(v) for k, v in back.items()} == {k: len(v) for k, v in weights.items()}
    assert all(np.array_equal(a, b) for k in weights for a, b in zip(back[k], weights[k]))


def _write(path, text: str):
    path.write_text(text)
    return path


LEGACY_NET = """
name: "legacy_blobs"
layer { name: "input" type: "Input" top: "x" input_param { shape { dim: 2 dim: 3 dim: 5 dim: 5 } } }
layer { name: "conv" type: "Convolution" bottom: "x" top: "c"
        convolution_param { num_output: 4 kernel_size: 3 } }
layer { name: "fc" type: "InnerProduct" bottom: "c" top: "y" inner_product_param { num_output: 6 } }
"""


@pytest.mark.caffe_parity
def test_legacy_and_double_blobs_load_in_caffe(oracle, workdir):
    """Legacy 4-D blob shapes (1×1×N×K InnerProduct weights) and double_data load like Caffe loads them."""
    (workdir.host / "net.prototxt").write_text(LEGACY_NET)
    net = io.read_net(workdir.host / "net.prototxt")
    rng = np.random.default_rng(2)
    conv_w, conv_b = rng.standard_normal((4, 3, 3, 3)), rng.standard_normal(4)
    fc_w, fc_b = rng.standard_normal((6, 36)), rng.standard_normal(6)
    model = attach_blobs(net, {"conv": [conv_w.astype(np.float32), conv_b.astype(np.float32)]})
    fc = next(layer for layer in model.layer if layer.name == "fc")
    array_to_blob(fc_w.astype(np.float32)[None, None], fc.blobs.add(), legacy=True)
    array_to_blob(fc_b, fc.blobs.add(), double=True)
    io.write_binary(model, workdir.host / "net.caffemodel")
    loaded = _caffe_params(oracle, workdir, "net.prototxt", "net.caffemodel")
    np.testing.assert_array_equal(loaded["conv/0"], conv_w.astype(np.float32))
    np.testing.assert_array_equal(loaded["fc/0"], fc_w.astype(np.float32))
    np.testing.assert_array_equal(loaded["fc/1"], fc_b.astype(np.float32))


TINY_SOLVER = """
net: "tiny.prototxt"
base_lr: 0.01
momentum: 0.9
weight_decay: 0.0005
lr_policy: "step"
gamma: 0.5
stepsize: 2
max_iter: 3
display: 1
snapshot: 3
snapshot_prefix: "snap/tiny"
solver_mode: CPU
random_seed: 7
"""


@pytest.mark.caffe_parity
def test_caffe_trained_files_read_by_dynsal(oracle, workdir):
    """A caffemodel and a solverstate written by `caffe train` are read by dynsal with identical values."""
    write_tiny_training_set(workdir)
    (workdir.host / "solver.prototxt").write_text(TINY_SOLVER)
    (workdir.host / "snap").mkdir()
    oracle.run(["caffe", "train", "--solver=solver.prototxt"], workdir)
    dump = """
import caffe, numpy as np
from caffe.proto import caffe_pb2
caffe.set_mode_cpu()
net = caffe.Net("tiny.prototxt", caffe.TEST, weights="snap/tiny_iter_3.caffemodel")
state = caffe_pb2.SolverState()
state.ParseFromString(open("snap/tiny_iter_3.solverstate", "rb").read())
arrays = {f"{k}/{i}": p.data for k, v in net.params.items() for i, p in enumerate(v)}
arrays.update({f"history/{i}": np.array(h.data, np.float32).reshape(h.shape.dim) for i, h in enumerate(state.history)})
np.savez("dump.npz", iter=state.iter, current_step=state.current_step, **arrays)
open("learned_net.txt", "w").write(state.learned_net)
"""
    oracle.python(dump, workdir)
    expected = dict(np.load(workdir.host / "dump.npz"))
    model = io.read_net(workdir.host / "snap" / "tiny_iter_3.caffemodel")
    got = {f"{layer.name}/{i}": blob_to_array(b) for layer in model.layer for i, b in enumerate(layer.blobs)}
    assert sorted(got) == ["conv1/0", "conv1/1", "conv2/0", "conv2/1"]
    for key, value in got.items():
        np.testing.assert_array_equal(value, expected[key])
    state = io.read_solverstate(workdir.host / "snap" / "tiny_iter_3.solverstate")
    assert state.iter == int(expected["iter"]) == 3
    assert state.current_step == int(expected["current_step"]) == 1
    assert state.learned_net == (workdir.host / "learned_net.txt").read_text()
    assert len(state.history) == 4
    for i, blob in enumerate(state.history):
        np.testing.assert_array_equal(blob_to_array(blob), expected[f"history/{i}"])


LEGACY_INPUT_DIM = """
name: "legacy_inputs"
input: "data1"
input_dim: 1 input_dim: 3 input_dim: 24 input_dim: 32
input: "data1_b"
input_dim: 1 input_dim: 3 input_dim: 24 input_dim: 32
layer { name: "fuse" type: "Eltwise" bottom: "data1" bottom: "data1_b" top: "fuse" eltwise_param { operation: MAX } }
"""
LEGACY_INPUT_SHAPE = """
name: "legacy_input_shape"
input: "data"
input_shape { dim: 2 dim: 3 dim: 8 dim: 8 }
layer { name: "relu" type: "ReLU" bottom: "data" top: "data" }
"""
V1_NET = """
name: "v1net"
layers { name: "data" type: DATA top: "data" top: "label"
         data_param { source: "train_lmdb" backend: LMDB batch_size: 4 scale: 0.00390625 mirror: true crop_size: 20 }
         include { phase: TRAIN } }
layers { name: "conv1" type: CONVOLUTION bottom: "data" top: "conv1" blobs_lr: 1 blobs_lr: 2
         weight_decay: 1 weight_decay: 0 param: "shared_w"
         convolution_param { num_output: 8 kernel_size: 5 stride: 1 weight_filler { type: "xavier" } } }
layers { name: "relu1" type: RELU bottom: "conv1" top: "conv1" }
layers { name: "pool1" type: POOLING bottom: "conv1" top: "pool1" pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
layers { name: "ip1" type: INNER_PRODUCT bottom: "pool1" top: "ip1" inner_product_param { num_output: 10 } }
layers { name: "drop" type: DROPOUT bottom: "ip1" top: "ip1" dropout_param { dropout_ratio: 0.3 } }
layers { name: "loss" type: SOFTMAX_LOSS bottom: "ip1" bottom: "label" top: "loss" loss_weight: 1 }
"""


@pytest.mark.parametrize("text", [LEGACY_INPUT_DIM, LEGACY_INPUT_SHAPE, V1_NET],
                         ids=["input_dim", "input_shape", "v1_layers"])
@pytest.mark.caffe_parity
def test_upgrades_match_upgrade_net_proto_text(oracle, workdir, text):
    """dynsal's upgrade on load equals what Caffe's own upgrade_net_proto_text writes (as messages)."""
    (workdir.host / "old.prototxt").write_text(text)
    oracle.run(["upgrade_net_proto_text", "old.prototxt", "new.prototxt"], workdir)
    caffe_upgraded = io.read_text(workdir.host / "new.prototxt", pb.NetParameter)
    ours = io.read_net(workdir.host / "old.prototxt")
    assert ours == caffe_upgraded, f"dynsal:\n{ours}\ncaffe:\n{caffe_upgraded}"


@pytest.mark.caffe_parity
def test_solver_type_upgrade_matches_upgrade_solver_proto_text(oracle, workdir):
    (workdir.host / "old.prototxt").write_text('net: "n.prototxt"\nbase_lr: 0.1\nlr_policy: "fixed"\n'
                                               'solver_type: NESTEROV\nsnapshot_prefix: "snap/x"\n')
    oracle.run(["upgrade_solver_proto_text", "old.prototxt", "new.prototxt"], workdir)
    caffe_upgraded = io.read_text(workdir.host / "new.prototxt", pb.SolverParameter)
    assert io.read_solver(workdir.host / "old.prototxt") == caffe_upgraded
    assert caffe_upgraded.type == "Nesterov"


def test_dynsal_runs_in_bullseye_without_torch(bullseye_oracle, bullseye_workdir):
    """`import dynsal` and dynsal.caffe work on Python 3.9 / protobuf 3.12 / numpy 1.19 without torch."""
    code = """
import sys, google.protobuf, numpy
import dynsal, dynsal.caffe.io, dynsal.caffe.shapes, dynsal.caffe.graph, dynsal.zoo
assert "torch" not in sys.modules
print(sys.version_info[:2], google.protobuf.__version__, numpy.__version__)
"""
    out = bullseye_oracle.python(code, bullseye_workdir).stdout
    assert "(3, 9) 3.12" in out
    io.write_text(zoo.deploy("stsconv"), bullseye_workdir.host / "stsconv.prototxt")
    info = bullseye_oracle.run(["python3", "-m", "dynsal", "info", "stsconv.prototxt"], bullseye_workdir).stdout
    assert "deconv1 (1, 1, 240, 320)" in info and "learnable values: 41,248,257" in info


def test_large_caffemodel_reads_on_bullseye_protobuf(oracle, workdir):
    """A caffemodel over protobuf's old 64 MB default limit reads on protobuf 3.12 (C++ runtime)."""
    net = pb.NetParameter(name="big")
    layer = net.layer.add(name="fc", type="InnerProduct")
    values = np.arange(20_000_000, dtype=np.float32) % 1000
    array_to_blob(values.reshape(5000, 4000), layer.blobs.add())
    io.write_binary(net, workdir.host / "big.caffemodel")
    assert (workdir.host / "big.caffemodel").stat().st_size > 64 << 20
    code = """
from dynsal.caffe.io import read_net
from dynsal.caffe.blobs import blob_to_array
from google.protobuf.internal import api_implementation
a = blob_to_array(read_net("big.caffemodel").layer[0].blobs[0])
print(api_implementation.Type(), a.shape, float(a.astype("float64").sum()))
"""
    out = oracle.python(code, workdir).stdout.split()
    assert out[0] == "cpp"
    assert float(out[-1]) == float(values.astype(np.float64).sum())


def test_oracle_reports_caffe_failures(oracle, workdir):
    with pytest.raises(subprocess.CalledProcessError):
        oracle.python("import sys; sys.exit(3)", workdir)
