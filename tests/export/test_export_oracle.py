"""Exports against real BVLC Caffe (the oracle): every blob of the exported nets, run by onnxruntime, as
TorchScript and by OpenCV DNN, within 1e-4·max|Caffe's value|.

- every zoo deploy net (random weights): the fixed-shape export at 48×64 (onnxruntime, OpenCV), and the
  dynamic export run at 48×64, 37×53 and 50×67 and at batch 2 (onnxruntime, TorchScript, OpenCV);
- the every-layer net (fixed shapes) and the dynamic-shape net at four sizes it was not exported at;
- pooling windows wholly outside the input (pad 0, kernel < stride), where Caffe's MAX gives the lowest
  float and AVE 0/0 = NaN.
OpenCV 5 does not produce 0-d tensors, so the loss tops are compared in onnxruntime and TorchScript
only. All Caffe work runs in one chroot call.
"""
from __future__ import annotations

import shutil

import numpy as np
import pytest
from google.protobuf import text_format

from dynsal import zoo
from dynsal.caffe import io
from dynsal.caffe.schema import pb
from dynsal.export import onnx_export
from dynsal.export.torchscript import to_torchscript
from tests.engines.nets import every_layer_inputs, every_layer_net
from tests.engines.parity import CaffeCase, load_caffe, random_weights, run_caffe, write_net
from tests.export.helpers import deviations, every_blob, run_onnxruntime, run_opencv, run_torchscript, saved_and_loaded
from tests.export.nets import SIZES, dynamic_layers_inputs, dynamic_layers_net

pytest.importorskip("torch", reason="TorchScript needs torch (pip install dynsal[torch])")

ZOO_SIZES = ((48, 64), (37, 53), (50, 67))  # the prototxt's size first
ZOO_RUNS = [(1, hw) for hw in ZOO_SIZES] + [(2, ZOO_SIZES[1])]
DYNAMIC_RUNS = [(2, SIZES[0]), (1, SIZES[1]), (3, SIZES[2]), (2, SIZES[3])]
EMPTY_WINDOWS = """
name: "empty_windows"
layer { name: "in" type: "Input" top: "x" input_param { shape { dim: 1 dim: 2 dim: 6 dim: 9 } } }
layer { name: "max" type: "Pooling" bottom: "x" top: "max" pooling_param { pool: MAX kernel_size: 2 stride: 3 } }
layer { name: "ave" type: "Pooling" bottom: "x" top: "ave" pooling_param { pool: AVE kernel_size: 2 stride: 3 } }
"""


def _zoo_feed(name: str, batch: int, hw, seed: int):
    rng = np.random.default_rng(seed)
    return {blob: rng.standard_normal((batch, 3) + hw).astype(np.float32)
            for blob in zoo.input_names(zoo.get(name))}


def _key(name: str, batch: int, hw) -> str:
    return f"{name}_{batch}x{hw[0]}x{hw[1]}"


def _write_cases(folder):
    """The module's Caffe work in `folder`: ([CaffeCase], {run key: output path}, {run key: inputs})."""
    cases, outputs, feeds = [], {}, {}

    def add(case, key, feed):
        feeds[key] = feed
        outputs[key] = case.add_run(key, feed, params=False)

    for index, name in enumerate(zoo.NETS):
        deploy = zoo.deploy(name, (1, 3) + ZOO_SIZES[0])
        case = CaffeCase(name, *write_net(folder, name, deploy, random_weights(deploy, seed=index)))
        for batch, hw in ZOO_RUNS:
            add(case, _key(name, batch, hw), _zoo_feed(name, batch, hw, 10 * index + batch))
        cases.append(case)
    every = every_layer_net()
    case = CaffeCase("every_layer", *write_net(folder, "every_layer", every, random_weights(every, seed=7)))
    add(case, "every_layer", {k: v.astype(np.float32) for k, v in every_layer_inputs(3).items()})
    cases.append(case)
    dynamic = dynamic_layers_net()
    case = CaffeCase("dynamic_layers", *write_net(folder, "dynamic_layers", dynamic, random_weights(dynamic, seed=3)))
    for batch, hw in DYNAMIC_RUNS:
        add(case, _key("dynamic_layers", batch, hw), dynamic_layers_inputs(5, batch, hw))
    cases.append(case)
    empty = text_format.Parse(EMPTY_WINDOWS, pb.NetParameter())
    case = CaffeCase("empty_windows", *write_net(folder, "empty_windows", empty, {}))
    add(case, "empty_windows", {"x": np.random.default_rng(2).standard_normal((1, 2, 6, 9)).astype(np.float32)})
    cases.append(case)
    return cases, outputs, feeds


@pytest.fixture(scope="module")
def caffe_runs(oracle):
    """Run every net of the module in Caffe once; returns (folder, {run key: (feed, Caffe's blobs)})."""
    wd = oracle.workdir()
    try:
        cases, outputs, feeds = _write_cases(wd.host)
        run_caffe(oracle, wd, cases)
        runs = {}
        for key, path in outputs.items():
            blobs = load_caffe(path)
            runs[key] = (feeds[key], {k[len("data/"):]: v for k, v in blobs.items() if k.startswith("data/")})
        yield wd.host, runs
    finally:
        shutil.rmtree(wd.host, ignore_errors=True)


def _check(label: str, got, caffe) -> list:
    return [f"{label}: {line}" for line in deviations(got, caffe)]


def _non_scalar(blobs: dict) -> list:
    return [blob for blob, value in blobs.items() if np.ndim(value)]


@pytest.mark.parametrize("name", list(zoo.NETS))
def test_zoo_net_exports_match_caffe(oracle, caffe_runs, name):
    """Fixed-shape export at the prototxt's size; dynamic export at three sizes and batch 2: every blob,
    in onnxruntime, TorchScript and OpenCV DNN, equals Caffe's."""
    folder, runs = caffe_runs
    prototxt, caffemodel = folder / f"{name}.prototxt", folder / f"{name}.caffemodel"
    net = io.read_net(prototxt)
    problems = []
    feed, caffe = runs[_key(name, 1, ZOO_SIZES[0])]
    fixed = onnx_export(prototxt, caffemodel, outputs=every_blob(net))
    problems += _check("fixed onnxruntime", run_onnxruntime(fixed, feed), caffe)
    problems += _check("fixed OpenCV", run_opencv(fixed, feed), caffe)
    dynamic = onnx_export(prototxt, caffemodel, dynamic=True, outputs=every_blob(net))
    module = to_torchscript(dynamic.model)
    for batch, hw in ZOO_RUNS:
        feed, caffe = runs[_key(name, batch, hw)]
        problems += _check(f"dynamic {batch}x{hw} onnxruntime", run_onnxruntime(dynamic, feed), caffe)
        problems += _check(f"dynamic {batch}x{hw} TorchScript", run_torchscript(module, dynamic, feed), caffe)
        problems += _check(f"dynamic {batch}x{hw} OpenCV", run_opencv(dynamic, feed), caffe)
    assert problems == [], "\n".join(problems)


def test_every_layer_net_exports_match_caffe(oracle, caffe_runs):
    folder, runs = caffe_runs
    feed, caffe = runs["every_layer"]
    net = every_layer_net()
    exported = onnx_export(net, folder / "every_layer.caffemodel", outputs=every_blob(net))
    problems = _check("onnxruntime", run_onnxruntime(exported, feed), caffe)
    problems += _check("TorchScript", run_torchscript(saved_and_loaded(to_torchscript(exported.model)), exported,
                                                      feed), caffe)
    without_losses = onnx_export(net, folder / "every_layer.caffemodel", outputs=_non_scalar(caffe))
    problems += _check("OpenCV", run_opencv(without_losses, feed), caffe)
    assert problems == [], "\n".join(problems)


def test_dynamic_export_matches_caffe_at_sizes_it_was_not_exported_at(oracle, caffe_runs):
    """One dynamic export (declared 2×·×23×29) run at batch 1–3 and 9×10, 16×19, 31×24 as well."""
    folder, runs = caffe_runs
    net = dynamic_layers_net()
    exported = onnx_export(net, folder / "dynamic_layers.caffemodel", dynamic=True, outputs=every_blob(net))
    module = to_torchscript(exported.model)
    without_losses = onnx_export(net, folder / "dynamic_layers.caffemodel", dynamic=True,
                                 outputs=_non_scalar(runs[_key("dynamic_layers", *DYNAMIC_RUNS[0])][1]))
    problems = []
    for batch, hw in DYNAMIC_RUNS:
        feed, caffe = runs[_key("dynamic_layers", batch, hw)]
        problems += _check(f"{batch}x{hw} onnxruntime", run_onnxruntime(exported, feed), caffe)
        problems += _check(f"{batch}x{hw} TorchScript", run_torchscript(module, exported, feed), caffe)
        problems += _check(f"{batch}x{hw} OpenCV", run_opencv(without_losses, feed), caffe)
    assert problems == [], "\n".join(problems)


def test_windows_outside_the_input_give_caffes_values(oracle, caffe_runs):
    """pad 0 and kernel < stride: the last window lies beyond the input; Caffe's MAX is −FLT_MAX there and
    its AVE 0/0 = NaN, in both the fixed and the dynamic export."""
    _, runs = caffe_runs
    feed, caffe = runs["empty_windows"]
    assert caffe["max"][..., -1].min() == -np.finfo(np.float32).max and np.isnan(caffe["ave"][..., -1]).all()
    net = text_format.Parse(EMPTY_WINDOWS, pb.NetParameter())
    for dynamic in (False, True):
        got = run_onnxruntime(onnx_export(net, None, dynamic=dynamic), feed)
        for blob in ("max", "ave"):
            np.testing.assert_allclose(got[blob], caffe[blob], rtol=1e-6, equal_nan=True)
