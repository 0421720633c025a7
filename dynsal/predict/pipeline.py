"""The prediction pipeline: frames in, saliency maps out, every stage busy at once.

Stages, in order, and where they run:
- decode: a reader thread decodes the input and resizes each frame (OpenCV releases the GIL), and
  hands chunks of `CHUNK` consecutive frames with their flow pairs (`dynsal.data.flow.flow_inputs`;
  a one-frame input is a still image) to the frame workers;
- flow, preprocess (channel order): the frame workers (`dynsal.predict.prepare`: one process per core);
- preprocess (float conversion): an assembler thread writes each frame, in order, into the net's
  input buffers (`Net.host_buffer`: page-locked on CUDA), `BUFFERS` batches in rotation;
- net: a net thread queues the next batch (`Net.start_forward`) before it waits for the previous
  batch's outputs, so the device computes while the host transfers, fetches and assembles;
- postprocess: a thread turns each output into the map at the frame's size (`Postprocessing`), after
  refusing non-finite outputs (naming the frame);
- write: the caller, iterating the predictions.
Every queue between stages is bounded, so memory does not grow with the video. An error in any stage
stops every stage and is raised in the caller's thread; a caller that stops iterating (an error while
writing, Ctrl-C) stops them too. `StageTimes` adds up the seconds each stage works (summed over its
threads and processes, waiting excluded): the shares show which stage bounds the speed.
"""
from __future__ import annotations

import itertools
import queue
import threading
import time
from concurrent.futures import Executor, Future
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Dict, Iterable, Iterator, List, Optional, Tuple

import numpy as np

from dynsal.data.flow import flow_inputs
from dynsal.data.preprocess import preprocess_input
from dynsal.errors import DataError, DynsalError
from dynsal.predict.postprocess import Postprocessing
from dynsal.predict.prepare import FrameJob, FrameRecipe, prepare_chunk

STAGES = ("decode", "flow", "preprocess", "net", "postprocess", "write")
CHUNK = 4  # frames per task handed to a frame worker
BUFFERS = 4  # batches of input buffers in rotation: assembling, queued, running, being fetched
_POLL = 0.05  # seconds between looks at the stop flag while a stage waits
_END = object()


@dataclass
class Prediction:
    """One frame's result: its name, the original BGR frame, the uint8 map and the float map (0-255)."""

    name: str
    frame: np.ndarray
    saliency: np.ndarray
    float_map: np.ndarray
    zero_motion: bool = False  # the temporal stream saw no motion (a still image or a one-frame video)


class StageTimes:
    """Seconds of work per stage (`STAGES`), added up over threads and processes, and frames done."""

    def __init__(self):
        self.seconds: Dict[str, float] = dict.fromkeys(STAGES, 0.0)
        self.frames = 0
        self._lock = threading.Lock()

    def add(self, stage: str, seconds: float) -> None:
        with self._lock:
            self.seconds[stage] += seconds

    @contextmanager
    def timing(self, stage: str):
        """Add the block's duration to `stage`."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self.add(stage, time.perf_counter() - start)

    def shares(self) -> Dict[str, float]:
        """Each stage's part of all stages' seconds (0 for every stage before any work)."""
        total = sum(self.seconds.values())
        return {stage: (s / total if total else 0.0) for stage, s in self.seconds.items()}


class _Stopped(Exception):
    """A stage gives up waiting: the pipeline was stopped."""


@dataclass
class _Frame:
    t: int
    name: str
    image: np.ndarray  # the original frame (the map is made at its size; overlays show it)
    zero_motion: bool = False


class _Batch:
    """Input buffers ({net input: float32 N×3×H×W}) being filled with frames, and where to return them."""

    def __init__(self, buffers: Dict[str, np.ndarray], returned: queue.Queue):
        self.buffers, self.returned = buffers, returned
        self.frames: List[_Frame] = []

    @property
    def shape(self) -> Tuple[int, ...]:
        return next(iter(self.buffers.values())).shape[1:]

    def inputs(self) -> Dict[str, np.ndarray]:
        return {name: buffer[:len(self.frames)] for name, buffer in self.buffers.items()}

    def release(self) -> None:
        self.returned.put(self.buffers)


class FramePipeline:
    """Maps for the frames of one input (see the module docstring).

    Args:
        net: the net (`dynsal.engines.base.Net`) with output `deconv1`.
        recipe: what the net takes of each frame.
        executor: where chunks of frames are prepared (`dynsal.predict.prepare.FrameWorkers.executor`).
        batch: frames per forward pass.
        post: the post-processing.
        times: where the stages' seconds are added.
        label: the input, for error messages.
        weights: the weights file, for the message about non-finite outputs.
        ahead: chunks handed to the workers ahead of the assembler (≥ 2 per worker keeps them busy).
    """

    def __init__(self, net, recipe: FrameRecipe, executor: Executor, batch: int, post: Postprocessing,
                 times: StageTimes, label: str, weights: str, ahead: int = 4):
        self.net, self.recipe, self.executor, self.batch, self.post = net, recipe, executor, batch, post
        self.times, self.label, self.weights = times, label, weights
        self.chunks: queue.Queue = queue.Queue(max(1, ahead))
        self.batches: queue.Queue = queue.Queue(1)
        self.outputs: queue.Queue = queue.Queue(1)
        self.predictions: queue.Queue = queue.Queue(2 * batch)
        self.stop = threading.Event()
        self.failure: Optional[BaseException] = None
        self._lock = threading.Lock()
        self._buffers: Dict[Tuple[int, ...], queue.Queue] = {}
        self._futures: List[Future] = []

    # ----------------------------------------------------------------------------- the caller's side
    def run(self, frames: Iterable[Tuple[str, np.ndarray]], selected, resize) -> Iterator[Prediction]:
        """The predictions of the selected frames (`t in selected`), in order; frames are (name, BGR
        frame) pairs, resized by `resize` (a `dynsal.data.video.ResizePolicy`) for the net."""
        stages = [(lambda: self._read(frames, selected, resize), self.chunks), (self._assemble, self.batches),
                  (self._run_net, self.outputs), (self._postprocess, self.predictions)]
        threads = [threading.Thread(target=self._stage, args=stage, daemon=True, name=f"dynsal-{i}")
                   for i, stage in enumerate(stages)]
        for thread in threads:
            thread.start()
        try:
            while True:
                try:
                    item = self._get(self.predictions)
                except _Stopped:
                    raise self.failure or DynsalError(f"{self.label}: prediction stopped") from None
                if item is _END:
                    return
                yield item
        finally:
            self.stop.set()
            for future in self._futures:
                future.cancel()
            for thread in threads:
                thread.join()

    # ------------------------------------------------------------------------------------ plumbing
    def _stage(self, body: Callable[[], None], downstream: queue.Queue) -> None:
        try:
            body()
            self._put(downstream, _END)
        except _Stopped:
            pass
        except BaseException as exc:  # raised again in the caller's thread
            with self._lock:
                self.failure = self.failure or exc
            self.stop.set()

    def _put(self, target: queue.Queue, item) -> None:
        while True:
            if self.stop.is_set():
                raise _Stopped
            try:
                target.put(item, timeout=_POLL)
                return
            except queue.Full:
                continue

    def _get(self, source: queue.Queue):
        while True:
            try:
                return source.get(timeout=_POLL)
            except queue.Empty:
                if self.stop.is_set():
                    raise _Stopped from None

    def _result(self, future: Future):
        while True:
            if self.stop.is_set():
                raise _Stopped
            try:
                return future.result(timeout=_POLL)
            except FutureTimeout:
                continue
            except BrokenProcessPool as exc:
                raise DynsalError(f"{self.label}: a frame worker process ended unexpectedly ({exc}); if memory "
                                  "ran out, rerun with fewer --workers") from None

    # -------------------------------------------------------------------------------------- stages
    def _jobs(self, frames, selected, resize) -> Iterator[Tuple[FrameJob, _Frame]]:
        """(job, frame) for each selected frame, decoded and resized (the decode stage)."""
        kept: Dict[int, Tuple[str, np.ndarray]] = {}

        def decoded():
            pairs, end = iter(frames), getattr(selected, "end", None)
            for t in itertools.count():
                start = time.perf_counter()
                pair = next(pairs, None)
                if pair is None:
                    return
                small = resize.apply(pair[1])
                self.times.add("decode", time.perf_counter() - start)
                if t in selected:
                    kept[t] = pair
                yield t, small
                if end is not None and t >= end:  # frame `end` completes the last flow pair; a stream is read no
                    return  # further

        def selected_jobs(jobs) -> Iterator[Tuple[FrameJob, _Frame]]:
            for job in jobs:
                if job[0] in selected:
                    name, image = kept.pop(job[0])
                    yield job, _Frame(job[0], name, image)

        stream = decoded()
        if self.recipe.flow_blob is None:
            yield from selected_jobs((t, small, None, None) for t, small in stream)
            return
        head = list(itertools.islice(stream, 2))
        if len(head) == 1:  # one frame: a still image, no motion
            yield from selected_jobs([(head[0][0], head[0][1], None, None)])
            return
        yield from selected_jobs(flow_inputs(itertools.chain(head, stream), self.label))

    def _read(self, frames, selected, resize) -> None:
        chunk: List[Tuple[FrameJob, _Frame]] = []
        for item in self._jobs(frames, selected, resize):
            chunk.append(item)
            if len(chunk) == CHUNK:
                self._submit(chunk)
                chunk = []
        if chunk:
            self._submit(chunk)

    def _submit(self, chunk: List[Tuple[FrameJob, _Frame]]) -> None:
        future = self.executor.submit(prepare_chunk, self.recipe, [job for job, _ in chunk])
        self._futures = [f for f in self._futures if not f.done()] + [future]
        self._put(self.chunks, (future, [frame for _, frame in chunk]))

    def _take_buffers(self, shape: Tuple[int, ...]) -> _Batch:
        """Free input buffers for a batch of frames of `shape` (3×H×W), made when fewer than BUFFERS exist."""
        if shape not in self._buffers:
            returned: queue.Queue = queue.Queue()
            for _ in range(BUFFERS):
                returned.put({name: self.net.host_buffer((self.batch,) + shape) for name in self.net.inputs})
            self._buffers[shape] = returned
        return _Batch(self._get(self._buffers[shape]), self._buffers[shape])

    def _assemble(self) -> None:
        batch: Optional[_Batch] = None
        while True:
            item = self._get(self.chunks)
            if item is _END:
                break
            future, frames = item
            prepared, seconds = self._result(future)
            for stage, value in seconds.items():
                self.times.add(stage, value)
            for (_, arrays, zero_motion), frame in zip(prepared, frames):
                shape = next(iter(arrays.values())).shape
                if batch is not None and batch.shape != shape:
                    self._put(self.batches, batch)
                    batch = None
                batch = batch or self._take_buffers(shape)
                with self.times.timing("preprocess"):
                    for name, array in arrays.items():
                        preprocess_input(array, out=batch.buffers[name][len(batch.frames)])
                frame.zero_motion = zero_motion
                batch.frames.append(frame)
                if len(batch.frames) == self.batch:
                    self._put(self.batches, batch)
                    batch = None
        if batch is not None:
            self._put(self.batches, batch)

    def _run_net(self) -> None:
        pending = None
        while True:
            batch = self._get(self.batches)
            if batch is _END:
                break
            with self.times.timing("net"):
                started = self.net.start_forward(**batch.inputs())
            if pending is not None:
                self._fetch(*pending)
            pending = batch, started
        if pending is not None:
            self._fetch(*pending)

    def _fetch(self, batch: _Batch, started) -> None:
        with self.times.timing("net"):
            maps = started.result()["deconv1"]
        batch.release()
        self._put(self.outputs, (batch.frames, maps))

    def _postprocess(self) -> None:
        while True:
            item = self._get(self.outputs)
            if item is _END:
                return
            for frame, raw in zip(*item):
                if not np.isfinite(raw).all():
                    raise DataError(f"frame {frame.name}: the net's output holds {np.count_nonzero(~np.isfinite(raw))} "
                                    f"NaN or infinite values; the weights {self.weights} are broken or diverged (look "
                                    "for non-finite blobs with `dynsal info`); no map was kept for this input")
                with self.times.timing("postprocess"):
                    float_map = self.post.float_map(raw[0], frame.image.shape[:2])
                    saliency = np.clip(np.rint(float_map), 0, 255).astype(np.uint8)
                self._put(self.predictions, Prediction(frame.name, frame.image, saliency, float_map,
                                                       frame.zero_motion))
                self.times.frames += 1
