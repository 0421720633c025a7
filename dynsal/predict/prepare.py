"""The per-frame work before the net, done by worker processes: optical flow, flow image, channel order.

A `FrameRecipe` says what a net takes of each frame (the frame itself, its flow image, or both, and
with which `FlowSettings`). `prepare_chunk` turns a chunk of consecutive frames — already decoded and
resized — into the uint8 3×H×W RGB arrays of each net input (`dynsal.data.preprocess.to_net_order`);
the float conversion happens when a batch is assembled (`preprocess_input` into the net's input
buffers), so that four times fewer bytes travel back from the workers. The flow image of frame t is
made from the frames (first, second) of `dynsal.data.flow.flow_pair`; a frame without a pair (a still
image) gets the zero-motion flow image.

`FrameWorkers` gives the executor a pipeline hands chunks to: worker processes, one per core, each
computing one pair at a time (OpenCV single-threaded there: DIS, Farnebäck, TV-L1 scale by processes,
not threads); threads for methods that share one model (RAFT), and where processes cannot be made
(one `DynsalWarning`); the calling thread for nets without a flow stream (nothing worth shipping) or
`workers=0`.
"""
from __future__ import annotations

import os
import time
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from dynsal.data.flow import FlowSettings
from dynsal.data.preprocess import to_net_order
from dynsal.errors import DynsalError, warn
from dynsal.workers import WorkerProcesses

#: (t, frame t, first, second) with resized BGR uint8 frames; first and second None for a still image
FrameJob = Tuple[int, np.ndarray, Optional[np.ndarray], Optional[np.ndarray]]
#: (t, {net input: uint8 3×H×W RGB}, zero motion)
PreparedFrame = Tuple[int, Dict[str, np.ndarray], bool]


@dataclass(frozen=True)
class FrameRecipe:
    """What a net takes of each frame.

    Attributes:
        frame_blob: the input fed the frame ("data1"), or None (a temporal-only net).
        flow_blob: the input fed the flow image ("data1_b", or "data1" for a temporal-only net), or None.
        flow: the flow settings (None without a flow stream).
    """

    frame_blob: Optional[str]
    flow_blob: Optional[str]
    flow: Optional[FlowSettings]

    def prepare(self, job: FrameJob, seconds: Dict[str, float]) -> PreparedFrame:
        """One frame's net inputs; adds the time spent to seconds["flow"] and seconds["preprocess"]."""
        t, frame, first, second = job
        arrays = {}
        if self.flow_blob is not None:
            start = time.perf_counter()
            if first is None:
                flow_image = self.flow.image(np.zeros(frame.shape[:2] + (2,), np.float32))
            else:
                flow_image = self.flow.image(self.flow.flow(first, second))
            middle = time.perf_counter()
            arrays[self.flow_blob] = to_net_order(flow_image)
            seconds["flow"] += middle - start
            seconds["preprocess"] += time.perf_counter() - middle
        if self.frame_blob is not None:
            start = time.perf_counter()
            arrays[self.frame_blob] = to_net_order(frame)
            seconds["preprocess"] += time.perf_counter() - start
        return t, arrays, self.flow_blob is not None and first is None


def prepare_chunk(recipe: FrameRecipe, jobs: Sequence[FrameJob]) -> Tuple[List[PreparedFrame], Dict[str, float]]:
    """The prepared frames of a chunk of jobs, and the seconds spent per stage (flow, preprocess)."""
    seconds = {"flow": 0.0, "preprocess": 0.0}
    return [recipe.prepare(job, seconds) for job in jobs], seconds


def available_cores() -> int:
    """The CPU cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


class InlineExecutor(Executor):
    """Runs each task in the calling thread at submission (for work too small to ship elsewhere)."""

    def submit(self, fn, /, *args, **kwargs) -> Future:
        future: Future = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # delivered where the result is read, like any executor's
            future.set_exception(exc)
        return future


class FrameWorkers:
    """Where a recipe's chunks run (see the module docstring), started at first use and kept for
    later inputs until `close()`.

    Args:
        recipe: what the net takes of each frame.
        workers: processes (threads for RAFT); 0 = the calling thread.
    """

    def __init__(self, recipe: FrameRecipe, workers: int):
        self.recipe, self.workers = recipe, workers
        self._pool: Optional[Executor] = None

    @property
    def executor(self) -> Executor:
        if self.recipe.flow_blob is None or self.workers == 0:
            return InlineExecutor()
        if self._pool is None and self.recipe.flow.in_processes:
            try:
                self._pool = WorkerProcesses(self.workers, "forkserver", ("dynsal.predict.prepare",),
                                             one_opencv_thread=True, hint="").executor()
            except DynsalError as exc:  # no working semaphores (e.g. a chroot without /dev/shm)
                warn(f"{exc}; optical flow runs in {self.workers} threads")
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.workers)
        return self._pool

    def close(self) -> None:
        """Stop the workers (queued chunks are dropped); the next use starts new ones."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
