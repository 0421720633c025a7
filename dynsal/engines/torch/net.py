"""The torch engine's Net: a CaffeModule with numpy in and out, devices, precision and backward.

Gradients are recorded in forward when `gradients` is true, which it is by default for nets with a
loss (a top with a non-zero loss weight) or `force_backward: true`; deploy nets run under
`torch.inference_mode`. Inputs and data-layer tops get diffs only with `force_backward`. As in
Caffe, backward may run more than once per forward: blob diffs are those of the last backward,
parameter diffs accumulate.

The fast path (`fastpath`: channels_last, cuDNN autotuning, `compile`, `cuda_graphs`, batch buckets)
changes how passes run, not their numbers beyond rounding. A compiled or graphed net keeps only its
outputs (and inputs): `blob()` of another blob names the option to drop. On CUDA, inputs travel on a
copy stream (asynchronously from `host_buffer` memory) and outputs come back into page-locked memory,
so that `start_forward` of the next batch overlaps this one's computation.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, replace
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch

from dynsal.caffe.graph import build_graph
from dynsal.caffe.shapes import infer_shapes
from dynsal.engines.base import Arrays, GraphNet, PendingOutputs
from dynsal.engines.torch.compiled import CompiledPass, KeptPass
from dynsal.engines.torch.denormals import flush_denormals
from dynsal.engines.torch.fastpath import FastPath, bucket, cudnn_benchmark, samples_independent, to_channels_last
from dynsal.engines.torch.graphs import GraphedPasses
from dynsal.engines.torch.layers.data import source_shapes
from dynsal.engines.torch.module import Blobs, CaffeModule
from dynsal.engines.torch.params import fill_fresh, load_caffemodel, module_param_shapes, set_blobs
from dynsal.engines.torch.precision import check_precision, precision_context
from dynsal.engines.torch.registry import check_supported
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


@dataclass(frozen=True)
class TorchNetOptions:
    """How a `TorchNet` is built and run.

    Attributes:
        phase: "test" or "train".
        device: "auto" (CUDA when available), "cpu", "cuda" or "cuda:<i>".
        precision: "fp32", "tf32", "bf16" or "fp16".
        allow_missing: tolerate layers the caffemodel lacks (they keep their fillers' values).
        seed: seed of the fillers' random numbers.
        level, stages: the rest of the NetState that include/exclude rules test (pycaffe's Net arguments).
        compile: run the layers `torch.compile`d (`compiled.CompiledPass`).
        cuda_graphs: replay inference passes from CUDA graphs (`graphs.GraphedPasses`; CUDA only).
        channels_last, cudnn_benchmark: None = on for CUDA (`fastpath.FastPath.for_device`).
    """

    phase: str = "test"
    device: str = "cpu"
    precision: str = "fp32"
    allow_missing: bool = False
    seed: Optional[int] = None
    level: int = 0
    stages: Sequence[str] = ()
    compile: bool = False
    cuda_graphs: bool = False
    channels_last: Optional[bool] = None
    cudnn_benchmark: Optional[bool] = None


class TorchNet(GraphNet):
    """A Caffe net run by PyTorch.

    Args:
        net_param: the upgraded `pb.NetParameter`.
        model: a caffemodel `pb.NetParameter` (blobs matched by layer name), or None for fillers.
        options: how it is built and run (`TorchNetOptions`).
        **fields: `TorchNetOptions` fields given by name instead, over `options`
            (`TorchNet(net_param, seed=0, channels_last=True)`).
    """

    engine = "torch"

    def __init__(self, net_param, model=None, options: Optional[TorchNetOptions] = None, **fields):
        options = replace(options or TorchNetOptions(), **fields)
        self.options = options
        self.net_param, self.phase = net_param, options.phase.lower()
        self.precision = check_precision(options.precision)
        self.device = resolve_device(options.device)
        self.device_name = str(self.device)
        self.graph = build_graph(net_param, phase=options.phase.upper(), level=options.level, stages=options.stages)
        for layer in self.graph.layers:
            check_supported(layer.param)
        self.source_shapes = source_shapes(self.graph)
        self.blob_shapes, param_shapes = infer_shapes(self.graph, self.source_shapes)
        self.module = CaffeModule(self.graph, self.blob_shapes, param_shapes)
        if model is None:
            self.weights_report = None
            fill_fresh(self.module, options.seed)
        else:
            self.weights_report = load_caffemodel(self.module, model, options.allow_missing, new_net=True,
                                                  seed=options.seed)
        self.module.to(self.device)
        self.fast = FastPath.for_device(self.device, options.compile, options.cuda_graphs, options.channels_last,
                                        options.cudnn_benchmark)
        if self.fast.channels_last:
            to_channels_last(self.module)
        self.gradients = self.graph.force_backward or any(any(w) for w in self.module.weights)
        kept = KeptPass(self.module, self.outputs) if self.fast.static_shapes else None
        self._kept = CompiledPass(kept, net_param.name) if options.compile else kept
        self._graphs = GraphedPasses(lambda data: self._kept(data)[0], net_param.name) if options.cuda_graphs else None
        self._buckets = self.fast.static_shapes and samples_independent(self.graph, self.blob_shapes)
        self._largest_batch = 0
        self._copy_stream = torch.cuda.Stream(self.device) if self.device.type == "cuda" else None
        self._blobs: Blobs | None = None

    def __repr__(self) -> str:
        return (f"TorchNet({self.net_param.name!r}, phase={self.graph.state.phase}, device={self.device}, "
                f"precision={self.precision}, inputs={self.inputs}, outputs={self.outputs}, {self.fast})")

    @property
    def compile_failure(self) -> str | None:
        """Why the net runs eager although compile was asked for (None when compiled, or not asked)."""
        return getattr(self._kept, "failure", None)

    def set_conv_algorithm(self, algorithm: str | None, layers: Sequence[str] | None = None) -> None:
        """Run the 2-D convolutions of `layers` (default all) at CPU float32 inference with `algorithm`
        (`direct`, `channels_last`, `fft`, `fft<n>`, `winograd`; `measure`: each shape's fastest, measured;
        None: as at load, $DYNSAL_CONV_ALGO else measured); see `convalgo`. A layer the algorithm cannot run
        convolves directly."""
        convolutions = {layer.layer_name: layer for layer in self.module.layers if hasattr(layer, "force_algorithm")}
        unknown = sorted(set(layers or ()) - set(convolutions))
        if unknown:
            raise DynsalError(f"no convolution layer named {', '.join(unknown)} in net {self.net_param.name!r}")
        for name in layers or convolutions:
            convolutions[name].force_algorithm(algorithm)

    @property
    def conv_algorithms(self) -> Dict[str, Dict[tuple, str]]:
        """{layer: {input shape: algorithm}} of the convolutions run so far at CPU float32 inference."""
        return {layer.layer_name: dict(layer.algorithms) for layer in self.module.layers
                if getattr(layer, "algorithms", None)}

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

    def _feed(self, inputs: Dict[str, np.ndarray]) -> tuple:
        """(input tensors on the device, the real batch size when the batch was padded to a bucket, else None)."""
        self._check_input_names(inputs)
        arrays = {name: np.ascontiguousarray(value, dtype=np.float32) for name, value in inputs.items()}
        new_shapes = {name: a.shape for name, a in arrays.items() if a.shape != self.blob_shapes[name]}
        if new_shapes:
            self.reshape(**new_shapes)
        feed, batch = self._pad_to_bucket(self._to_device({name: torch.from_numpy(a) for name, a in arrays.items()}))
        if self.fast.channels_last:
            feed = {name: t.contiguous(memory_format=torch.channels_last) if t.dim() == 4 else t
                    for name, t in feed.items()}
        return feed, batch

    def _to_device(self, tensors: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        """The inputs on the net's device; on CUDA copied on the copy stream (asynchronously from
        page-locked memory), which the computing stream waits for."""
        if self._copy_stream is None:
            return {name: t.to(self.device) for name, t in tensors.items()}
        current = torch.cuda.current_stream(self.device)
        with torch.cuda.stream(self._copy_stream):
            moved = {name: t.to(self.device, non_blocking=True) for name, t in tensors.items()}
        current.wait_stream(self._copy_stream)
        for tensor in moved.values():
            tensor.record_stream(current)
        return moved

    def _pad_to_bucket(self, feed: Dict[str, torch.Tensor]) -> tuple:
        sizes = {t.shape[0] for t in feed.values() if t.dim()}
        if not self._buckets or self.gradients or len(sizes) != 1:
            return feed, None
        batch = sizes.pop()
        self._largest_batch = max(self._largest_batch, batch)
        padded = bucket(batch, self._largest_batch)
        if padded == batch:
            return feed, None
        return {name: torch.cat([t, t.new_zeros((padded - batch,) + tuple(t.shape[1:]))]) for name, t in
                feed.items()}, batch

    @contextlib.contextmanager
    def _pass_context(self, gradients: bool, inference: bool = True):
        """Gradient mode (recording, else inference mode or, where tensors made may later meet
        recorded passes, no_grad), precision, cuDNN settings and (CPU) flushed denormals of one pass."""
        grad_mode = torch.enable_grad() if gradients else torch.inference_mode() if inference else torch.no_grad()
        cudnn = cudnn_benchmark(self.fast.cudnn_benchmark) if self.device.type == "cuda" else contextlib.nullcontext()
        with grad_mode, precision_context(self.precision, self.device, autocast_cache=self._graphs is None), cudnn, \
                flush_denormals(self.device):
            yield

    def _run(self, feed: Dict[str, torch.Tensor]) -> Blobs:
        """Every blob (plain eager), or the sources and the kept outputs (compiled or graphed passes)."""
        if self._kept is None:
            return self.module(feed)
        blobs = self.module.sources(feed)
        data = dict(blobs.data)
        if self._graphs is not None and not torch.is_grad_enabled():
            kept, losses = self._graphs(data), []
        else:
            kept, losses = self._kept(data)
        for name, tensor in kept.items():
            blobs.data[name] = tensor
            blobs.origin.setdefault(name, tensor)
        blobs.losses.extend(zip(losses, self._kept.loss_weights))
        return blobs

    def start_forward(self, **inputs: np.ndarray) -> PendingOutputs:
        feed, batch = self._feed(inputs)
        with self._pass_context(self.gradients):
            blobs = self._run(feed)
        if batch is not None:  # drop the bucket's padding
            blobs = blobs.first(batch)
        if self.gradients:
            for tensor in blobs.origin.values():
                if tensor.requires_grad and not tensor.is_leaf:
                    tensor.retain_grad()
        self._blobs = blobs
        return self._fetch({name: blobs.data[name] for name in self.outputs})

    def _fetch(self, outputs: Dict[str, torch.Tensor]) -> PendingOutputs:
        """The outputs as float32 host arrays; on CUDA copied asynchronously into page-locked memory."""
        if self.device.type != "cuda":
            arrays = {name: _numpy(t) for name, t in outputs.items()}
            return PendingOutputs(lambda: arrays)
        host = {name: torch.empty(tuple(t.shape), dtype=torch.float32, pin_memory=True) for name, t in outputs.items()}
        for name, tensor in outputs.items():
            host[name].copy_(tensor.detach(), non_blocking=True)
        done = torch.cuda.Event()
        done.record()

        def wait() -> Arrays:
            done.synchronize()
            return {name: h.numpy() for name, h in host.items()}
        return PendingOutputs(wait)

    def forward(self, **inputs: np.ndarray) -> Arrays:
        return self.start_forward(**inputs).result()

    def data_pass(self, gradients: bool) -> Blobs:
        """One pass of a net fed by its data layers (a solver's train or test net), recording gradients
        when asked, in the net's precision and fast path; returns its blobs."""
        with self._pass_context(gradients, inference=False):
            return self._run({})

    def host_buffer(self, shape: Sequence[int]) -> np.ndarray:
        if self.device.type == "cuda":
            return torch.empty(tuple(shape), dtype=torch.float32, pin_memory=True).numpy()
        return np.empty(tuple(shape), np.float32)

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

    def _kept_blob(self, name: str, which: str) -> torch.Tensor:
        """Blob `name`'s last tensor ("data") or its first version ("origin", whose gradient is its diff)."""
        self._check_blob(name)
        store = getattr(self._blob_store(), which)
        if name not in store:
            option = "compile" if self.fast.compile else "cuda_graphs"
            raise DynsalError(f"blob {name!r} of net {self.net_param.name!r} is not kept: a net run with {option} "
                              f"keeps only its inputs and outputs ({', '.join(self.inputs + self.outputs)}); load it "
                              f"without {option} to read the others")
        return store[name]

    def blob(self, name: str) -> np.ndarray:
        return _numpy(self._kept_blob(name, "data"))

    def blob_diff(self, name: str) -> np.ndarray:
        tensor = self._kept_blob(name, "origin")
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
