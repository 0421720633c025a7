"""Run Caffe nets: one interface (`dynsal.engines.base.Net`), three engines.

- ``torch``: dynsal's PyTorch executor (`dynsal.engines.torch`), reproducing Caffe's semantics;
- ``caffe``: real pycaffe, where `import caffe` works;
- ``onnx``: the net exported by `dynsal.export` and run by onnxruntime (`dynsal.engines.onnx`,
  forward only); it also runs `.onnx` files written by `dynsal export`, given as the weights.

``engine="auto"`` picks caffe when pycaffe really imports (`dynsal.engines.pycaffe_probe`), else
torch (and onnx for an `.onnx` file); a pycaffe that is installed but broken gets one `DynsalWarning`
naming why. Importing this module imports no engine (so `import dynsal` never imports torch): each is
imported when a net is loaded.
"""
from __future__ import annotations

import importlib.util
import os
from typing import Union

from dynsal.caffe.io import as_net_param
from dynsal.engines.base import Net
from dynsal.engines.pycaffe_probe import pycaffe_installed, pycaffe_problem
from dynsal.errors import DynsalError, warn
from dynsal.lazy import submodule_loader

PathLike = Union[str, os.PathLike]
__getattr__ = submodule_loader(__name__)  # dynsal.engines.torch, .onnx, ... on first use

ENGINES = ("auto", "torch", "caffe", "onnx")
ONNX_SUFFIX = ".onnx"
PHASES = ("train", "test")

__all__ = ["ENGINES", "Net", "load_net", "pick_engine"]


_warned_broken_pycaffe = False


def pick_engine(engine: str = "auto") -> str:
    """The concrete engine for a name: "auto" is caffe when `import caffe` works, else torch.

    A `caffe` package that is installed but does not import makes "auto" torch, with one `DynsalWarning`
    (once per process) naming why.

    Raises:
        DynsalError: an unknown engine name.
    """
    global _warned_broken_pycaffe
    if engine not in ENGINES:
        raise DynsalError(f"unknown engine {engine!r}; choose one of: {', '.join(ENGINES)}")
    if engine != "auto":
        return engine
    problem = pycaffe_problem()
    if problem is None:
        return "caffe"
    if pycaffe_installed() and not _warned_broken_pycaffe:
        _warned_broken_pycaffe = True
        warn(f"engine auto runs torch, not caffe: {problem}")
    return "torch"


def is_onnx_file(weights) -> bool:
    """Whether `weights` names an `.onnx` file (an export of `dynsal export`) rather than a caffemodel."""
    return isinstance(weights, (str, os.PathLike)) and str(weights).lower().endswith(ONNX_SUFFIX)


def _check_onnxruntime() -> None:
    if importlib.util.find_spec("onnxruntime") is None or importlib.util.find_spec("onnx") is None:
        raise DynsalError("the onnx engine needs onnx and onnxruntime (pip install dynsal[onnx])")


def load_net(prototxt, weights=None, engine: str = "auto", phase: str = "test", device: str = "cpu",
             precision: str | None = "fp32", allow_missing: bool = False, seed: int | None = None,
             compile: bool = False, cuda_graphs: bool = False) -> Net:
    """Construct a net from a prototxt (and a caffemodel), run by the chosen engine.

    Args:
        prototxt: path of a net definition, or a `pb.NetParameter`; upgraded like Caffe on load. None
            with an `.onnx` file: the net the export recorded.
        weights: path of a caffemodel, or a `pb.NetParameter` with blobs; None fills fresh
            blobs with the layers' Caffe fillers; or an `.onnx` file written by `dynsal export` from
            this net (engine onnx or auto).
        engine: "auto", "torch", "caffe" or "onnx".
        phase: "test" or "train" (include/exclude rules, Dropout, BatchNorm statistics).
        device: "cpu", "cuda", "cuda:<i>" or "auto" (the GPU when the engine sees one, else the CPU).
        precision: "fp32" (default, what parity is measured in), or the opt-in "tf32", "bf16",
            "fp16" (torch engine; onnx: fp16); None: an `.onnx` file's own precision, else fp32.
        allow_missing: tolerate net layers with learnable blobs that the caffemodel lacks
            (they keep their filler values); shape mismatches are always errors.
        seed: seed of the filler random numbers (fresh nets).
        compile: run the layers `torch.compile`d, compiled code cached on disk; eager with one warning
            where torch cannot compile (torch engine; `dynsal.engines.torch.compiled`).
        cuda_graphs: replay inference passes from CUDA graphs, one per input shape (torch engine on
            CUDA; `dynsal.engines.torch.graphs`).

    Raises:
        DynsalError: unknown engine/phase, an engine that is not available here, or compile /
            cuda_graphs asked of the caffe engine.
        NetDefinitionError: an unknown layer type or an inconsistent net.
        WeightsMismatchError: weights missing for a layer, or a blob of the wrong shape.
        FormatError: an unreadable or corrupt file (named).
    """
    if str(phase).lower() not in PHASES:
        raise DynsalError(f"unknown phase {phase!r}; use 'test' or 'train'")
    net_param = as_net_param(prototxt, "net")
    if is_onnx_file(weights):
        if engine not in ("auto", "onnx"):
            raise DynsalError(f"{weights}: an ONNX file runs on engine 'onnx' only, not {engine!r}")
        _check_onnxruntime()
        from dynsal.engines.onnx import OnnxFileNet

        return OnnxFileNet(weights, net_param, device=device, precision=precision)
    precision = precision or "fp32"
    chosen = pick_engine(engine)
    model = as_net_param(weights, "weights")
    if chosen == "caffe" and (compile or cuda_graphs):
        raise DynsalError(f"{'compile' if compile else 'cuda_graphs'} is a torch engine option; the caffe engine "
                          "runs pycaffe as it is (use engine='torch', --engine torch)")
    if chosen == "caffe":
        problem = pycaffe_problem()
        if problem is not None:
            raise DynsalError(f"the caffe engine needs pycaffe: {problem}; use engine='torch'")
        from dynsal.engines.caffe import CaffeNet

        return CaffeNet(net_param, model, phase=str(phase).lower(), device=device, precision=precision,
                        allow_missing=allow_missing, seed=seed)
    if chosen == "onnx":
        _check_onnxruntime()
        from dynsal.engines.onnx import OnnxNet

        return OnnxNet(net_param, model, phase=str(phase).lower(), device=device, precision=precision,
                       allow_missing=allow_missing, seed=seed)
    from dynsal.engines.torch import TorchNet, TorchNetOptions

    return TorchNet(net_param, model, TorchNetOptions(phase=str(phase).lower(), device=device, precision=precision,
                                                      allow_missing=allow_missing, seed=seed, compile=compile,
                                                      cuda_graphs=cuda_graphs))
