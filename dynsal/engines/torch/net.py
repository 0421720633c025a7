"""The torch engine's Net: a CaffeModule with numpy in and out, devices, precision and backward.

Gradients are recorded in forward when `gradients` is true, which it is by default for nets with a
loss (a top with a non-zero loss weight) or `force_backward: true`; deploy nets run under
`torch.inference_mode`. Inputs and data-layer tops get diffs only with `force_backward`. As in
Caffe, backward may run more than once per forward: blob diffs are those of the last backward,
parameter diffs accumulate.
"""
from __future__ import annotations

from typing import Dict, List, Sequence

import numpy as np
import torch

from dynsal.caffe.graph import build_graph
from dynsal.caffe.shapes import infer_shapes
from dynsal.engines.base import Arrays, GraphNet
from dynsal.engines.torch.denormals import flush_denormals
from dynsal.engines.torch.layers.data import source_shapes
from dynsal.engines.torch.module import Blobs, CaffeModule
from dynsal.engines.torch.precision import check_precision, precision_context
from dynsal.engines.torch.registry import check_supported
from dynsal.engines.torch.weights import fill_fresh, load_caffemodel, module_param_shapes, set_blobs
from dynsal.errors import DynsalError, NetDefinitionError


def resolve_device(name: str) -> torch.device:
    """A torch device; "auto" is the first CUDA GPU when this torch sees one, else the CPU."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise DynsalError(f"unknown device {name!r}; use auto, cpu, cuda or cuda:<index>") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise DynsalError(f"device {name!r} asked for, but this torch ({torch.__version__}) sees no CUDA GPU")
    if device.type not in ("cpu", "cuda"):
        raise DynsalError(f"unsupported device {name!r}; use auto, cpu, cuda or cuda:<index>")
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    return device


def _numpy(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().to("cpu", torch.float32).numpy().copy()


class TorchNet(GraphNet):
    """A Caffe net run by PyTorch.

    Args:
        net_param: the upgraded `pb.NetParameter`.
        model: a caffemodel `pb.NetParameter` (blobs matched by layer name), or None for fillers.
        phase: "test" or "train".
        device: "auto" (CUDA when available), "cpu", "cuda" or "cuda:<i>".
        precision: "fp32", "tf32", "bf16" or "fp16".
        allow_missing: tolerate layers the caffemodel lacks.
        seed: seed of the fillers' random numbers.
        level, stages: the rest of the NetState that include/exclude rules test (pycaffe's Net arguments).
    """

    engine = "torch"

    def __init__(self, net_param, model=None, phase: str = "test", device: str = "cpu", precision: str = "fp32",
                 allow_missing: bool = False, seed: int | None = None, level: int = 0, stages: Sequence[str] = ()):
        self.net_param, self.phase = net_param, phase.lower()
        self.precision = check_precision(precision)
        self.device = resolve_device(device)
        self.device_name = str(self.device)
        self.graph = build_graph(net_param, phase=phase.upper(), level=level, stages=stages)
        for layer in self.graph.layers:
            check_supported(layer.param)
        self.source_shapes = source_shapes(self.graph)
        self.blob_shapes, param_shapes = infer_shapes(self.graph, self.source_shapes)
        self.module = CaffeModule(self.graph, self.blob_shapes, param_shapes)
        if model is not None:
            self.weights_report = load_caffemodel(self.module, model, allow_missing)
        else:
            self.weights_report = None
            fill_fresh(self.module, seed)
        self.module.to(self.device)
        self.gradients = self.graph.force_backward or any(any(w) for w in self.module.weights)
        self._blobs: Blobs | None = None

    def __repr__(self) -> str:
        return (f"TorchNet({self.net_param.name!r}, phase={self.graph.state.phase}, device={self.device}, "
                f"precision={self.precision}, inputs={self.inputs}, outputs={self.outputs})")

    @property
    def fft_convolution(self) -> bool:
        """Whether eligible convolutions may run by tiled FFT at inference (`fftconv`; default True)."""
        return all(getattr(layer, "use_fft", True) for layer in self.module.layers)

    @fft_convolution.setter
    def fft_convolution(self, enabled: bool) -> None:
        for layer in self.module.layers:
            if hasattr(layer, "use_fft"):
                layer.use_fft = bool(enabled)

    def reshape(self, **shapes: Sequence[int]) -> Dict[str, tuple]:
        self._check_reshape_names(shapes)
        overrides = dict(self.source_shapes)
        overrides.update({name: self.blob_shapes[name] for name in self.inputs})
        overrides.update({name: tuple(int(d) for d in shape) for name, shape in shapes.items()})
        blob_shapes, param_shapes = infer_shapes(self.graph, overrides)
        have = module_param_shapes(self.module)
        changed = [name for name, shapes_ in have.items() if [tuple(s) for s in param_shapes[name]] != shapes_]
        if changed:
            raise NetDefinitionError(f"input shapes {shapes} change the blob shapes of layers {', '.join(changed)}; "
                                     "only batch and spatial sizes can change")
        self.blob_shapes = blob_shapes
        return dict(blob_shapes)

    def _feed(self, inputs: Dict[str, np.ndarray]) -> Dict[str, torch.Tensor]:
        self._check_input_names(inputs)
        arrays = {name: np.ascontiguousarray(value, dtype=np.float32) for name, value in inputs.items()}
        new_shapes = {name: a.shape for name, a in arrays.items() if a.shape != self.blob_shapes[name]}
        if new_shapes:
            self.reshape(**new_shapes)
        return {name: torch.from_numpy(a).to(self.device) for name, a in arrays.items()}

    def forward(self, **inputs: np.ndarray) -> Arrays:
        feed = self._feed(inputs)
        grad_mode = torch.enable_grad() if self.gradients else torch.inference_mode()
        with grad_mode, precision_context(self.precision, self.device), flush_denormals(self.device):
            blobs = self.module(feed)
        if self.gradients:
            for tensor in blobs.origin.values():
                if tensor.requires_grad and not tensor.is_leaf:
                    tensor.retain_grad()
        self._blobs = blobs
        return {name: self.blob(name) for name in self.outputs}

    def backward(self, top_diffs: Dict[str, np.ndarray] | None = None) -> Arrays:
        if self._blobs is None or not self.gradients:
            raise DynsalError("backward needs a forward pass run with gradients (net.gradients = True, set by "
                              "default for nets with a loss or force_backward)")
        for tensor in self._blobs.origin.values():  # blob diffs are per backward pass, as in Caffe
            tensor.grad = None
        objective = self._blobs.objective()
        for name, diff in (top_diffs or {}).items():
            if name not in self.outputs:
                raise DynsalError(f"top_diffs: {name!r} is not a net output; outputs: {', '.join(self.outputs)}")
            seed = torch.as_tensor(np.asarray(diff, dtype=np.float32), device=self.device)
            term = (self._blobs.data[name].float() * seed.reshape(self._blobs.data[name].shape)).sum()
            objective = term if objective is None else objective + term
        if objective is None:
            raise DynsalError("nothing to back-propagate: the net has no loss; pass top_diffs for its outputs")
        with flush_denormals(self.device):
            objective.backward(retain_graph=True)
        return {name: self.blob_diff(name) for name in self.inputs}

    def _blob_store(self) -> Blobs:
        if self._blobs is None:
            raise DynsalError("no blobs yet: run forward first")
        return self._blobs

    def blob(self, name: str) -> np.ndarray:
        self._check_blob(name)
        return _numpy(self._blob_store().data[name])

    def blob_diff(self, name: str) -> np.ndarray:
        self._check_blob(name)
        tensor = self._blob_store().origin[name]
        grad = tensor.grad if tensor.requires_grad else None
        return _numpy(grad) if grad is not None else np.zeros(tuple(tensor.shape), np.float32)

    def params(self) -> Dict[str, List[np.ndarray]]:
        return {name: [_numpy(b) for b in layer.blobs] for name, layer in self.module.named_layers()}

    def param_diffs(self) -> Dict[str, List[np.ndarray]]:
        return {name: [_numpy(b.grad) if b.grad is not None else np.zeros(tuple(b.shape), np.float32)
                       for b in layer.blobs] for name, layer in self.module.named_layers()}

    def clear_param_diffs(self) -> None:
        for param in self.module.parameters():
            param.grad = None

    def set_params(self, params: Dict[str, Sequence[np.ndarray]]) -> None:
        set_blobs(self.module, params)
