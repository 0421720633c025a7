"""CUDA graphs of the torch engine's inference passes (opt-in: `load_net(..., cuda_graphs=True)`).

Per input shape (names, sizes, dtypes, strides), the pass is run twice on a side stream (cuDNN
autotuning, compilation and lazy initialisation happen there) and then captured once as a CUDA
graph; later passes of that shape copy their inputs into the captured input tensors and replay
the graph, which launches every kernel of the net at once instead of one by one from Python. The
replayed kernels are the captured ones, so the numbers are the pass's own. Each graph keeps its
own memory pool (graphs replayed in any order must not share one); at most `limit` shapes are kept,
the least recently used one is dropped first. A graph's outputs are overwritten by its next replay.
A pass that cannot be captured (one that waits for the GPU, e.g. to copy a host value) runs without
graphs from then on, after one `DynsalWarning` naming why.
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable, Dict, Tuple

import torch

from dynsal.errors import DynsalError, warn

Tensors = Dict[str, torch.Tensor]
#: passes run before a capture, so that nothing initialises itself while capturing
WARMUP_PASSES = 2


def shape_key(feed: Tensors) -> Tuple:
    """What a captured graph is specific to: every input's name, sizes, dtype and strides."""
    return tuple((name, tuple(t.shape), t.dtype, t.stride()) for name, t in sorted(feed.items()))


@dataclass
class CapturedPass:
    """A pass recorded for one input shape: its static input and output tensors and how to replay it."""

    inputs: Tensors
    outputs: Tensors
    replay_recorded: Callable[[], None]

    def replay(self, feed: Tensors) -> Tensors:
        """The outputs for `feed` (the static output tensors, valid until the next replay)."""
        for name, tensor in feed.items():
            self.inputs[name].copy_(tensor)
        self.replay_recorded()
        return self.outputs


class GraphedPasses:
    """Inference passes `run(feed) -> outputs` replayed from CUDA graphs, one per input shape.

    Args:
        run: the pass (tensors on the GPU in, {name: tensor} out), run under the caller's modes
            (inference, autocast without its weight cache, cuDNN settings).
        name: the net's name, for the warning.
        limit: shapes kept at most.
    """

    def __init__(self, run: Callable[[Tensors], Tensors], name: str = "net", limit: int = 8):
        self.run, self.name, self.limit = run, name, limit
        self.passes: OrderedDict = OrderedDict()
        self.captures = 0
        self.failure: str | None = None  # why passes run without graphs, once a capture failed

    def __call__(self, feed: Tensors) -> Tensors:
        if self.failure is not None:
            return self.run(feed)
        key = shape_key(feed)
        captured = self.passes.pop(key, None)
        if captured is None:
            try:
                captured = self.capture({name: t.clone() for name, t in feed.items()})
            except DynsalError:
                raise
            except Exception as exc:
                outputs = self.run(feed)  # the net's own errors are raised here
                self.failure = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
                warn(f"CUDA graphs cannot capture net {self.name!r} ({self.failure[:300]}); it runs without them")
                return outputs
            self.captures += 1
        self.passes[key] = captured
        while len(self.passes) > self.limit:
            self.passes.popitem(last=False)
        return captured.replay(feed)

    def capture(self, inputs: Tensors) -> CapturedPass:
        """Record `run` on the static `inputs` as a CUDA graph (after warm-up passes on a side stream)."""
        current = torch.cuda.current_stream()
        side = torch.cuda.Stream()
        side.wait_stream(current)
        with torch.cuda.stream(side):
            for _ in range(WARMUP_PASSES):
                self.run(inputs)
        current.wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            outputs = self.run(inputs)
        return CapturedPass(inputs, outputs, graph.replay)
