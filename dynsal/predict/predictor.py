"""`Predictor`: saliency maps for frames, videos and still images with a zoo net or any prototxt.

Per frame t (the same functions as dataset building, so a model sees the inputs it was trained on):
the frame is resized by the resize policy (default fit-within-512 as the authors' script), the flow
image is made from frames (t−1, t) ((0, 1) for t = 0) with the `FlowSettings`, both go through
`dynsal.data.preprocess.net_input`, the net runs on batches, and `Postprocessing` turns `deconv1`
into a map at the frame's original size. A still image, or a video of one frame, gets a zero-motion
flow image (recorded in the settings as `zero_motion_flow`). Decoding, flow and pre-processing of
upcoming frames run in worker threads while the net runs (OpenCV and torch release the GIL).
"""
from __future__ import annotations

import itertools
import json
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Dict, Iterable, Iterator, List, Optional, Tuple

import numpy as np

from dynsal import __version__, zoo
from dynsal.caffe import io
from dynsal.data.flow import FlowSettings, flow_inputs
from dynsal.data.preprocess import net_input
from dynsal.data.video import ResizePolicy, frame_files, read_frames, read_image
from dynsal.engines import load_net
from dynsal.errors import DynsalError
from dynsal.predict.inputs import PredictInput
from dynsal.predict.outputs import VideoOutputs
from dynsal.predict.postprocess import Postprocessing
from dynsal.weights.registry import load_registry, local_path

DEFAULT_RESIZE = "fit:512"
MODEL_SETTINGS_SUFFIX = ".json"  # <weights>.caffemodel.json: the preprocessing a model was trained with


@dataclass
class Prediction:
    """One frame's result: its name, the original BGR frame, the uint8 map and the float map (0-255)."""

    name: str
    frame: np.ndarray
    saliency: np.ndarray
    float_map: np.ndarray
    zero_motion: bool = False  # the temporal stream saw no motion (a still image or a one-frame video)


@dataclass
class OutputOptions:
    png: bool = True
    npz: bool = False
    overlay: bool = True
    side_by_side: bool = False


@dataclass
class FrameRange:
    """Which frames to predict: t in range(start, end, every) (end None = to the last frame)."""

    start: int = 0
    end: Optional[int] = None
    every: int = 1

    def __contains__(self, t: int) -> bool:
        return t >= self.start and (self.end is None or t < self.end) and (t - self.start) % self.every == 0


def model_settings(weights: Optional[Path]) -> Dict:
    """The JSON beside a caffemodel (`<file>.json`: resize, flow, postprocessing), or {}."""
    if weights is None:
        return {}
    path = Path(str(weights) + MODEL_SETTINGS_SUFFIX)
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text())
    except ValueError as exc:
        raise DynsalError(f"{path}: not valid JSON ({exc})") from None


def resolve_weights(net: Optional[str], weights: Optional[str]) -> Path:
    """The caffemodel to use: the given file, or the registered weights of a zoo net when downloaded.

    Raises:
        DynsalError: one line saying where to put the file or how to fetch it.
    """
    if weights:
        path = Path(weights)
        if not path.is_file():
            raise DynsalError(f"{path}: weights file not found")
        return path
    registry = load_registry()
    entries = [e for e in registry.values() if e.net == net]
    if not entries:
        published = ", ".join(sorted({e.net for e in registry.values()}))
        raise DynsalError(f"no published weights for {net!r} (only for {published}); pass --weights FILE.caffemodel")
    path = local_path(entries[0])
    if not path.is_file():
        raise DynsalError(f"weights for {net} not found at {path}: run `dynsal weights fetch {entries[0].name}` "
                          f"or download {entries[0].url} and put it there")
    return path


class Predictor:
    """Saliency prediction with one net.

    Args:
        net: a zoo net name (ssnet, tsnet, stsmax, stsconv, early, late), or None with `prototxt`.
        prototxt: any deploy prototxt (inputs `data1` [+ `data1_b`], output `deconv1`).
        weights: caffemodel path, or an `.onnx` file of `dynsal export` (engine onnx); default: the
            registered weights of `net` in $DYNSAL_MODELS.
        engine, device, precision: as `dynsal.engines.load_net`.
        resize: resize policy text (`fit:512`, `fixed:240x320`, `native`); default from the model's
            settings JSON, else fit:512.
        flow: FlowSettings (default from the model's settings JSON, else DIS + Middlebury).
        post: Postprocessing (default: the authors').
        batch: frames per forward pass.
        workers: threads preparing frames (decode, flow, pre-processing).
    """

    def __init__(self, net: Optional[str] = "stsconv", prototxt: Optional[str] = None, weights: Optional[str] = None,
                 engine: str = "auto", device: str = "cpu", precision: str = "fp32", resize: Optional[str] = None,
                 flow: Optional[FlowSettings] = None, post: Optional[Postprocessing] = None, batch: int = 1,
                 workers: int = 2):
        if (net is None) == (prototxt is None):
            raise DynsalError("give a zoo net (--net) or a --prototxt, not both")
        self.weights_path = resolve_weights(net, weights)
        saved = model_settings(self.weights_path)
        self.net_name, self.prototxt = net, prototxt
        self.net_param = zoo.deploy(net) if net else io.read_net(prototxt)
        self.net = load_net(self.net_param, self.weights_path, engine=engine, device=device, precision=precision)
        if "deconv1" not in self.net.outputs:
            raise DynsalError(f"the net's outputs are {self.net.outputs}; dynsal predict reads `deconv1`")
        self.two_stream = "data1_b" in self.net.inputs
        self.temporal_only = net == "tsnet"
        self.resize = ResizePolicy.parse(resize or saved.get("resize", DEFAULT_RESIZE))
        self.flow = flow or (FlowSettings.from_dict(saved["flow"]) if "flow" in saved else FlowSettings())
        self.post = post or Postprocessing(**saved.get("postprocessing", {}))
        self.batch, self.workers = max(1, batch), max(1, workers)
        self.engine, self.device, self.precision = engine, device, precision

    @property
    def uses_flow(self) -> bool:
        return self.two_stream or self.temporal_only

    def settings(self) -> Dict:
        """Everything that determined the maps (saved as settings.json beside every output)."""
        return {"dynsal": __version__, "net": self.net_name, "prototxt": self.prototxt,
                "weights": str(self.weights_path), "engine": self.engine, "device": self.device,
                "precision": self.precision, "resize": str(self.resize),
                "flow": self.flow.to_dict() if self.uses_flow else None, "postprocessing": self.post.to_dict(),
                "inputs": list(self.net.inputs), "batch": self.batch}

    # ------------------------------------------------------------------------------------ frames
    def _prepare(self, frame: np.ndarray, first: Optional[np.ndarray], second: Optional[np.ndarray]
                 ) -> Tuple[Dict[str, np.ndarray], bool]:
        """(net inputs, zero motion?) of one frame; `first` None: no motion (a still image)."""
        small = self.resize.apply(frame)
        feed = {}
        if self.uses_flow:
            if first is None:  # a still image: no motion
                flow_image = self.flow.image(np.zeros(small.shape[:2] + (2,), np.float32))
            else:
                flow_image = self.flow.image(self.flow.flow(self.resize.apply(first), self.resize.apply(second)))
            feed["data1" if self.temporal_only else "data1_b"] = net_input(flow_image)
        if not self.temporal_only:
            feed["data1"] = net_input(small)
        return feed, self.uses_flow and first is None

    def _run_batch(self, items: List[Tuple[str, np.ndarray, Tuple[Dict, bool]]]) -> List[Prediction]:
        inputs = {name: np.stack([feed[name] for _, _, (feed, _) in items]) for name in self.net.inputs}
        raw = self.net.forward(**inputs)["deconv1"]
        out = []
        for (name, frame, (_, zero_motion)), map_ in zip(items, raw):
            float_map = self.post.float_map(map_[0], frame.shape[:2])
            saliency = np.clip(np.rint(float_map), 0, 255).astype(np.uint8)
            out.append(Prediction(name, frame, saliency, float_map, zero_motion))
        return out

    def _batched(self, prepared: Iterable[Tuple[str, np.ndarray, Dict]]) -> Iterator[Prediction]:
        pending: List = []
        for item in prepared:
            if pending and item[2][0]["data1"].shape != pending[0][2][0]["data1"].shape:
                yield from self._run_batch(pending)
                pending = []
            pending.append(item)
            if len(pending) == self.batch:
                yield from self._run_batch(pending)
                pending = []
        if pending:
            yield from self._run_batch(pending)

    def predict_frames(self, frames: Iterable[Tuple[str, np.ndarray]], selected: Optional[FrameRange] = None,
                       label: str = "video") -> Iterator[Prediction]:
        """Maps for a sequence of (name, BGR frame) of one video, in order, for the selected frames."""
        selected = selected or FrameRange()
        names: Dict[int, str] = {}

        def indexed():
            for t, (name, image) in enumerate(frames):
                names[t] = name
                yield t, image

        def with_flow_frames():
            """(t, frame, first, second) of flow_inputs; a one-frame video as a still image (no motion)."""
            stream = indexed()
            head = list(itertools.islice(stream, 2))
            if len(head) == 1:
                yield head[0][0], head[0][1], None, None
                return
            yield from flow_inputs(itertools.chain(head, stream), label)

        def jobs(pool):
            if self.uses_flow:
                for t, image, first, second in with_flow_frames():
                    if t in selected:
                        yield names.pop(t), image, pool.submit(self._prepare, image, first, second)
            else:
                for t, image in indexed():
                    if t in selected:
                        yield names.pop(t), image, pool.submit(self._prepare, image, None, None)

        def prepared():
            with ThreadPoolExecutor(self.workers) as pool:
                window = deque()
                for name, image, future in jobs(pool):
                    window.append((name, image, future))
                    if len(window) > 2 * self.workers + self.batch:
                        n, i, f = window.popleft()
                        yield n, i, f.result()
                while window:
                    n, i, f = window.popleft()
                    yield n, i, f.result()

        yield from self._batched(prepared())

    def predict_image(self, image: np.ndarray) -> Prediction:
        """The map of one still image (zero motion for the temporal stream)."""
        return self._run_batch([("image", image, self._prepare(image, None, None))])[0]

    # ------------------------------------------------------------------------------------ inputs
    def frames_of(self, item: PredictInput) -> Tuple[Iterator[Tuple[str, np.ndarray]], float]:
        """(name, frame) pairs of an input and its frame rate; names match the input's frames."""
        if item.kind == "frames":
            stems = [p.stem for p in frame_files(item.path)]
            return ((stems[f.index], f.image) for f in read_frames(item.path)), 25.0
        import cv2

        capture = cv2.VideoCapture(str(item.path))
        fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
        capture.release()
        return ((f"{f.index:06d}", f.image) for f in read_frames(item.path)), fps

    def predict_input(self, item: PredictInput, out_dir: Path, outputs: Optional[OutputOptions] = None,
                      selected: Optional[FrameRange] = None) -> Tuple[Path, int]:
        """Predict one input into `out_dir/<name>/` (atomically: see `dynsal.predict.outputs`)."""
        outputs, selected = outputs or OutputOptions(), selected or FrameRange()
        if item.kind == "image":
            frames, fps, still = iter([(item.name, read_image(item.path))]), 1.0, True
        else:
            (frames, fps), still = self.frames_of(item), False
        writer = VideoOutputs(out_dir, item.name, fps, outputs.png, outputs.npz, outputs.overlay and not still,
                              outputs.side_by_side and not still)
        count = 0
        try:
            predictions = ([self.predict_image(next(frames)[1])] if still
                           else self.predict_frames(frames, selected, str(item.path)))
            zero_motion = False
            for prediction in predictions:
                zero_motion = zero_motion or prediction.zero_motion
                if still:
                    prediction = replace(prediction, name=item.name)
                writer.add(prediction.name, prediction.frame, prediction.saliency, prediction.float_map)
                count += 1
            if count == 0:
                raise DynsalError(f"{item.path}: no frame selected (check --start/--end/--every)")
        except BaseException:
            writer.abort()
            raise
        settings = dict(self.settings(), input=str(item.path), frames=count, zero_motion_flow=zero_motion,
                        frame_range={"start": selected.start, "end": selected.end, "every": selected.every})
        return writer.finish(settings), count
