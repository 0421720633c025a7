"""The passes of the torch engine's fast path that keep only some blobs: eager (`KeptPass`) and
`torch.compile`d (`CompiledPass`).

A kept pass runs a net's layers with bottoms (`CaffeModule.compute`) on the blobs of its sources and
returns only the blobs asked for (the net's outputs) and its loss tops: what compilation and CUDA
graphs need, since every other intermediate blob would have to be written to memory.

`CompiledPass` compiles the kept pass with `torch.compile` as one graph per input shape: shapes are
specialised (`dynamic=False`), so Caffe's shape rules (pooling's rounding and clip, crop offsets,
deconvolution sizes) run at trace time on concrete sizes, exactly as in eager; Inductor draws random
numbers from eager's generator (`fallback_random`), so Dropout keeps eager's masks; CPU FFT
convolutions stay eager inside the graph (`layers.vision`). Compiled code is cached on disk
(`fastpath.compile_cache_dir`). $DYNSAL_COMPILE_BACKEND names another torch.compile backend (e.g.
"aot_eager" to tell a tracing problem from a code-generation one; "eager" traces only, for quick
dry runs); Inductor is the default. Where torch cannot compile — no C++ compiler for the CPU backend, no
Triton for CUDA, a Python torch.compile does not support, a backend error — the net runs eager from
then on, after one `DynsalWarning` naming why.
"""
from __future__ import annotations

import os
import warnings
from typing import Dict, List, Sequence, Tuple

import torch

from dynsal.engines.torch.fastpath import use_compile_cache
from dynsal.engines.torch.module import Blobs, CaffeModule
from dynsal.errors import DynsalError, warn

Tensors = Dict[str, torch.Tensor]
#: compiled shapes per net before torch.compile gives up compiling new ones (torch's default is 8; batch
#: buckets and a few frame sizes stay far below this)
RECOMPILE_LIMIT = 64
#: torch warns that it traces through functools.lru_cache; the cached functions are pure shape arithmetic
_LRU_CACHE_WARNING = "Dynamo detected a call to a `functools.lru_cache`"


def _recompile_limit():
    """torch.compile's limit of compiled shapes raised to RECOMPILE_LIMIT for the block."""
    config = torch._dynamo.config  # imported by torch.compile
    name = "recompile_limit" if hasattr(config, "recompile_limit") else "cache_size_limit"  # torch < 2.6
    return config.patch(**{name: RECOMPILE_LIMIT})


class KeptPass:
    """A net's layers with bottoms, returning ({kept blob: tensor}, [loss top, ...]) (eager).

    Args:
        module: the net.
        keep: the blobs to return (the net's outputs).
    """

    def __init__(self, module: CaffeModule, keep: Sequence[str]):
        self.module, self.keep = module, tuple(keep)
        #: the loss weight of each returned loss top, in order
        self.loss_weights = [w for layer, bottoms, tops, weights in zip(module.layers, module.bottoms, module.tops,
                                                                       module.weights) if bottoms for w in weights if w]

    def __call__(self, data: Tensors) -> Tuple[Tensors, List[torch.Tensor]]:
        blobs = self.module.compute(Blobs(data=dict(data), origin=dict(data)))
        return {name: blobs.data[name] for name in self.keep}, [top for top, _ in blobs.losses]


class CompiledPass:
    """`torch.compile` of a `KeptPass`, falling back to it (with one warning line) where compiling fails.

    Args:
        kept: the eager pass.
        name: the net's name, for the warning.
    """

    def __init__(self, kept: KeptPass, name: str):
        self.kept, self.name = kept, name
        self.loss_weights = kept.loss_weights
        self.cache_dir = use_compile_cache()
        self.failure: str | None = None  # why the net runs eager, once compiling failed
        backend = os.environ.get("DYNSAL_COMPILE_BACKEND", "inductor")
        options = {"fallback_random": True} if backend == "inductor" else None
        try:
            self._compiled = torch.compile(kept.__call__, dynamic=False, backend=backend, options=options)
        except Exception as exc:  # e.g. a Python version this torch cannot compile for
            self._compiled = None
            self._fall_back(exc)

    def __call__(self, data: Tensors) -> Tuple[Tensors, List[torch.Tensor]]:
        if self._compiled is None:
            return self.kept(data)
        try:
            with _recompile_limit(), warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=_LRU_CACHE_WARNING)
                return self._compiled(data)
        except DynsalError:
            raise
        except Exception as exc:
            result = self.kept(data)  # the net's own errors are raised here, by eager
            self._compiled = None
            self._fall_back(exc)
            return result

    def _fall_back(self, exc: BaseException) -> None:
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        self.failure = f"{type(exc).__name__}: {lines[0] if lines else 'no message'}"[:300]
        warn(f"torch.compile cannot compile net {self.name!r} ({self.failure}); it runs eager")
