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
from dynsal.caffe.caffemodel import attach_blobs
from dynsal.caffe.graph import build_graph
from dynsal.caffe.pooling import pooling_geometry
from dynsal.caffe.shapes import infer_shapes

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
        if run["params"]:
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

    def add_run(self, name: str, inputs: Dict[str, np.ndarray], backward: bool = False,
                params: bool | None = None) -> Path:
        """Save `inputs` beside the net; returns the .npz path Caffe's results will have.

        `params`: save the parameters after this run's forward too (default: on the case's first run
        only, since a forward changes them only where a layer updates its statistics, as BatchNorm
        in TRAIN; they are the bulk of each file).
        """
        folder = self.prototxt.parent
        np.savez(folder / f"{name}_inputs.npz", **inputs)
        output = folder / f"{name}_caffe.npz"
        self.runs.append(dict(inputs=f"{name}_inputs.npz", output=output.name, backward=backward,
                              params=not self.runs if params is None else params))
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
    oracle.run(["python3", "run_caffe.py", "cases.json"], workdir, env=env, timeout=1800)


def load_caffe(path: Path) -> Dict[str, np.ndarray]:
    with np.load(path) as npz:
        return {k: npz[k] for k in npz.files}


def _max_deviation(got: np.ndarray, expected: np.ndarray) -> tuple:
    """(max|Δ|, max|expected|), where a NaN both engines produce (Caffe's AVE pooling of a window with
    no cells is 0/0) counts as equal; a NaN in one only makes max|Δ| NaN."""
    if not expected.size:
        return 0.0, 0.0
    got, expected = np.atleast_1d(got).astype(np.float64), np.atleast_1d(expected)
    delta = np.abs(got - expected)
    delta[np.isnan(got) & np.isnan(expected)] = 0.0
    finite = np.abs(expected[~np.isnan(expected)])
    return float(delta.max()), float(finite.max()) if finite.size else 0.0


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
        delta, scale = _max_deviation(got, expected)
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


def relu_gate_flips(net, ref: Dict[str, np.ndarray]) -> Dict[str, int]:
    """{"ReLU <top>": count} of positions whose gate (pre-activation > 0, which is top > 0 for plain and
    leaky ReLU alike) is open in one engine and closed in the other.

    A pre-activation within rounding of 0 (both engines' forward values are within the tolerance)
    can land on different sides of 0: the gate then differs, and so does every diff below it, by
    far more than rounding. Such a run cannot be used to compare backward passes.
    """
    tops = {top for layer in net.graph.layers if layer.type == "ReLU" for top in layer.param.top}
    flips = {top: int(((net.blob(top) > 0) != (ref["data/" + top] > 0)).sum()) for top in sorted(tops)}
    return {f"ReLU {top}": count for top, count in flips.items() if count}


def caffe_eltwise_max_choice(bottoms: List[np.ndarray]) -> np.ndarray:
    """The bottom Caffe's Eltwise MAX routes each element's gradient to (EltwiseLayer::Forward_cpu): the
    first two compare with `a > b` (a tie goes to bottom 1), each later bottom wins only when greater."""
    choice = np.where(bottoms[0] > bottoms[1], 0, 1)
    best = np.maximum(bottoms[0], bottoms[1])
    for index, bottom in enumerate(bottoms[2:], start=2):
        take = bottom > best
        choice, best = np.where(take, index, choice), np.where(take, bottom, best)
    return choice


def eltwise_max_flips(net, ref: Dict[str, np.ndarray]) -> Dict[str, int]:
    """{"Eltwise <layer>": count} of elements of an Eltwise MAX whose winning bottom differs between the
    engines (each recomputed by caffe_eltwise_max_choice from its own bottoms): near-ties, as for MAX
    pooling."""
    flips = {}
    for layer in net.graph.layers:
        if layer.type != "Eltwise" or layer.param.eltwise_param.operation != layer.param.eltwise_param.MAX:
            continue
        names = list(layer.param.bottom)
        ours = caffe_eltwise_max_choice([net.blob(b) for b in names])
        theirs = caffe_eltwise_max_choice([ref["data/" + b] for b in names])
        if (ours != theirs).any():
            flips[f"Eltwise {layer.name}"] = int((ours != theirs).sum())
    return flips


class ReluMargin:
    """The smallest |pre-activation| / max|pre-activation| any ReLU of a torch-engine net has seen since
    this object was made (forward pre-hooks): how close a run came to a gate that rounding decides.

    Along a training trajectory the engines' values drift apart by rounding; a gate whose
    pre-activation is nearer 0 than that drift can open in one engine and not the other.
    """

    def __init__(self, net):
        self.smallest = float("inf")
        for graph_layer, module in zip(net.graph.layers, net.module.layers):
            if graph_layer.type == "ReLU":
                module.register_forward_pre_hook(self._record)

    def _record(self, module, args) -> None:
        magnitude = args[0].detach().abs()
        self.smallest = min(self.smallest, float(magnitude.min() / magnitude.max()))


def caffe_max_pool_choice(bottom: np.ndarray, kernel, stride, pad, out_hw) -> np.ndarray:
    """The element Caffe's MAX pooling routes each window's gradient to: index h·W + w in the input plane.

    As PoolingLayer::Forward_cpu (MAX): window rows [ph·stride_h − pad_h, … + kernel_h) clipped to the
    input, columns likewise, scanned row by row, and an element replaces the running maximum only when
    strictly greater (the first maximum wins a tie). `bottom` N×C×H×W; returns N×C×out_h×out_w int64.
    """
    (kh, kw), (sh, sw), (ph, pw), (oh, ow) = kernel, stride, pad, out_hw
    n, c, height, width = bottom.shape
    padded = np.full((n, c, max(height + ph, (oh - 1) * sh + kh), max(width + pw, (ow - 1) * sw + kw)), -np.inf)
    padded[:, :, ph:ph + height, pw:pw + width] = bottom
    best = np.full((n, c, oh, ow), -np.inf)
    choice = np.full((n, c, oh, ow), -1, dtype=np.int64)
    for dh in range(kh):
        rows = np.arange(oh) * sh + dh
        for dw in range(kw):
            cols = np.arange(ow) * sw + dw
            values = padded[:, :, rows[:, None], cols[None, :]]
            take = values > best
            best = np.where(take, values, best)
            choice = np.where(take, (rows[:, None] - ph) * width + cols[None, :] - pw, choice)
    return choice


def max_pool_flips(net, ref: Dict[str, np.ndarray]) -> Dict[str, int]:
    """{"Pooling <layer>": count} of MAX windows where Caffe picked another element than the torch engine.

    Each engine's choice is recomputed from its own bottom blob by Caffe's rule
    (caffe_max_pool_choice). Two values of a window that are equal within rounding (a near-tie) can
    be ordered differently by the two engines; the gradient then goes to another element, and every
    diff below differs by far more than rounding — like a ReLU gate flip. A flip whose two values
    differ by more than the forward tolerance is no tie: it raises AssertionError (an engine defect).
    """
    flips = {}
    for layer in net.graph.layers:
        if layer.type != "Pooling" or layer.param.pooling_param.pool != layer.param.pooling_param.MAX:
            continue
        bottom, top = layer.param.bottom[0], layer.param.top[0]
        ours, theirs = net.blob(bottom).astype(np.float64), ref["data/" + bottom].astype(np.float64)
        kernel, stride, pad = pooling_geometry(layer.param, ours.shape)
        out_hw = ref["data/" + top].shape[2:]
        our_choice = caffe_max_pool_choice(ours, kernel, stride, pad, out_hw)
        caffe_choice = caffe_max_pool_choice(theirs, kernel, stride, pad, out_hw)
        flipped = our_choice != caffe_choice
        if not flipped.any():
            continue
        plane = theirs.reshape(theirs.shape[:2] + (-1,))
        caffe_max = np.take_along_axis(plane, caffe_choice.reshape(plane.shape[:2] + (-1,)), 2)
        at_ours = np.take_along_axis(plane, our_choice.reshape(plane.shape[:2] + (-1,)), 2)
        gap = float(np.abs(caffe_max - at_ours).max())
        scale = float(np.abs(theirs).max())
        assert gap <= RELATIVE_TOLERANCE * scale, (
            f"MAX pooling {layer.name}: the engines chose elements {gap:.3g} apart (> 1e-4·{scale:.3g}): not a tie")
        flips[f"Pooling {layer.name}"] = int(flipped.sum())
    return flips


def decision_flips(net, caffe_npz: Path) -> Dict[str, int]:
    """Discrete decisions (ReLU gates, MAX pooling and Eltwise MAX choices) in which the torch engine's last forward
    differs from Caffe's saved run by a near-tie; {} when the run can be used to compare backward."""
    ref = load_caffe(caffe_npz)
    return {**relu_gate_flips(net, ref), **max_pool_flips(net, ref), **eltwise_max_flips(net, ref)}


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


def check_backward_on_a_clean_run(net, caffe_npzs: List[Path], feeds: List[Dict[str, np.ndarray]]) -> int:
    """Forward every run (parity required); compare backward on the first run whose forward flipped no
    decision by rounding (decision_flips); returns that run's index.

    Raises:
        AssertionError: a forward or backward deviation, or every run had a flipped decision.
    """
    flips = []
    for run, (caffe_npz, feed) in enumerate(zip(caffe_npzs, feeds)):
        net.forward(**feed)
        problems = compare(net, caffe_npz, backward=False)
        assert problems == [], "\n".join(problems)
        flips.append(decision_flips(net, caffe_npz))
        if not flips[-1]:
            net.backward()
            problems = compare(net, caffe_npz, backward=True)
            assert problems == [], "\n".join(problems)
            return run
    raise AssertionError(f"every run flipped a decision by rounding ({flips}); add runs or change the seeds")
