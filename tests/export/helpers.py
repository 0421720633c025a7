"""Running exported models (onnxruntime, TorchScript, OpenCV DNN) and comparing their blobs."""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Dict

import cv2
import numpy as np
import onnx
import onnxruntime as ort

from dynsal.caffe.graph import build_graph
from dynsal.export import OnnxExport
from tests.engines import parity


def every_blob(net_param):
    """The blobs of a net other than its inputs (an export returning them all)."""
    graph = build_graph(net_param, phase="TEST")
    return [blob for blob in graph.blobs if blob not in graph.inputs]


def run_onnxruntime(exported: OnnxExport, feed: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
    """{Caffe blob: value} of the exported model run by onnxruntime (CPU)."""
    session = ort.InferenceSession(exported.model.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    values = dict(zip(names, session.run(names, {k: np.asarray(v, np.float32) for k, v in feed.items()})))
    return {blob: values[name] for blob, name in exported.outputs.items()}


def run_torchscript(module, exported: OnnxExport, feed: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
    """{Caffe blob: value} of a TorchScript module (`to_torchscript(exported.model)`, saved and loaded)."""
    import torch

    out = module(**{k: torch.from_numpy(np.asarray(v, np.float32)) for k, v in feed.items()})
    return {blob: out[name].numpy() for blob, name in exported.outputs.items()}


def saved_and_loaded(module):
    """A TorchScript module after torch.jit.save and torch.jit.load (what users get)."""
    import torch

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "net.pt"
        module.save(str(path))
        return torch.jit.load(str(path))


def run_opencv(exported: OnnxExport, feed: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
    """{Caffe blob: value} of the exported model read by cv2.dnn.readNetFromONNX (raises cv2.error
    where OpenCV cannot read or run it)."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "net.onnx"
        onnx.save_model(exported.model, str(path))
        net = cv2.dnn.readNetFromONNX(str(path))
    for name, value in feed.items():
        net.setInput(np.asarray(value, np.float32), name)
    names = list(exported.outputs.values())
    values = dict(zip(names, net.forward(names)))
    return {blob: values[name] for blob, name in exported.outputs.items()}


def deviations(got: Dict[str, np.ndarray], reference: Dict[str, np.ndarray]) -> list:
    """Lines for the blobs of `got` whose shape differs from `reference`'s or whose max|Δ| exceeds
    1e-4·max|reference| (the engines' parity bound, `tests.engines.parity`)."""
    return parity.deviations(got, {f"data/{blob}": np.asarray(reference[blob]) for blob in got}, "data")
