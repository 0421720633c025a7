"""Run Caffe nets: one interface (`dynsal.engines.base.Net`), two engines.

- ``torch``: dynsal's PyTorch executor (`dynsal.engines.torch`), reproducing Caffe's semantics;
- ``caffe``: real pycaffe, where `import caffe` works.

``engine="auto"`` picks caffe when pycaffe really imports (`dynsal.engines.pycaffe_probe`), else
torch; a pycaffe that is installed but broken gets one warning line on stderr naming why. Importing
this module imports neither torch nor caffe (DESIGN.md D2): each engine is imported when a net is
loaded.
"""
from __future__ import annotations

import os
import sys
from typing import Union

from dynsal.caffe import io
from dynsal.engines.base import Net
from dynsal.engines.pycaffe_probe import pycaffe_installed, pycaffe_problem
from dynsal.errors import DynsalError

PathLike = Union[str, os.PathLike]
ENGINES = ("auto", "torch", "caffe")
PHASES = ("train", "test")

__all__ = ["ENGINES", "Net", "load_net", "pick_engine"]


_warned_broken_pycaffe = False


def pick_engine(engine: str = "auto") -> str:
    """The concrete engine for a name: "auto" is caffe when `import caffe` works, else torch.

    A `caffe` package that is installed but does not import makes "auto" torch, with one warning
    line on stderr (once per process) naming why.

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
        print(f"dynsal: warning: engine auto runs torch, not caffe: {problem}", file=sys.stderr)
    return "torch"


def _as_net_param(source, what: str):
    if source is None or not isinstance(source, (str, os.PathLike)):
        return source
    if what == "net" and io.is_binary_file(source):
        raise DynsalError(f"{source}: a net definition (prototxt) is needed here, not a caffemodel")
    return io.read_net(source)


def load_net(prototxt, weights=None, engine: str = "auto", phase: str = "test", device: str = "cpu",
             precision: str = "fp32", allow_missing: bool = False, seed: int | None = None) -> Net:
    """Construct a net from a prototxt (and a caffemodel), run by the chosen engine.

    Args:
        prototxt: path of a net definition, or a `pb.NetParameter`; upgraded like Caffe on load.
        weights: path of a caffemodel, or a `pb.NetParameter` with blobs; None fills fresh
            blobs with the layers' Caffe fillers.
        engine: "auto", "torch" or "caffe".
        phase: "test" or "train" (include/exclude rules, Dropout, BatchNorm statistics).
        device: "cpu", "cuda" or "cuda:<i>".
        precision: "fp32" (default, what parity is measured in), or the opt-in "tf32", "bf16",
            "fp16" (torch engine).
        allow_missing: tolerate net layers with learnable blobs that the caffemodel lacks
            (they keep their filler values); shape mismatches are always errors.
        seed: seed of the filler random numbers (fresh nets).

    Raises:
        DynsalError: unknown engine/phase, or an engine that is not available here.
        NetDefinitionError: an unknown layer type or an inconsistent net.
        WeightsMismatchError: weights missing for a layer, or a blob of the wrong shape.
        FormatError: an unreadable or corrupt file (named).
    """
    if str(phase).lower() not in PHASES:
        raise DynsalError(f"unknown phase {phase!r}; use 'test' or 'train'")
    chosen = pick_engine(engine)
    net_param = _as_net_param(prototxt, "net")
    model = _as_net_param(weights, "weights")
    if chosen == "caffe":
        problem = pycaffe_problem()
        if problem is not None:
            raise DynsalError(f"the caffe engine needs pycaffe: {problem}; use engine='torch'")
        from dynsal.engines.caffe import CaffeNet

        return CaffeNet(net_param, model, phase=str(phase).lower(), device=device, precision=precision,
                        allow_missing=allow_missing, seed=seed)
    from dynsal.engines.torch import TorchNet

    return TorchNet(net_param, model, phase=str(phase).lower(), device=device, precision=precision,
                    allow_missing=allow_missing, seed=seed)
