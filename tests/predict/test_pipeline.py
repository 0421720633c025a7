"""The prediction pipeline (dynsal.predict.pipeline): the maps are the per-frame definitions whatever runs
the stages (processes, threads, the calling thread), the net queues the next batch before it fetches the
previous one from buffers it lent, errors and early stops end every stage, and the stage times add up."""
from __future__ import annotations

import threading
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

import numpy as np
import pytest

from dynsal.data.flow import FlowSettings, flow_pair
from dynsal.data.preprocess import net_input
from dynsal.data.video import read_frames
from dynsal.engines.base import PendingOutputs
from dynsal.errors import DataError
from dynsal.predict.inputs import PredictInput
from dynsal.predict.outputs import OutputOptions
from dynsal.predict.pipeline import BUFFERS, STAGES, FramePipeline, StageTimes
from dynsal.predict.predictor import FrameRange, Predictor
from dynsal.predict.prepare import FrameRecipe, FrameWorkers, InlineExecutor
from tests.predict.helpers import make_inputs, zoo_weights

pytest.importorskip("torch", reason="prediction tests run the torch engine")

SELECTED = FrameRange(start=1, every=2)  # frames 1, 3, 5 of 7: flow pairs (0, 1), (2, 3), (4, 5)


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    folder = tmp_path_factory.mktemp("clip")
    video, _ = make_inputs(folder, frames=7)
    return video, zoo_weights("stsconv", folder)


def reference_maps(predictor: Predictor, video) -> dict:
    """Each selected frame's float map, one frame at a time, from the definitions (module docstring of
    dynsal.predict.predictor): resize, flow of flow_pair(t), net_input, the net, the post-processing."""
    frames = [f.image for f in read_frames(video)]
    small = [predictor.resize.apply(f) for f in frames]
    maps = {}
    for t in range(len(frames)):
        if t in SELECTED:
            a, b = flow_pair(t, len(frames))
            feed = {"data1": net_input(small[t]),
                    "data1_b": net_input(predictor.flow.image(predictor.flow.flow(small[a], small[b])))}
            raw = predictor.net.forward(**{name: value[None] for name, value in feed.items()})["deconv1"][0]
            maps[f"{t:06d}"] = predictor.post.float_map(raw[0], frames[t].shape[:2])
    return maps


def pipeline_threads():
    return [thread for thread in threading.enumerate() if thread.name.startswith("dynsal-")]


@pytest.mark.parametrize("workers", [0, 2, "threads"])
def test_the_maps_are_the_per_frame_definitions_whoever_runs_the_stages(clip, workers):
    video, weights = clip
    with Predictor("stsconv", weights=str(weights), engine="torch", resize="native", batch=2,
                   workers=2 if workers == "threads" else workers) as predictor:
        assert isinstance(predictor.frame_workers.executor,
                          {0: InlineExecutor, 2: ProcessPoolExecutor, "threads": ProcessPoolExecutor}[workers])
        executor = ThreadPoolExecutor(2) if workers == "threads" else predictor.frame_workers.executor
        pipeline = FramePipeline(predictor.net, predictor.recipe, executor, 2, predictor.post, StageTimes(),
                                 str(video), str(weights))
        frames = ((f"{f.index:06d}", f.image) for f in read_frames(video))
        got = {p.name: p.float_map for p in pipeline.run(frames, SELECTED, predictor.resize)}
        expected = reference_maps(predictor, video)
    assert list(got) == list(expected) == ["000001", "000003", "000005"]
    for name in expected:
        assert np.abs(got[name] - expected[name]).max() < 1e-3, name  # 0–255 scale; batch 2 vs 1
    assert not pipeline_threads()


class RecordingNet:
    """A net that records when each batch is started and fetched, and the buffers it lends."""

    def __init__(self, net):
        self.net, self.events, self.lent = net, [], []
        self.inputs, self.outputs = net.inputs, net.outputs

    def host_buffer(self, shape):
        self.lent.append(self.net.host_buffer(shape))
        return self.lent[-1]

    def start_forward(self, **inputs):
        index = sum(1 for event in self.events if event[0] == "start")
        assert all(any(np.shares_memory(value, buffer) for buffer in self.lent) for value in inputs.values())
        self.events.append(("start", index))
        outputs = self.net.forward(**inputs)

        def result():
            self.events.append(("result", index))
            return outputs
        return PendingOutputs(result)


def test_the_net_queues_the_next_batch_before_fetching_the_last_from_lent_buffers(clip):
    video, weights = clip
    predictor = Predictor("stsconv", weights=str(weights), engine="torch", resize="native", batch=2, workers=0)
    net = RecordingNet(predictor.net)
    pipeline = FramePipeline(net, predictor.recipe, InlineExecutor(), 2, predictor.post, StageTimes(), str(video),
                             str(weights))
    frames = ((f"{f.index:06d}", f.image) for f in read_frames(video))
    assert len(list(pipeline.run(frames, FrameRange(), predictor.resize))) == 7  # batches of 2, 2, 2, 1
    assert net.events == [("start", 0), ("start", 1), ("result", 0), ("start", 2), ("result", 1), ("start", 3),
                          ("result", 2), ("result", 3)]
    assert len(net.lent) <= BUFFERS * len(net.inputs)


def test_an_error_in_a_worker_process_stops_every_stage(clip, tmp_path):
    video, weights = clip
    with Predictor("stsconv", weights=str(weights), engine="torch", resize="fit:8", workers=2) as predictor:
        with pytest.raises(DataError, match="dis optical flow of 8×6 frames failed"):
            predictor.predict_input(PredictInput("clip", "video", video), tmp_path / "out")
    assert not pipeline_threads() and not any((tmp_path / "out").iterdir())


def test_a_caller_that_stops_early_stops_every_stage(clip):
    video, weights = clip
    predictor = Predictor("stsconv", weights=str(weights), engine="torch", resize="native", workers=0)
    predictions = predictor.predict_frames((f"{f.index:06d}", f.image) for f in read_frames(video))
    assert next(predictions).name == "000000" and pipeline_threads()
    predictions.close()
    assert not pipeline_threads()


def test_stage_times_and_the_worker_pool_kept_across_inputs(clip, tmp_path):
    video, weights = clip
    with Predictor("stsconv", weights=str(weights), engine="torch", resize="native", batch=3, workers=2) as predictor:
        result = predictor.predict_input(PredictInput("clip", "video", video), tmp_path / "a", OutputOptions())
        pool = predictor.frame_workers.executor
        predictor.predict_input(PredictInput("clip", "video", video), tmp_path / "b", OutputOptions())
        assert predictor.frame_workers.executor is pool and isinstance(pool, ProcessPoolExecutor)
    assert predictor.frame_workers._pool is None  # closed
    times = predictor.times
    assert result.frames == 7 and times.frames == 14
    assert all(times.seconds[stage] > 0 for stage in STAGES), times.seconds
    assert sum(times.shares().values()) == pytest.approx(1.0)


def test_frame_workers_choose_where_chunks_run():
    dis = FlowSettings()
    assert isinstance(FrameWorkers(FrameRecipe("data1", None, None), 4).executor, InlineExecutor)  # no flow stream
    assert isinstance(FrameWorkers(FrameRecipe("data1", "data1_b", dis), 0).executor, InlineExecutor)
    workers = FrameWorkers(FrameRecipe("data1", "data1_b", dis), 1)
    assert isinstance(workers.executor, ProcessPoolExecutor) and workers.executor is workers.executor
    workers.close()
    assert workers._pool is None
