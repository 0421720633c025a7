"""Training parity: real `caffe train` and the torch solver, from the same caffemodel and HDF5 data
(no shuffle), end 30 iterations with the same parameters; and their snapshots resume each other."""
from __future__ import annotations

import re

import numpy as np
import pytest

from dynsal.caffe import io
from dynsal.caffe.blobs import blob_to_array
from dynsal.caffe.caffemodel import attach_blobs
from dynsal.caffe.graph import build_graph
from dynsal.caffe.schema import pb
from dynsal.caffe.shapes import infer_shapes
from dynsal.cli import main
from tests.engines.parity import ReluMargin
from tests.oracle.datasets import write_tiny_training_set

pytestmark = pytest.mark.caffe_parity

torch = pytest.importorskip("torch", reason="the torch solver needs torch")

ITERATIONS = 30
SOLVERS = {
    "sgd_step_itersize_clip": ('type: "SGD" base_lr: 0.002 momentum: 0.9 weight_decay: 0.0005 lr_policy: "step" '
                               'gamma: 0.5 stepsize: 12 iter_size: 2 clip_gradients: 5'),
    "adam": 'type: "Adam" base_lr: 0.003 momentum: 0.9 momentum2: 0.999 delta: 1e-8 lr_policy: "fixed"',
    "nesterov": 'type: "Nesterov" base_lr: 0.002 momentum: 0.95 weight_decay: 0.001 lr_policy: "inv" gamma: 0.1 '
                'power: 0.75',
}


def caffemodel_params(path):
    model = io.read_net(path)
    return {layer.name: [blob_to_array(b) for b in layer.blobs] for layer in model.layer if len(layer.blobs)}


def write_case(workdir, body: str, max_iter: int = ITERATIONS, snapshot: int = 15):
    write_tiny_training_set(workdir)
    net = io.read_net(workdir.host / "tiny.prototxt")
    _, params = infer_shapes(build_graph(_host_paths(net, workdir), phase="TRAIN"))
    rng = np.random.default_rng(11)
    weights = {k: [rng.standard_normal(s).astype(np.float32) * 0.2 for s in v] for k, v in params.items() if v}
    io.write_binary(attach_blobs(net, weights), workdir.host / "init.caffemodel")
    text = (f'net: "tiny.prototxt" {body} max_iter: {max_iter} display: 1 snapshot: {snapshot} '
            'snapshot_prefix: "snap/tiny" solver_mode: CPU random_seed: 1')
    (workdir.host / "solver.prototxt").write_text(text)
    (workdir.host / "snap").mkdir(exist_ok=True)
    return weights


def _host_paths(net, workdir):
    """The tiny net with its HDF5 list file read from the host side of the work folder."""
    host = pb.NetParameter()
    host.CopyFrom(net)
    for layer in host.layer:
        if layer.type == "HDF5Data":
            listing = workdir.host / "host_h5.txt"
            listing.write_text(str(workdir.host / "train.h5") + "\n")
            layer.hdf5_data_param.source = str(listing)
    return host


def torch_solver(workdir, prefix: str):
    from dynsal.engines.torch.solver import TorchSolver

    solver = io.read_solver(workdir.host / "solver.prototxt")
    solver.net_param.CopyFrom(_host_paths(io.read_net(workdir.host / "tiny.prototxt"), workdir))
    solver.ClearField("net")
    solver.snapshot_prefix = str(workdir.host / "snap" / prefix)
    return TorchSolver(solver, workdir.host, log_path=workdir.host / f"{prefix}.jsonl")


def assert_params_match(got, expected) -> float:
    """Every layer's blobs within 1e-4·max|Caffe's| (same layers, same blob counts); returns the largest
    max|Δ| / max|Caffe's| over all blobs."""
    assert sorted(got) == sorted(expected)
    worst = 0.0
    for layer in expected:
        assert len(got[layer]) == len(expected[layer]), f"{layer}: {len(got[layer])} blobs vs Caffe's " \
                                                        f"{len(expected[layer])}"
        for a, b in zip(got[layer], expected[layer]):
            assert a.shape == b.shape, f"{layer}: shape {a.shape} vs Caffe's {b.shape}"
            scale = np.abs(b).max()
            assert np.abs(a - b).max() <= 1e-4 * scale, f"{layer}: max|Δ| {np.abs(a - b).max()} vs {scale}"
            worst = max(worst, float(np.abs(a - b).max() / scale))
    return worst


@pytest.mark.parametrize("case", sorted(SOLVERS))
def test_thirty_iterations_match_caffe(oracle, workdir, case):
    write_case(workdir, SOLVERS[case])
    oracle.run(["caffe", "train", "--solver=solver.prototxt", "--weights=init.caffemodel"], workdir)
    expected = caffemodel_params(workdir.host / "snap" / f"tiny_iter_{ITERATIONS}.caffemodel")
    solver = torch_solver(workdir, "torch")
    solver.load_weights(str(workdir.host / "init.caffemodel"))
    margin = ReluMargin(solver.train)
    solver.solve()
    got = caffemodel_params(workdir.host / "snap" / f"torch_iter_{ITERATIONS}.caffemodel")
    initial = caffemodel_params(workdir.host / "init.caffemodel")
    assert any(np.abs(got[k][0] - initial[k][0]).max() > 1e-3 for k in got), "training did not move the weights"
    drift = assert_params_match(got, expected)
    # Well conditioned on any CPU: no ReLU gate along the trajectory was within 10× the engines' drift of 0.
    assert margin.smallest > 10 * drift, (f"a ReLU pre-activation came within {margin.smallest:.2g}·max of 0, the "
                                          f"engines drift {drift:.2g}: rounding may flip it; change the seeds")


@pytest.mark.parametrize("snapshot_format", ["BINARYPROTO", "HDF5"])
def test_snapshots_resume_across_engines(oracle, workdir, snapshot_format):
    """Caffe resumes from a torch solverstate and the torch solver from a Caffe one, ending equal, in
    both snapshot formats (HDF5: `.caffemodel.h5` + `.solverstate.h5`)."""
    write_case(workdir, SOLVERS["sgd_step_itersize_clip"] + f" snapshot_format: {snapshot_format}")
    h5 = ".h5" if snapshot_format == "HDF5" else ""
    oracle.run(["caffe", "train", "--solver=solver.prototxt", "--weights=init.caffemodel"], workdir)
    caffe_final = caffemodel_params(workdir.host / "snap" / f"tiny_iter_{ITERATIONS}.caffemodel{h5}")
    # torch runs the first half and snapshots; Caffe finishes from that solverstate
    first = torch_solver(workdir, "half")
    first.load_weights(str(workdir.host / "init.caffemodel"))
    first.solver.max_iter = 15
    first.solve()
    state_path = workdir.host / "snap" / f"half_iter_15.solverstate{h5}"
    state = io.read_solverstate(state_path)
    assert state.learned_net == str(workdir.host / "snap" / f"half_iter_15.caffemodel{h5}")
    state.learned_net = f"snap/half_iter_15.caffemodel{h5}"  # the path as Caffe sees it inside the chroot
    io.write_solverstate(state, state_path)
    oracle.run(["caffe", "train", "--solver=solver.prototxt", f"--snapshot=snap/half_iter_15.solverstate{h5}"],
               workdir)
    assert_params_match(caffemodel_params(workdir.host / "snap" / f"tiny_iter_{ITERATIONS}.caffemodel{h5}"),
                        caffe_final)
    # and the torch solver finishes from Caffe's own iteration-15 solverstate
    resumed = torch_solver(workdir, "resumed")
    resumed.solve(resume=str(workdir.host / "snap" / f"tiny_iter_15.solverstate{h5}"))
    assert resumed.iter == ITERATIONS
    assert_params_match(caffemodel_params(workdir.host / "snap" / f"resumed_iter_{ITERATIONS}.caffemodel{h5}"),
                        caffe_final)


def test_torch_solverstate_is_caffes_format(oracle, workdir):
    write_case(workdir, SOLVERS["adam"], max_iter=4, snapshot=4)
    solver = torch_solver(workdir, "adam")
    solver.solve()
    state = io.read_solverstate(workdir.host / "snap" / "adam_iter_4.solverstate")
    assert state.iter == 4 and len(state.history) == 2 * 4  # Adam: m for 4 blobs, then v for 4 blobs
    code = ("from caffe.proto import caffe_pb2\ns = caffe_pb2.SolverState()\n"
            "s.ParseFromString(open('snap/adam_iter_4.solverstate', 'rb').read())\nprint(s.iter, len(s.history))")
    assert oracle.python(code, workdir).stdout.split() == ["4", "8"]


STAGED_NET = """
name: "staged"
layer { name: "data" type: "HDF5Data" top: "data1" top: "label"
        hdf5_data_param { source: "train_h5.txt" batch_size: 2 } }
layer { name: "conv1" type: "Convolution" bottom: "data1" top: "conv1"
        convolution_param { num_output: 4 kernel_size: 3 pad: 1 } }
layer { name: "wide" type: "Convolution" bottom: "conv1" top: "conv2" include { stage: "wide" }
        convolution_param { num_output: 1 kernel_size: 5 pad: 2 } }
layer { name: "narrow" type: "Convolution" bottom: "conv1" top: "conv2" include { not_stage: "wide" }
        convolution_param { num_output: 1 kernel_size: 1 } }
layer { name: "boost" type: "Power" bottom: "conv2" top: "out" power_param { scale: 3 } include { min_level: 2 } }
layer { name: "keep" type: "Power" bottom: "conv2" top: "out" include { max_level: 1 } }
layer { name: "loss" type: "EuclideanLoss" bottom: "out" bottom: "label" top: "loss" }
"""


def test_train_state_stages_and_level_choose_layers_like_caffe(oracle, workdir, monkeypatch):
    """The NetState of the train net (solver train_state; `caffe train`'s --level replaces its level and
    --stage adds stages) selects the same layers, which then train to the same weights."""
    write_case(workdir, SOLVERS["adam"] + ' train_state { stage: "wide" level: 1 }', max_iter=10, snapshot=10)
    net = io.read_net(_write_text(workdir.host / "tiny.prototxt", STAGED_NET))
    rng = np.random.default_rng(5)
    weights = {}
    for stages in ((), ("wide",)):
        _, params = infer_shapes(build_graph(_host_paths(net, workdir), phase="TRAIN", stages=stages))
        weights.update({k: [rng.standard_normal(s).astype(np.float32) * 0.2 for s in v]
                        for k, v in params.items() if v})
    io.write_binary(attach_blobs(net, weights), workdir.host / "init.caffemodel")
    log = oracle.run(["caffe", "train", "--solver=solver.prototxt", "--weights=init.caffemodel", "--level=2"],
                     workdir, env={"GLOG_minloglevel": "0"}).stderr
    assert "Ignoring source layer narrow" in log and "Ignoring source layer keep" in log  # wide and boost ran
    expected = caffemodel_params(workdir.host / "snap" / "tiny_iter_10.caffemodel")
    assert sorted(expected) == ["conv1", "wide"]
    monkeypatch.chdir(workdir.host)
    solver_file = workdir.host / "host_solver.prototxt"
    solver = io.read_solver(workdir.host / "solver.prototxt")
    solver.ClearField("net")
    solver.net_param.CopyFrom(_host_paths(net, workdir))
    solver.snapshot_prefix = "snap/torch"
    io.write_text(solver, solver_file)
    assert main(["train", str(solver_file), "--engine", "torch", "--weights", "init.caffemodel", "--level", "2",
                 "--no-progress"]) == 0
    assert_params_match(caffemodel_params(workdir.host / "snap" / "torch_iter_10.caffemodel"), expected)
    resolved = io.read_solver(workdir.host / "snap" / "torch_solver.resolved.prototxt")
    assert resolved.train_state.level == 2 and list(resolved.train_state.stage) == ["wide", ""]


def _write_text(path, text: str):
    path.write_text(text)
    return path


def _console(lines, prefix: str):
    """Caffe's solver lines from `Solving` on, as (file:line, message with numbers masked, numbers); glog's
    prefix has the year (I20261128) from glog 0.6 on (the trixie build), not before (bullseye's)."""
    glog = re.compile(r"I(?:\d{4})?\d{4} \d\d:\d\d:\d\d\.\d{6} +\d+ ((?:sgd_)?solver\.cpp:\d+)\] (.*)")
    number = re.compile(r"-?\d+(?:\.\d+)?(?:e[+-]\d+)?|-?nan|-?inf")
    out = []
    for line in lines:
        match = glog.match(line.replace(prefix, "snap/tiny"))
        if match and (out or match.group(2).startswith("Solving")):
            message = match.group(2)
            out.append((match.group(1), number.sub("#", message), [float(n) for n in number.findall(message)]))
    return out


def test_train_console_is_caffe_train_log(oracle, workdir, monkeypatch, capsys):
    """dynsal train's console has exactly the solver lines of real `caffe train` (same file:line, words and
    order), with the same losses, rates and test outputs from the same weights and data."""
    write_case(workdir, 'type: "SGD" base_lr: 0.002 momentum: 0.9 lr_policy: "step" gamma: 0.5 stepsize: 3 '
               "test_iter: 2 test_interval: 3 average_loss: 2", max_iter=6, snapshot=4)
    solver_text = (workdir.host / "solver.prototxt").read_text().replace("display: 1", "display: 2")
    (workdir.host / "solver.prototxt").write_text(solver_text)
    caffe_log = oracle.run(["caffe", "train", "--solver=solver.prototxt", "--weights=init.caffemodel"], workdir,
                           env={"GLOG_minloglevel": "0", "GLOG_logtostderr": "1"}).stderr.splitlines()
    monkeypatch.chdir(workdir.host)
    solver = io.read_solver(workdir.host / "solver.prototxt")
    solver.ClearField("net")
    solver.net_param.CopyFrom(_host_paths(io.read_net(workdir.host / "tiny.prototxt"), workdir))
    solver.snapshot_prefix = "snap/torch"
    io.write_text(solver, workdir.host / "host_solver.prototxt")
    assert main(["train", "host_solver.prototxt", "--engine", "torch", "--weights", "init.caffemodel"]) == 0
    ours, theirs = _console(capsys.readouterr().err.splitlines(), "snap/torch"), _console(caffe_log, "snap/tiny")
    assert [line[:2] for line in ours] == [line[:2] for line in theirs]
    for (source, template, got), (_, _, expected) in zip(ours, theirs):
        if "iter/s" in template:  # timings differ; the display interval and the smoothed loss do not
            got, expected = [got[0]] + got[3:], [expected[0]] + expected[3:]
        assert got == pytest.approx(expected, rel=1e-4, abs=1e-6), f"{source}] {template}"
