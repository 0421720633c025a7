"""The onnx engine: Caffe nets exported by `dynsal.export` and run by onnxruntime, forward only.

- `OnnxNet` exports the net in memory with every blob as a graph output, so `blob(name)` reads any
  blob as with the other engines: once with dynamic shapes where the net allows it (see
  `dynsal.export.shapes`), else at the input shapes it is fed (again when they change).
- `OnnxFileNet` runs an `.onnx` file written by `dynsal export` (at its exported input shapes, or
  any with `--dynamic`); only the net's outputs are readable.
Execution providers: CPU; for device "cuda[:i]" TensorRT and CUDA where this onnxruntime has them
(onnxruntime-gpu), with CPU behind them for nodes they do not take. Precision: fp32, or fp16
(weights and arithmetic in float16; blobs are returned as float32). Training methods (backward,
diffs) raise DynsalError: use the torch engine for them.
"""
from __future__ import annotations

import abc
import json
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import numpy as np
import onnxruntime as ort
from google.protobuf import text_format
from onnxruntime.capi import onnxruntime_pybind11_state as ort_errors

from dynsal.caffe.caffemodel import match_weights
from dynsal.caffe.graph import build_graph
from dynsal.caffe.schema import pb
from dynsal.caffe.shapes import infer_shapes
from dynsal.engines.base import Arrays, GraphNet
from dynsal.errors import DynsalError, ExportError, WeightsMismatchError
from dynsal.export.onnx_model import NET_DEFINITION_KEY, PRECISIONS, build_model
from dynsal.export.prepared import prepare_net
from dynsal.export.shapes import export_shapes

GPU_PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider")
#: what onnxruntime raises for a file it cannot load (its exception types share no base but Exception)
LOAD_ERRORS = tuple(getattr(ort_errors, name) for name in ("Fail", "InvalidArgument", "InvalidGraph", "InvalidProtobuf",
                                                          "NoSuchFile", "NotImplemented"))


def resolve_device(device: str) -> str:
    """"auto" is the first GPU where this onnxruntime has a CUDA or TensorRT provider, else the CPU."""
    if device != "auto":
        return device
    return "cuda:0" if set(GPU_PROVIDERS) & set(ort.get_available_providers()) else "cpu"


def execution_providers(device: str) -> List:
    """onnxruntime providers for a device name: CPU, or TensorRT/CUDA (those installed) then CPU.

    Raises:
        DynsalError: an unknown device, or "cuda" where onnxruntime has no GPU provider.
    """
    if device == "cpu":
        return ["CPUExecutionProvider"]
    kind, _, index = device.partition(":")
    if kind != "cuda" or not (index.isdigit() or index == ""):
        raise DynsalError(f"unknown device {device!r}; use cpu, cuda or cuda:<index>")
    available = ort.get_available_providers()
    gpu = [(name, {"device_id": int(index or 0)}) for name in GPU_PROVIDERS if name in available]
    if not gpu:
        raise DynsalError(f"device {device!r} asked for, but onnxruntime {ort.__version__} has no CUDA or TensorRT "
                          f"provider (it has {', '.join(available)}); install onnxruntime-gpu")
    return gpu + ["CPUExecutionProvider"]


def _check_precision(precision: str) -> str:
    if precision not in PRECISIONS:
        raise DynsalError(f"the onnx engine runs fp32 or fp16, not {precision!r}")
    return precision


class _OnnxRuntimeNet(GraphNet):
    """What both onnx nets share: names, shapes, forward through a session, blobs; no training."""

    blob_shapes: Dict[str, tuple]
    _names: Dict[str, str]  # Caffe blob -> output of the session's model
    _results: Dict[str, np.ndarray] | None
    engine = "onnx"

    @property
    def device_name(self) -> str:
        """The resolved device ("cpu", "cuda:<i>")."""
        return self.device

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.net_param.name!r}, device={self.device}, precision={self.precision}, "
                f"inputs={self.inputs}, outputs={self.outputs})")

    def _accept_shapes(self, shapes: Dict[str, tuple], param_shapes) -> None:
        """Raise DynsalError when the model cannot run at these input shapes."""

    def _shapes_changed(self) -> None:
        """Called after the input shapes changed."""

    def _run(self, session: ort.InferenceSession, names: List[str], feed: Dict[str, np.ndarray]) -> List[np.ndarray]:
        """The session's outputs `names` for the inputs `feed`."""
        return session.run(names, feed)

    @abc.abstractmethod
    def _current_session(self) -> ort.InferenceSession:
        """The onnxruntime session that runs the net at the current input shapes."""

    def reshape(self, **shapes: Sequence[int]) -> Dict[str, tuple]:
        self._check_reshape_names(shapes)
        overrides = {name: self.blob_shapes[name] for name in self.inputs}
        overrides.update({name: tuple(int(d) for d in shape) for name, shape in shapes.items()})
        blob_shapes, param_shapes = infer_shapes(self.graph, overrides)
        self._accept_shapes(overrides, param_shapes)
        if blob_shapes != self.blob_shapes:
            self.blob_shapes = blob_shapes
            self._shapes_changed()
        return dict(blob_shapes)

    def forward(self, **inputs: np.ndarray) -> Arrays:
        self._check_input_names(inputs)
        feed = {name: np.ascontiguousarray(value, dtype=np.float32) for name, value in inputs.items()}
        new_shapes = {name: a.shape for name, a in feed.items() if a.shape != self.blob_shapes[name]}
        if new_shapes:
            self.reshape(**new_shapes)
        session = self._current_session()
        names = [output.name for output in session.get_outputs()]
        values = dict(zip(names, self._run(session, names, feed)))
        self._results = {blob: values[name] for blob, name in self._names.items()}
        for name, array in feed.items():
            self._results.setdefault(name, array)
        return {name: self.blob(name) for name in self.outputs}

    def blob(self, name: str) -> np.ndarray:
        self._check_blob(name)
        if self._results is None:
            raise DynsalError("no blobs yet: run forward first")
        if name not in self._results:
            raise DynsalError(f"blob {name!r} is not an output of this ONNX model; readable: "
                              f"{', '.join(sorted(self._results))}")
        return np.array(self._results[name], dtype=np.float32)

    def _refuse_training(self):
        raise DynsalError("the onnx engine runs nets forward only; use engine='torch' for gradients")

    def backward(self, top_diffs: Dict[str, np.ndarray] | None = None) -> Arrays:
        self._refuse_training()

    def blob_diff(self, name: str) -> np.ndarray:
        self._refuse_training()

    def param_diffs(self) -> Dict[str, List[np.ndarray]]:
        self._refuse_training()

    def clear_param_diffs(self) -> None:
        self._refuse_training()


class OnnxNet(_OnnxRuntimeNet):
    """A Caffe net exported in memory and run by onnxruntime (arguments as `dynsal.engines.load_net`).

    Raises:
        DynsalError: the train phase, a precision other than fp32/fp16, an unavailable device.
        ExportError: a layer that does not export (named).
    """

    def __init__(self, net_param, model=None, phase: str = "test", device: str = "cpu", precision: str = "fp32",
                 allow_missing: bool = False, seed: int | None = None):
        if phase != "test":
            raise DynsalError("the onnx engine runs the TEST phase (forward only); use engine='torch' to train")
        self.net_param, self.phase, self.device = net_param, phase, resolve_device(device)
        self.precision = _check_precision(precision)
        self.providers = execution_providers(self.device)
        prepared = prepare_net(net_param, model, allow_missing=allow_missing, seed=seed)
        self.graph, self.blob_shapes, self._params = prepared.graph, prepared.shapes.blobs, prepared.blobs
        self.weights_report = None if model is None else match_weights(prepared.shapes.params, model)
        self.dynamic = self._exports_dynamically()
        self._session = None
        self._names, self._results = {}, None

    def _exports_dynamically(self) -> bool:
        """Whether the net exports with free batch and spatial sizes (one session serves every size)."""
        try:
            export_shapes(self.graph, None, dynamic=True)
        except ExportError:
            return False
        return True

    def _accept_shapes(self, shapes, param_shapes) -> None:
        changed = [name for name, arrays in self._params.items()
                   if [a.shape for a in arrays] != [tuple(s) for s in param_shapes[name]]]
        if changed:
            raise DynsalError(f"input shapes {shapes} change the blob shapes of layers {', '.join(changed)}; "
                              "only batch and spatial sizes can change")

    def _shapes_changed(self) -> None:
        if not self.dynamic:
            self._session = None

    def _current_session(self) -> ort.InferenceSession:
        """The session: the net exported with dynamic shapes, or where it cannot be, at the current input
        shapes (again when they change); every blob an output."""
        if self._session is None:
            shapes = export_shapes(self.graph, {name: self.blob_shapes[name] for name in self.inputs},
                                   dynamic=self.dynamic)
            exported = build_model(self.graph, shapes, self._params, precision=self.precision,
                                   outputs=self.blob_names)
            self._session = ort.InferenceSession(exported.model.SerializeToString(), providers=self.providers)
            self._names = exported.outputs
        return self._session

    def params(self) -> Dict[str, List[np.ndarray]]:
        return {name: [a.copy() for a in arrays] for name, arrays in self._params.items()}

    def set_params(self, params: Dict[str, Sequence[np.ndarray]]) -> None:
        for name, arrays in params.items():
            have = self._params.get(name)
            if have is None:
                raise WeightsMismatchError(f"layer {name!r}: the net has no layer with learnable blobs of that name")
            if len(arrays) != len(have):
                raise WeightsMismatchError(f"layer {name!r}: {len(arrays)} arrays for {len(have)} blobs")
            for i, (old, new) in enumerate(zip(have, arrays)):
                if np.shape(new) != old.shape:
                    raise WeightsMismatchError(f"layer {name!r} blob {i}: given {np.shape(new)}, net {old.shape}")
        for name, arrays in params.items():
            self._params[name] = [np.array(a, dtype=np.float32) for a in arrays]
        self._session = None


class OnnxFileNet(_OnnxRuntimeNet):
    """An `.onnx` file written by `dynsal export`, run by onnxruntime. The file records what it is (its
    `dynsal.*` metadata: the net definition, precision, inputs, outputs, fixed or dynamic shapes), so
    `net_param` and `precision` may be left out: they are then the file's. A given `net_param` must
    have the file's inputs and outputs, a given precision must be the file's. A fixed-shape export
    whose batch is 1 runs larger batches one item at a time. Only the outputs are readable, and
    `params()` / `set_params()` are not available (the file holds the weights in ONNX's form).

    Raises:
        DynsalError: an unreadable file, not a dynsal export (or one without its net definition and no
            `net_param`), inputs/outputs that differ from the net's, a precision other than the file's.
    """

    def __init__(self, path, net_param=None, device: str = "cpu", precision: str | None = None):
        self.path = Path(path)
        self.phase, self.device = "test", resolve_device(device)
        if not self.path.is_file():
            raise DynsalError(f"{self.path}: ONNX file not found")
        self.providers = execution_providers(self.device)
        try:
            self._session = ort.InferenceSession(str(self.path), providers=self.providers)
        except LOAD_ERRORS as exc:
            raise DynsalError(f"{self.path}: onnxruntime cannot load it ({str(exc).splitlines()[0]})") from None
        meta = self._session.get_modelmeta().custom_metadata_map
        if "dynsal.outputs" not in meta:
            raise DynsalError(f"{self.path}: not an ONNX file written by `dynsal export` (no dynsal metadata)")
        self.net_param = net_param if net_param is not None else self._recorded_net(meta)
        self.graph = build_graph(self.net_param, phase="TEST")
        self._names, inputs = json.loads(meta["dynsal.outputs"]), json.loads(meta["dynsal.inputs"])
        if inputs != self.inputs or not set(self.outputs) <= set(self._names):
            raise DynsalError(f"{self.path} has inputs {inputs} and outputs {sorted(self._names)}; net "
                              f"{self.net_param.name!r} has inputs {self.inputs} and outputs {self.outputs}")
        recorded = meta["dynsal.precision"]
        self.precision = _check_precision(precision or recorded)
        if recorded != self.precision:
            raise DynsalError(f"{self.path} was exported in {recorded}: run it with precision "
                              f"{recorded!r} (--precision {recorded}, or leave it out)")
        self._fixed = {i.name: i.shape for i in self._session.get_inputs()}
        fixed_inputs = {name: tuple(dims) for name, dims in self._fixed.items()
                        if all(isinstance(d, int) for d in dims)}
        self.blob_shapes = infer_shapes(self.graph, fixed_inputs)[0]
        self._results = None

    def _recorded_net(self, meta: Dict[str, str]):
        """The net definition the export recorded (`dynsal.export.onnx_model.record_net_definition`)."""
        if NET_DEFINITION_KEY not in meta:
            raise DynsalError(f"{self.path} does not record its net (an older dynsal export): name the net "
                              "(--net NAME or --prototxt FILE), or export it again")
        return text_format.Parse(meta[NET_DEFINITION_KEY], pb.NetParameter())

    @property
    def fixed_size(self) -> Tuple[int, int] | None:
        """The (height, width) every input must have in a fixed-shape export, None where they are free."""
        sizes = {tuple(dims[2:]) for dims in self._fixed.values()}
        if len(sizes) != 1:
            return None
        size = sizes.pop()
        return size if len(size) == 2 and all(isinstance(d, int) for d in size) else None

    def _one_at_a_time(self) -> bool:
        """Whether every input and output has a batch axis fixed at 1 (larger batches then run item by item)."""
        return all(list(dims[:1]) == [1] for dims in list(self._fixed.values())
                   + [output.shape for output in self._session.get_outputs()])

    def _accept_shapes(self, shapes, param_shapes) -> None:
        for name, shape in shapes.items():
            fixed = list(self._fixed[name])
            if self._one_at_a_time():
                fixed[0] = shape[0]
            if len(fixed) != len(shape) or any(isinstance(d, int) and d != s for d, s in zip(fixed, shape)):
                raise DynsalError(f"{self.path} was exported for {name} of shape {tuple(fixed)}, not {tuple(shape)}: "
                                  "export it with --dynamic to run other sizes")

    def _current_session(self) -> ort.InferenceSession:
        return self._session

    def _run(self, session: ort.InferenceSession, names: List[str], feed: Dict[str, np.ndarray]) -> List[np.ndarray]:
        batch = len(next(iter(feed.values())))
        if batch == 1 or not self._one_at_a_time():
            return session.run(names, feed)
        runs = [session.run(names, {name: value[i:i + 1] for name, value in feed.items()}) for i in range(batch)]
        return [np.concatenate(outputs) for outputs in zip(*runs)]

    def params(self) -> Dict[str, List[np.ndarray]]:
        raise DynsalError(f"{self.path}: an exported ONNX file holds its weights in ONNX's form; read the "
                          "caffemodel for Caffe's blobs")

    def set_params(self, params: Dict[str, Sequence[np.ndarray]]) -> None:
        self.params()
