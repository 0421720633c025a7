"""The torch engine's fast path: how a net runs, never what it computes beyond the precision chosen.

- channels_last: 4-D weights and inputs in NHWC memory order, cuDNN's fastest layout for tensor-core
  convolutions (default on CUDA);
- cudnn_benchmark: cuDNN times its convolution algorithms once per shape and keeps the fastest
  (`torch.backends.cudnn.benchmark`, set only during the net's passes; default on CUDA);
- compile: `torch.compile` of the net's layers (`dynsal.engines.torch.compiled`), cached on disk
  (`compile_cache_dir`), eager with one warning line where it cannot compile;
- cuda_graphs: each input shape's inference pass captured once as a CUDA graph and replayed
  (`dynsal.engines.torch.graphs`; opt-in, CUDA only);
- batch buckets: with compile or CUDA graphs, a batch smaller than the largest one run so far is
  padded to the next power of two (`bucket`), so that a video's last, short batch reuses a compiled
  shape instead of compiling or capturing a new one. Only for nets whose samples never mix
  (`samples_independent`): the padding cannot change the real samples' results.

Convolution algorithms chosen by cuDNN (benchmark, layout) differ in rounding only; the parity tests
bound that (tests/engines/test_cuda.py, test_fastpath.py).
"""
from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from dynsal.caffe.schema import pb
from dynsal.caffe.shapes import canonical_axis
from dynsal.errors import DynsalError

#: layer types whose every sample's tops depend on that sample's bottoms alone (at any axis)
_PER_SAMPLE_TYPES = {"Input", "Convolution", "Deconvolution", "Pooling", "LRN", "ReLU", "PReLU", "Sigmoid", "TanH",
                     "AbsVal", "Power", "Split", "Eltwise"}
#: layer types that are per sample when the axis they work along is not the batch axis
_AXIS_TYPES = {"Concat": "concat_param", "Slice": "slice_param", "Crop": "crop_param", "Softmax": "softmax_param",
               "InnerProduct": "inner_product_param", "Flatten": "flatten_param", "Scale": "scale_param",
               "Bias": "bias_param"}
_LEGACY_AXIS = {"Concat": "concat_dim", "Slice": "slice_dim"}


@dataclass(frozen=True)
class FastPath:
    """The fast-path settings of one net (see the module docstring)."""

    channels_last: bool = False
    cudnn_benchmark: bool = False
    compile: bool = False
    cuda_graphs: bool = False

    @classmethod
    def for_device(cls, device: torch.device, compile: bool = False, cuda_graphs: bool = False,
                   channels_last: bool | None = None, cudnn_benchmark: bool | None = None) -> FastPath:
        """The settings for `device`: channels_last and cuDNN autotuning default to on for CUDA.

        Raises:
            DynsalError: CUDA graphs asked for on a device that is not a CUDA GPU.
        """
        cuda = device.type == "cuda"
        if cuda_graphs and not cuda:
            raise DynsalError(f"CUDA graphs need a CUDA device, not {device}; drop cuda_graphs (--cuda-graphs)")
        return cls(channels_last=cuda if channels_last is None else bool(channels_last),
                   cudnn_benchmark=cuda if cudnn_benchmark is None else bool(cudnn_benchmark),
                   compile=bool(compile), cuda_graphs=bool(cuda_graphs))

    @property
    def static_shapes(self) -> bool:
        """Whether each new input shape costs a compilation or a capture (then batches are bucketed)."""
        return self.compile or self.cuda_graphs


@contextlib.contextmanager
def cudnn_benchmark(enabled: bool):
    """`torch.backends.cudnn.benchmark = enabled` for the block, restored after."""
    saved = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = enabled
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark = saved


def to_channels_last(module: torch.nn.Module) -> None:
    """The module's 4-D parameters in NHWC memory order, in place (the same Parameter objects; N-D
    convolutions' 5-D weights keep theirs: `Module.to(memory_format=...)` would refuse them)."""
    with torch.no_grad():
        for parameter in module.parameters():
            if parameter.dim() == 4:
                parameter.data = parameter.data.contiguous(memory_format=torch.channels_last)


def compile_cache_dir() -> Path:
    """Where compiled code is kept between runs: $DYNSAL_COMPILE_CACHE, else ~/.cache/dynsal/torch-compile
    (a TORCHINDUCTOR_CACHE_DIR the user set wins: torch reads it)."""
    return Path(os.environ.get("DYNSAL_COMPILE_CACHE") or Path.home() / ".cache" / "dynsal" / "torch-compile")


def use_compile_cache() -> str:
    """Point torch's compile caches (Inductor's FX graph, autotuning and Triton caches live under
    TORCHINDUCTOR_CACHE_DIR) at `compile_cache_dir()` unless the user chose a folder; returns the folder."""
    return os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(compile_cache_dir()))


def bucket(batch: int, largest: int) -> int:
    """The batch size a pass of `batch` samples runs at when the largest batch so far is `largest`:
    the next power of two, capped by `largest`; a batch at least as large runs as it is."""
    if batch >= largest:
        return batch
    return min(1 << (batch - 1).bit_length(), largest)


def _axis_of(layer) -> int | None:
    """The raw axis a layer of `_AXIS_TYPES` works along (its legacy *_dim field when set)."""
    param = getattr(layer, _AXIS_TYPES[layer.type])
    legacy = _LEGACY_AXIS.get(layer.type)
    if legacy and param.HasField(legacy):
        return getattr(param, legacy)
    return param.axis


def samples_independent(graph, blob_shapes) -> bool:
    """Whether every sample's results depend on that sample alone in the net's phase: every layer is
    element-wise, spatial or works along a non-batch axis, and BatchNorm uses its stored statistics.
    Padding such a net's batch cannot change the real samples' results."""
    for g in graph.layers:
        layer = g.param
        if layer.type in _PER_SAMPLE_TYPES:
            continue
        if layer.type in _AXIS_TYPES:
            rank = len(blob_shapes[layer.bottom[0]])
            if canonical_axis(_axis_of(layer), rank, layer) >= 1:
                continue
            return False
        if layer.type == "Dropout" and graph.state.phase == pb.TEST:
            continue
        if layer.type == "BatchNorm":
            p = layer.batch_norm_param
            uses_stored = p.use_global_stats if p.HasField("use_global_stats") else graph.state.phase == pb.TEST
            if uses_stored:
                continue
        return False
    return True
