"""Helpers for comparing the torch engine with real Caffe: random weights, inputs, the Caffe runner.

The Caffe side runs one script in the oracle chroot for a whole test module: each case builds one
`caffe.Net` (prototxt + caffemodel, a phase) and runs it on one or more input sets, reshaping the
inputs between runs, and saves every blob's data (and, for backward runs, every blob's diff and every
parameter's diff) plus the parameters after forward into one .npz per run.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List

import numpy as np

from dynsal.caffe import io
from dynsal.caffe.graph import build_graph
from dynsal.caffe.shapes import infer_shapes
from dynsal.caffe.weights import attach_blobs

RELATIVE_TOLERANCE = 1e-4  # max|Δ| ≤ 1e-4·max|ref| per blob (fp32)

CAFFE_SCRIPT = """
import json, sys
import numpy as np
import caffe
caffe.set_mode_cpu()
for case in json.load(open(sys.argv[1])):
    net = caffe.Net(case["prototxt"], getattr(caffe, case["phase"]), weights=case["caffemodel"])
    for run in case["runs"]:
        with np.load(run["inputs"]) as feed:
            for name in feed.files:
                net.blobs[name].reshape(*feed[name].shape)
                net.blobs[name].data[...] = feed[name]
        net.reshape()
        net.forward()
        out = {"data/" + k: b.data for k, b in net.blobs.items()}
        out.update({"param/%s/%d" % (k, i): p.data for k, v in net.params.items() for i, p in enumerate(v)})
        if run["backward"]:
            net.clear_param_diffs()
            net.backward()
            out.update({"diff/" + k: b.diff for k, b in net.blobs.items()})
            out.update({"pdiff/%s/%d" % (k, i): p.diff for k, v in net.params.items() for i, p in enumerate(v)})
        np.savez(run["output"], **out)
        json.dump({"blobs": list(net.blobs.keys()), "inputs": list(net.inputs), "outputs": list(net.outputs)},
                  open(run["output"] + ".json", "w"))
"""


def random_weights(net_param, seed: int, phase: str = "TEST", input_shapes=None) -> Dict[str, List[np.ndarray]]:
    """He-scaled Gaussian weights, small Gaussian biases; BatchNorm gets stored statistics.

    `input_shapes` sizes data layers without a shape rule (see dynsal.caffe.shapes.infer_shapes).
    """
    rng = np.random.default_rng(seed)
    graph = build_graph(net_param, phase=phase)
    _, params = infer_shapes(graph, input_shapes)
    weights = {}
    for layer in graph.layers:
        shapes = params[layer.name]
        if not shapes:
            continue
        if layer.type == "BatchNorm":
            channels = shapes[0]
            factor = 2.5
            weights[layer.name] = [rng.standard_normal(channels).astype(np.float32) * factor,
                                   rng.uniform(0.5, 2.0, channels).astype(np.float32) * factor,
                                   np.array([factor], np.float32)]
            continue
        arrays = []
        for i, shape in enumerate(shapes):
            if i == 0 and len(shape) > 1:
                std = math.sqrt(2.0 / (math.prod(shape) / shape[0]))
            else:
                std = 0.1 if layer.type != "PReLU" else 0.3
            arrays.append((rng.standard_normal(shape) * std).astype(np.float32))
        weights[layer.name] = arrays
    return weights


@dataclass
class CaffeCase:
    """One caffe.Net of a batch of Caffe work: its files, phase, and the runs on it."""

    key: str
    prototxt: Path
    caffemodel: Path
    phase: str = "TEST"
    runs: List[dict] = field(default_factory=list)

    def add_run(self, name: str, inputs: Dict[str, np.ndarray], backward: bool = False) -> Path:
        """Save `inputs` beside the net; returns the .npz path Caffe's results will have."""
        folder = self.prototxt.parent
        np.savez(folder / f"{name}_inputs.npz", **inputs)
        output = folder / f"{name}_caffe.npz"
        self.runs.append(dict(inputs=f"{name}_inputs.npz", output=output.name, backward=backward))
        return output


def write_net(folder: Path, name: str, net_param, weights) -> tuple:
    """Write `<name>.prototxt` and `<name>.caffemodel` into `folder`; returns both paths."""
    prototxt, caffemodel = folder / f"{name}.prototxt", folder / f"{name}.caffemodel"
    io.write_text(net_param, prototxt)
    io.write_binary(attach_blobs(net_param, weights), caffemodel)
    return prototxt, caffemodel


def run_caffe(oracle, workdir, cases: List[CaffeCase], env: Dict[str, str] | None = None) -> None:
    """Run every case in one chroot call (paths relative to `workdir`; `env` added to the chroot's)."""
    jobs = [dict(prototxt=c.prototxt.name, caffemodel=c.caffemodel.name, phase=c.phase, runs=c.runs) for c in cases]
    (workdir.host / "cases.json").write_text(json.dumps(jobs))
    (workdir.host / "run_caffe.py").write_text(CAFFE_SCRIPT)
    oracle.run(["python3", "run_caffe.py", "cases.json"], workdir, env=env, timeout=900)


def load_caffe(path: Path) -> Dict[str, np.ndarray]:
    with np.load(path) as npz:
        return {k: npz[k] for k in npz.files}


def deviations(ours: Dict[str, np.ndarray], ref: Dict[str, np.ndarray], prefix: str,
               tolerance: float = RELATIVE_TOLERANCE) -> List[str]:
    """Lines for the `prefix/` arrays of `ref` that `ours` misses or exceeds the relative tolerance on."""
    bad = []
    for key, expected in ref.items():
        if not key.startswith(prefix + "/"):
            continue
        name = key[len(prefix) + 1:]
        got = ours.get(name)
        if got is None or got.shape != expected.shape:
            bad.append(f"{key}: shape {None if got is None else got.shape} vs Caffe {expected.shape}")
            continue
        scale = float(np.abs(expected).max()) if expected.size else 0.0
        delta = float(np.abs(got.astype(np.float64) - expected).max()) if expected.size else 0.0
        if not delta <= tolerance * scale:
            bad.append(f"{key}: max|Δ| {delta:.3g} > {tolerance:g}·max|ref| ({scale:.3g})")
    return bad


def torch_results(net, backward: bool) -> Dict[str, Dict[str, np.ndarray]]:
    """The torch engine's blobs, params (and diffs) keyed like the Caffe script's npz prefixes."""
    out = {"data": {b: net.blob(b) for b in net.blob_names},
           "param": {f"{k}/{i}": a for k, v in net.params().items() for i, a in enumerate(v)}}
    if backward:
        out["diff"] = {b: net.blob_diff(b) for b in net.blob_names}
        out["pdiff"] = {f"{k}/{i}": a for k, v in net.param_diffs().items() for i, a in enumerate(v)}
    return out


def relu_gate_flips(net, caffe_npz: Path) -> Dict[str, int]:
    """{ReLU top: count} of positions that one engine zeroed and the other did not.

    A pre-activation within rounding of 0 (both engines' forward values are within the tolerance)
    can land on different sides of 0: the gate then differs, and so does every diff below it, by
    far more than rounding. Such a run cannot be used to compare backward passes.
    """
    ref = load_caffe(caffe_npz)
    tops = {top for layer in net.graph.layers if layer.type == "ReLU" for top in layer.param.top}
    flips = {top: int(((net.blob(top) == 0) != (ref["data/" + top] == 0)).sum()) for top in sorted(tops)}
    return {top: count for top, count in flips.items() if count}


def compare(net, caffe_npz: Path, backward: bool) -> List[str]:
    """All deviations of the torch engine's last run of `net` from Caffe's saved run."""
    ref = load_caffe(caffe_npz)
    ours = torch_results(net, backward)
    problems = []
    for prefix in ours:
        problems += deviations(ours[prefix], ref, prefix)
    meta = json.loads(Path(str(caffe_npz) + ".json").read_text())
    if meta["blobs"] != net.blob_names or meta["inputs"] != net.inputs or meta["outputs"] != net.outputs:
        problems.append(f"names differ: Caffe {meta}, torch blobs {net.blob_names}, inputs {net.inputs}, "
                        f"outputs {net.outputs}")
    return problems
