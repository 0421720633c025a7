"""dynsal's ONNX export vs the Caffe→ONNX converters on PyPI, on the same nets, against real Caffe; JSON out.

For every zoo deploy net (random He-scaled weights) at each `--sizes` H×W, a small net per Caffe feature
(FEATURES: pooling whose last window Caffe clips, AVE windows Caffe divides by their clipped size, LRN
both regions, grouped Deconvolution, Eltwise coefficients, Crop, Slice, BatchNorm + Scale, two Input
layers, in-place and split wiring), and the every-layer test net (tests/engines/nets.py, fixed
shapes), each tool converts the prototxt + caffemodel; the ONNX model is run by onnxruntime on the
inputs Caffe runs on (the oracle, BVLC Caffe 1.0), and each net output is compared with Caffe's:
converted or not (with the tool's last error line), ran or not, output shapes, max|Δ| / max|Caffe| and
whether it is within dynsal's parity bound 1e-4. The third-party converters run in their own virtual environments (they
pin old onnx/protobuf versions; they are not dynsal dependencies), named with `--venv TOOL=PATH`:

    python3 -m venv /tmp/venv-caffe2onnx && /tmp/venv-caffe2onnx/bin/pip install "numpy<2" \\
        "protobuf==3.20.3" "onnx==1.14.1" "onnxruntime==1.19.2" && \\
        /tmp/venv-caffe2onnx/bin/pip install --no-deps caffe2onnx==2.0.1
    (the same for /tmp/venv-caffe-onnx with caffe-onnx==0.1.2)
    python benchmarks/converters.py --venv caffe2onnx=/tmp/venv-caffe2onnx \\
        --venv caffe-onnx=/tmp/venv-caffe-onnx [--sizes 240x320 37x53] [--nets stsconv ...]
        [--no-every-layer] [--one-input-per-layer]
"""
from __future__ import annotations

import argparse
import json
import math
import platform
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
from google.protobuf import text_format

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dynsal import zoo  # noqa: E402
from dynsal.caffe import io  # noqa: E402
from dynsal.caffe.caffemodel import attach_blobs  # noqa: E402
from dynsal.caffe.graph import build_graph  # noqa: E402
from dynsal.caffe.schema import pb  # noqa: E402
from dynsal.caffe.shapes import infer_shapes  # noqa: E402
from dynsal.errors import DynsalError  # noqa: E402
from dynsal.oracle import Oracle  # noqa: E402
from tests.engines.nets import every_layer_inputs, every_layer_net  # noqa: E402

BOUND = 1e-4
_INPUT = 'layer { name: "in" type: "Input" top: "x" input_param { shape { dim: 1 dim: 4 dim: 23 dim: 29 } } }\n'
#: one Caffe feature per small net (each with a single Input layer and top), to see which a converter gets right
FEATURES = {
    "pool_max_clip": 'layer { name: "p" type: "Pooling" bottom: "x" top: "p" pooling_param { pool: MAX kernel_h: 2 '
                     'kernel_w: 3 stride_h: 3 stride_w: 4 pad_h: 1 pad_w: 2 } }',
    "pool_ave_clip": 'layer { name: "p" type: "Pooling" bottom: "x" top: "p" pooling_param { pool: AVE kernel_h: 2 '
                     'kernel_w: 3 stride_h: 3 stride_w: 4 pad_h: 1 pad_w: 2 } }',
    "pool_ave_partial": 'layer { name: "p" type: "Pooling" bottom: "x" top: "p" pooling_param { pool: AVE '
                        'kernel_size: 2 stride: 2 } }',
    "lrn_across": 'layer { name: "n" type: "LRN" bottom: "x" top: "n" lrn_param { local_size: 3 alpha: 0.5 beta: 0.6 '
                  'k: 2 } }',
    "lrn_within": 'layer { name: "n" type: "LRN" bottom: "x" top: "n" lrn_param { local_size: 3 alpha: 0.3 beta: 0.7 '
                  'norm_region: WITHIN_CHANNEL } }',
    "deconv_group": 'layer { name: "d" type: "Deconvolution" bottom: "x" top: "d" convolution_param { num_output: 6 '
                    'group: 2 kernel_size: 4 stride: 2 pad: 1 } }',
    "eltwise_coeff": 'layer { name: "c" type: "Convolution" bottom: "x" top: "c" convolution_param { num_output: 4 '
                     'kernel_size: 3 pad: 1 } }\nlayer { name: "e" type: "Eltwise" bottom: "x" bottom: "c" top: "e" '
                     'eltwise_param { operation: SUM coeff: 0.5 coeff: -1.5 } }',
    "crop": 'layer { name: "c" type: "Convolution" bottom: "x" top: "c" convolution_param { num_output: 4 '
            'kernel_size: 5 } }\nlayer { name: "crop" type: "Crop" bottom: "x" bottom: "c" top: "crop" crop_param { '
            'axis: 2 offset: 1 offset: 2 } }',
    "slice": 'layer { name: "s" type: "Slice" bottom: "x" top: "a" top: "b" slice_param { axis: 1 slice_point: 1 } }',
    "batchnorm_scale": 'layer { name: "bn" type: "BatchNorm" bottom: "x" top: "x" }\nlayer { name: "sc" type: "Scale" '
                       'bottom: "x" top: "x" scale_param { bias_term: true } }',
    "two_inputs": 'layer { name: "in_y" type: "Input" top: "y" input_param { shape { dim: 1 dim: 4 dim: 23 dim: 29 } } '
                  '}\nlayer { name: "cat" type: "Concat" bottom: "x" bottom: "y" top: "cat" }',
    "in_place_split": 'layer { name: "c" type: "Convolution" bottom: "x" top: "c" convolution_param { num_output: 4 '
                      'kernel_size: 3 pad: 1 } }\nlayer { name: "r" type: "ReLU" bottom: "c" top: "c" }\n'
                      'layer { name: "e" type: "Eltwise" bottom: "c" bottom: "x" top: "e" eltwise_param { operation: '
                      'PROD } }\nlayer { name: "m" type: "Eltwise" bottom: "c" bottom: "e" top: "m" eltwise_param { '
                      'operation: MAX } }',
}
#: tool -> command line converting (prototxt, caffemodel) into an .onnx path, run with the venv's bin/ first
CONVERT = {
    "caffe2onnx": lambda venv, proto, model, out: [f"{venv}/bin/python", "-m", "caffe2onnx.convert", "--prototxt",
                                                   str(proto), "--caffemodel", str(model), "--onnx", str(out)],
    "caffe-onnx": lambda venv, proto, model, out: [f"{venv}/bin/caffe2onnx", str(proto), str(model), out.stem,
                                                   str(out.parent)],
}
CAFFE_RUNNER = """
import json, sys
import numpy as np
import caffe
caffe.set_mode_cpu()
for name in json.load(open(sys.argv[1])):
    net = caffe.Net(name + ".prototxt", caffe.TEST, weights=name + ".caffemodel")
    with np.load(name + "_inputs.npz") as feed:
        for k in feed.files:
            net.blobs[k].data[...] = feed[k]
    net.forward()
    np.savez(name + "_caffe.npz", **{k: net.blobs[k].data for k in net.outputs})
"""
ORT_RUNNER = """
import json, sys
import numpy as np
import onnxruntime as ort
session = ort.InferenceSession(sys.argv[1], providers=["CPUExecutionProvider"])
with np.load(sys.argv[2]) as npz:
    feed = {k: npz[k] for k in npz.files}
names = [i.name for i in session.get_inputs()]
given = {n: feed[n] for n in names if n in feed}
if len(given) != len(names):  # a converter that renamed the inputs: feed them in the net's order
    given = dict(zip(names, feed.values()))
outputs = [o.name for o in session.get_outputs()]
np.savez(sys.argv[3], **dict(zip(outputs, session.run(outputs, given))))
"""


def random_weights(net_param, seed: int):
    """He-scaled Gaussian weights, small biases; BatchNorm gets stored statistics (a positive variance)."""
    rng = np.random.default_rng(seed)
    graph = build_graph(net_param)
    _, params = infer_shapes(graph)
    weights = {}
    for layer in graph.layers:
        shapes = params[layer.name]
        if layer.type == "BatchNorm":
            weights[layer.name] = [rng.standard_normal(shapes[0]).astype(np.float32),
                                   rng.uniform(0.5, 2, shapes[1]).astype(np.float32), np.ones(1, np.float32)]
        elif shapes:
            std = math.sqrt(2.0 / (math.prod(shapes[0]) / shapes[0][0])) if len(shapes[0]) > 1 else 0.3
            weights[layer.name] = [(rng.standard_normal(s) * (std if i == 0 else 0.1)).astype(np.float32)
                                   for i, s in enumerate(shapes)]
    return weights


def split_inputs(net_param):
    """The net with one Input layer per input blob (the same net; some converters read only the first
    top of an Input layer)."""
    out = type(net_param)()
    out.CopyFrom(net_param)
    del out.layer[:]
    for layer in net_param.layer:
        if layer.type != "Input" or len(layer.top) == 1:
            out.layer.add().CopyFrom(layer)
            continue
        shapes = list(layer.input_param.shape)
        for i, top in enumerate(layer.top):
            single = out.layer.add(name=f"{layer.name}_{top}", type="Input", top=[top])
            single.input_param.shape.add().CopyFrom(shapes[i if len(shapes) > 1 else 0])
    return out


def nets(sizes, names, every_layer: bool, one_input_per_layer: bool):
    """[(name, NetParameter, inputs)]: the zoo deploy nets `names` at every size, the FEATURES nets, and the
    every-layer net."""
    out = []
    for h, w in sizes:
        for index, name in enumerate(zoo.NETS):
            if name not in names:
                continue
            rng = np.random.default_rng(index)
            feed = {blob: rng.standard_normal((1, 3, h, w)).astype(np.float32)
                    for blob in zoo.input_names(zoo.get(name))}
            net = zoo.deploy(name, (1, 3, h, w))
            out.append((f"{name}_{h}x{w}", split_inputs(net) if one_input_per_layer else net, feed))
    rng = np.random.default_rng(99)
    for feature, text in FEATURES.items():
        net = text_format.Parse(_INPUT + text, pb.NetParameter())
        net.name = feature
        graph = build_graph(net)
        shapes, _ = infer_shapes(graph)
        out.append((feature, net, {name: rng.standard_normal(shapes[name]).astype(np.float32)
                                   for name in graph.inputs}))
    if every_layer:
        net = every_layer_net()
        out.append(("every_layer", split_inputs(net) if one_input_per_layer else net,
                    {k: v.astype(np.float32) for k, v in every_layer_inputs(3).items()}))
    return out


def last_line(text: str) -> str:
    """The line of a tool's stderr that says what failed: onnxruntime's error, else the last exception line;
    a line over 300 characters keeps its start and its end (onnxruntime puts the failed check last, after a
    long C++ signature)."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    errors = [line for line in lines if "[ONNXRuntimeError]" in line] or [
        line for line in lines if re.match(r"^[\w.]*(Error|Exception)\b", line)] or lines
    if not errors:
        return ""
    line = errors[-1]
    return line if len(line) <= 300 else f"{line[:100]} … {line[-199:]}"


def compare(got: dict, caffe: dict) -> dict:
    """The converted model's outputs against Caffe's, matched by name (or, for one output, by position)."""
    if set(caffe) - set(got) and len(got) == len(caffe) == 1:
        got = {next(iter(caffe)): next(iter(got.values()))}
    missing = sorted(set(caffe) - set(got))
    if missing:
        return dict(matches=False, problem=f"outputs {missing} missing (model has {sorted(got)})")
    worst, shapes_ok = 0.0, True
    for name, ref in caffe.items():
        value = np.asarray(got[name])
        if value.shape != ref.shape:
            if value.size != ref.size:
                return dict(matches=False, problem=f"{name}: shape {value.shape}, Caffe {ref.shape}")
            shapes_ok = False
            value = value.reshape(ref.shape)
        worst = max(worst, float(np.abs(value.astype(np.float64) - ref).max() / max(np.abs(ref).max(), 1e-30)))
    return dict(matches=bool(shapes_ok and worst <= BOUND), shapes_match=shapes_ok, max_abs_dev_over_max_caffe=worst)


def run_third_party(tool: str, venv: str, folder: Path, name: str, caffe: dict) -> dict:
    out = folder / tool / f"{name}.onnx"
    out.parent.mkdir(exist_ok=True)
    result = subprocess.run(CONVERT[tool](venv, folder / f"{name}.prototxt", folder / f"{name}.caffemodel", out),
                            capture_output=True, text=True, cwd=out.parent, timeout=1800)
    if result.returncode != 0 or not out.is_file():
        return dict(converted=False, error=last_line(result.stderr or result.stdout))
    values = folder / tool / f"{name}_out.npz"
    result = subprocess.run([f"{venv}/bin/python", str(folder / "ort_runner.py"), str(out),
                             str(folder / f"{name}_inputs.npz"), str(values)], capture_output=True, text=True,
                            timeout=1800)
    if result.returncode != 0:
        return dict(converted=True, ran=False, error=last_line(result.stderr))
    with np.load(values) as npz:
        return dict(converted=True, ran=True, **compare({k: npz[k] for k in npz.files}, caffe))


def run_dynsal(folder: Path, name: str, feed: dict, caffe: dict) -> dict:
    import onnxruntime as ort

    from dynsal.export import onnx_export

    try:
        exported = onnx_export(folder / f"{name}.prototxt", folder / f"{name}.caffemodel")
    except DynsalError as exc:
        return dict(converted=False, error=str(exc))
    session = ort.InferenceSession(exported.model.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(converted=True, ran=True, **compare(dict(zip(names, session.run(names, feed))), caffe))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--venv", action="append", default=[], metavar="TOOL=PATH",
                        help=f"virtual environment of a converter ({', '.join(CONVERT)})")
    parser.add_argument("--sizes", nargs="+", default=["240x320", "37x53"], help="H×W of the zoo nets' inputs")
    parser.add_argument("--nets", nargs="*", default=list(zoo.NETS), choices=list(zoo.NETS),
                        help="zoo nets (none: the feature and every-layer nets only)")
    parser.add_argument("--no-every-layer", action="store_true", help="leave out the every-layer net")
    parser.add_argument("--one-input-per-layer", action="store_true",
                        help="give each input blob its own Input layer (the same net, written differently)")
    args = parser.parse_args(argv)
    venvs = dict(item.split("=", 1) for item in args.venv)
    unknown = sorted(set(venvs) - set(CONVERT))
    if unknown:
        parser.error(f"unknown converters {unknown}; known: {', '.join(CONVERT)}")
    sizes = [tuple(int(v) for v in size.lower().split("x")) for size in args.sizes]
    oracle = Oracle.ensure(build=False)
    workdir = oracle.workdir()
    folder = workdir.host
    cases = nets(sizes, args.nets, not args.no_every_layer, args.one_input_per_layer)
    for index, (name, net, feed) in enumerate(cases):
        io.write_text(net, folder / f"{name}.prototxt")
        io.write_binary(attach_blobs(net, random_weights(net, index)), folder / f"{name}.caffemodel")
        np.savez(folder / f"{name}_inputs.npz", **feed)
    (folder / "names.json").write_text(json.dumps([name for name, _, _ in cases]))
    (folder / "caffe_runner.py").write_text(CAFFE_RUNNER)
    (folder / "ort_runner.py").write_text(ORT_RUNNER)
    oracle.run(["python3", "caffe_runner.py", "names.json"], workdir, timeout=3600)
    results = []
    for name, _, feed in cases:
        with np.load(folder / f"{name}_caffe.npz") as npz:
            caffe = {k: npz[k] for k in npz.files}
        row = {"net": name, "dynsal": run_dynsal(folder, name, feed, caffe)}
        for tool, venv in venvs.items():
            row[tool] = run_third_party(tool, venv, folder, name, caffe)
        results.append(row)
        print(json.dumps(row), file=sys.stderr)
    shutil.rmtree(folder, ignore_errors=True)
    print(json.dumps(dict(benchmark="converters", bound=BOUND, sizes=args.sizes,
                          one_input_per_layer=args.one_input_per_layer, platform=platform.platform(),
                          tools={"dynsal": "dynsal.export (this checkout)",
                                 **{tool: venv for tool, venv in venvs.items()}}, results=results), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
