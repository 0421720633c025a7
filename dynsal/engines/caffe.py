"""The pycaffe engine: the `dynsal.engines.base.Net` interface over real Caffe (`caffe.Net`).

Runs wherever `import caffe` works (the Docker images, the oracle chroot, a user's own build).
Caffe aborts the whole process on a shape error (glog FATAL), so everything Caffe would abort on
is checked here first with dynsal's own rules and reported as a DynsalError: weights are matched
against the net by layer name (`dynsal.caffe.caffemodel`), new input shapes are run through
`dynsal.caffe.shapes` before `Net::Reshape`.
"""
from __future__ import annotations

import os
import tempfile
from typing import Dict, List, Sequence

# pycaffe's glog reads GLOG_* when libglog loads: warnings and errors only, unless the user chose a level
# (`caffe train`, a separate process, keeps glog's INFO lines with its iterations and losses).
os.environ.setdefault("GLOG_minloglevel", "2")

import caffe  # noqa: E402
import numpy as np  # noqa: E402

from dynsal.caffe import io
from dynsal.caffe.caffemodel import match_weights
from dynsal.caffe.graph import build_graph
from dynsal.caffe.shapes import infer_shapes
from dynsal.engines.base import Arrays, Net
from dynsal.engines.pycaffe_probe import nvidia_gpu_present
from dynsal.errors import DynsalError, WeightsMismatchError


def caffe_has_gpu() -> bool:
    """Whether the loaded libcaffe was built with CUDA (it links libcudart) and an NVIDIA GPU is present.

    Caffe aborts the process on `set_mode_gpu()` without one (and a CPU-only Caffe always), so this is
    read from the library file and the devices.
    """
    try:
        with open("/proc/self/maps") as maps:
            library = next((line.split()[-1] for line in maps if "libcaffe" in line.rsplit("/", 1)[-1]), None)
        if library is None or not nvidia_gpu_present():
            return False
        with open(library, "rb") as handle:
            return b"libcudart" in handle.read()
    except OSError:
        return False


def select_device(device: str) -> str:
    """caffe.set_mode_cpu(), or set_mode_gpu() + set_device(i) for "cuda[:i]"; "auto" is the GPU
    where Caffe was built with CUDA and one is present, else the CPU. Returns the device selected."""
    if device == "auto":
        device = "cuda:0" if caffe_has_gpu() else "cpu"
    if device == "cpu":
        caffe.set_mode_cpu()
        return device
    if device.startswith("cuda"):
        index = int(device.partition(":")[2] or 0)
        caffe.set_mode_gpu()
        caffe.set_device(index)
        return f"cuda:{index}"
    raise DynsalError(f"unknown device {device!r}; use auto, cpu, cuda or cuda:<i>")


class CaffeNet(Net):
    """A net run by pycaffe. Arguments as `dynsal.engines.load_net` (precision must be fp32)."""

    engine = "caffe"

    def __init__(self, net_param, model=None, phase: str = "test", device: str = "cpu", precision: str = "fp32",
                 allow_missing: bool = False, seed: int | None = None):
        if precision != "fp32":
            raise DynsalError(f"the caffe engine computes in fp32 only, not {precision!r}; use engine='torch'")
        self.device_name = select_device(device)
        self.precision = precision
        if seed is not None:
            caffe.set_random_seed(int(seed))
        self.net_param, self.phase = net_param, phase
        with tempfile.TemporaryDirectory(prefix="dynsal-caffe-") as tmp:
            prototxt = os.path.join(tmp, "net.prototxt")
            io.write_text(net_param, prototxt)
            self._net = caffe.Net(prototxt, caffe.TRAIN if phase == "train" else caffe.TEST)
            if model is not None:
                self._check_weights(model, allow_missing)
                caffemodel = os.path.join(tmp, "weights.caffemodel")
                io.write_binary(model, caffemodel)
                self._net.copy_from(caffemodel)

    def _check_weights(self, model, allow_missing: bool) -> None:
        shapes = {name: [tuple(p.data.shape) for p in blobs] for name, blobs in self._net.params.items()}
        self.weights_report = match_weights(shapes, model)
        self.weights_report.check(self.net_param.name, model.name, allow_missing)

    @property
    def inputs(self) -> List[str]:
        return list(self._net.inputs)

    @property
    def outputs(self) -> List[str]:
        return list(self._net.outputs)

    @property
    def blob_names(self) -> List[str]:
        return list(self._net.blobs.keys())

    def _set_inputs(self, inputs: Dict[str, np.ndarray]) -> None:
        self._check_input_names(inputs)
        new_shapes = {k: tuple(np.shape(v)) for k, v in inputs.items()
                      if tuple(np.shape(v)) != tuple(self._net.blobs[k].data.shape)}
        if new_shapes:
            self.reshape(**new_shapes)
        for name, value in inputs.items():
            self._net.blobs[name].data[...] = value

    def forward(self, **inputs: np.ndarray) -> Arrays:
        self._set_inputs(inputs)
        self._net.forward()
        return {name: self._net.blobs[name].data.copy() for name in self.outputs}

    def backward(self, top_diffs: Dict[str, np.ndarray] | None = None) -> Arrays:
        for name, diff in (top_diffs or {}).items():
            if name not in self.outputs:
                raise DynsalError(f"top_diffs: {name!r} is not an output of the net ({self.outputs})")
            self._net.blobs[name].diff[...] = diff
        self._net.backward()
        return {name: self._net.blobs[name].diff.copy() for name in self.inputs}

    def blob(self, name: str) -> np.ndarray:
        self._check_blob(name)
        return self._net.blobs[name].data.copy()

    def blob_diff(self, name: str) -> np.ndarray:
        self._check_blob(name)
        return self._net.blobs[name].diff.copy()

    def params(self) -> Dict[str, List[np.ndarray]]:
        return {name: [p.data.copy() for p in blobs] for name, blobs in self._net.params.items()}

    def param_diffs(self) -> Dict[str, List[np.ndarray]]:
        return {name: [p.diff.copy() for p in blobs] for name, blobs in self._net.params.items()}

    def clear_param_diffs(self) -> None:
        self._net.clear_param_diffs()

    def set_params(self, params: Dict[str, Sequence[np.ndarray]]) -> None:
        for name, arrays in params.items():
            if name not in self._net.params or len(self._net.params[name]) != len(arrays):
                raise WeightsMismatchError(f"layer {name!r}: the net has no such layer with {len(arrays)} blobs")
            for blob, array in zip(self._net.params[name], arrays):
                if tuple(blob.data.shape) != tuple(np.shape(array)):
                    raise WeightsMismatchError(f"layer {name!r}: blob of shape {tuple(blob.data.shape)}, "
                                               f"given {tuple(np.shape(array))}")
                blob.data[...] = array

    def reshape(self, **shapes: Sequence[int]) -> Dict[str, tuple]:
        current = {name: tuple(self._net.blobs[name].data.shape) for name in self.inputs}
        current.update({k: tuple(int(d) for d in v) for k, v in shapes.items()})
        infer_shapes(build_graph(self.net_param, phase=self.phase), current)  # raises before Caffe aborts
        for name, shape in shapes.items():
            self._net.blobs[name].reshape(*shape)
        self._net.reshape()
        return {name: tuple(blob.data.shape) for name, blob in self._net.blobs.items()}
