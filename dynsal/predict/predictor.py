"""`Predictor`: saliency maps for frames, videos and still images with a zoo net or any prototxt.

Per frame t (the same functions as dataset building, so a model sees the inputs it was trained on):
the frame is resized by the resize policy (default fit-within-512 as the authors' script), the flow
image is made from frames (t−1, t) ((0, 1) for t = 0) with the `FlowSettings`, both go through
`dynsal.data.preprocess` (channel order, mean, scale), the net runs on batches, and `Postprocessing`
turns `deconv1` into a map at the frame's original size. A still image, or a video of one frame, gets
a zero-motion flow image (recorded in the settings as `zero_motion_flow`). The stages run at once
(`dynsal.predict.pipeline`): decoding in a thread, optical flow in worker processes (one per core),
batches assembled while the net runs the previous one, post-processing in a thread, writing in the
caller's; `Predictor.times` adds up each stage's seconds.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Dict, Iterable, Iterator, Optional, Tuple, Union

import numpy as np

from dynsal import __version__, zoo
from dynsal.caffe import io
from dynsal.data.flow import FlowSettings
from dynsal.data.identity import IDENTITY_KEY, input_identity, unchanged_since
from dynsal.data.video import ResizePolicy, frame_files, open_stream, read_frames, read_image, video_info
from dynsal.engines import is_onnx_file, load_net
from dynsal.errors import DynsalError, WeightsMismatchError
from dynsal.files import sha256_file
from dynsal.paths import absolute
from dynsal.predict.destination import OutputSlot
from dynsal.predict.inputs import PredictInput, expand_inputs
from dynsal.predict.outputs import OutputOptions, VideoOutputs
from dynsal.predict.pipeline import FramePipeline, Prediction, StageTimes
from dynsal.predict.postprocess import Postprocessing
from dynsal.predict.prepare import FrameRecipe, FrameWorkers, available_cores
from dynsal.weights.origin import covering_weights, weights_net
from dynsal.weights.registry import load_registry, local_path

DEFAULT_RESIZE = "fit:512"
MODEL_SETTINGS_SUFFIX = ".json"  # <weights>.caffemodel.json: the preprocessing a model was trained with


@dataclass
class FrameRange:
    """Which frames to predict: t in range(start, end, every) (end None = to the last frame)."""

    start: int = 0
    end: Optional[int] = None
    every: int = 1

    def __contains__(self, t: int) -> bool:
        return t >= self.start and (self.end is None or t < self.end) and (t - self.start) % self.every == 0

    def count(self, frames: Optional[int]) -> Optional[int]:
        """How many of `frames` frames are selected (None when `frames` is unknown)."""
        if frames is None:
            return None
        stop = frames if self.end is None else min(frames, self.end)
        return len(range(self.start, stop, self.every))


@dataclass
class InputResult:
    """What `Predictor.predict_input` did with one input."""

    folder: Path  # the finished output folder
    frames: int  # maps in it
    skipped: bool = False  # it was complete already, for the same request
    warning: Optional[str] = None  # e.g. decoding stopped before the last frame the video file declares
    truncated: bool = False  # decoding stopped before the last frame the video file declares (settings.json says so)


def model_settings(weights: Optional[Path]) -> Dict:
    """The JSON object beside a caffemodel (`<file>.json`: resize, flow, postprocessing), or {}."""
    if weights is None:
        return {}
    path = Path(str(weights) + MODEL_SETTINGS_SUFFIX)
    if not path.is_file():
        return {}
    try:
        settings = json.loads(path.read_text())
    except ValueError as exc:
        raise DynsalError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(settings, dict):
        raise DynsalError(f"{path}: a model's settings must be a JSON object with resize, flow and postprocessing "
                          f"entries, not a {type(settings).__name__}")
    return settings


def model_postprocessing(weights: Optional[Path]) -> Postprocessing:
    """The post-processing the model's settings JSON names (`postprocessing`), else the authors'."""
    return Postprocessing.from_dict(model_settings(weights).get("postprocessing", {}),
                                    f"{weights}{MODEL_SETTINGS_SUFFIX}")


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
        raise DynsalError(f"no published weights for {net!r} (only for {published}); "
                          + _starting_points(net, list(registry.values())))
    path = local_path(entries[0])
    if not path.is_file():
        raise DynsalError(f"weights for {net} not found at {path}: run `dynsal weights fetch {entries[0].name}` "
                          f"or download {entries[0].url} and put it there")
    return path


def _starting_points(net: Optional[str], entries) -> str:
    """What to do without weights for `net`: a published file that holds every layer of `net` run as `net`
    (Caffe copies layers by name), or fine-tuned from it; else pass your own caffemodel."""
    covering = covering_weights(net, entries) if net in zoo.NETS else []
    if not covering:
        return "pass --weights FILE.caffemodel"
    entry, unused = covering[0]
    path, title, other = local_path(entry), zoo.get(net).title, zoo.get(entry.net).title
    return (f"either predict with the published {other} weights as {title}: `--weights {path}` (`dynsal weights "
            f"fetch {entry.name}`; Caffe copies the layers by name and leaves {', '.join(unused)} unused: not a "
            f"trained {title}), or fine-tune {title} from them first: `dynsal train prototxt/{net}_solver.prototxt "
            f"--weights {path}` (recipes/diem.md)")


def _resize_policy(net, weights: Path, given: Optional[str], saved: Optional[str]) -> Tuple[ResizePolicy, str]:
    """The resize policy and a notice for the user ("" for none): `given`, else the model's saved one, else
    fit:512; for a net of fixed input size (an export without --dynamic) that size, where `given` agrees.

    Raises:
        DynsalError: `given` is not the fixed size of the net.
    """
    if net.fixed_size is None:
        return ResizePolicy.parse(given or saved or DEFAULT_RESIZE), ""
    fixed = ResizePolicy("fixed", net.fixed_size)
    height, width = net.fixed_size
    if given is not None and ResizePolicy.parse(given) != fixed:
        raise DynsalError(f"{weights} takes {height}×{width} inputs only (exported without --dynamic), not --resize "
                          f"{given}: leave --resize out (frames are then resized to {height}×{width}) or export "
                          "with --dynamic")
    return fixed, (f"{weights} takes {height}×{width} inputs only (exported without --dynamic): frames are resized "
                   f"to {height}×{width} (export with --dynamic for --resize {saved or DEFAULT_RESIZE})")


class Predictor:
    """Saliency prediction with one net.

    Args:
        net: a zoo net name (ssnet, tsnet, stsmax, stsconv, early, late), or None with `prototxt` (or
            with neither, for an `.onnx` export as the weights).
        prototxt: any deploy prototxt (inputs `data1` [+ `data1_b`], output `deconv1`).
        weights: caffemodel path, or an `.onnx` file of `dynsal export` (engine onnx; with net and
            prototxt None, the net it records); default: the registered weights of `net` in $DYNSAL_MODELS.
        engine, device, precision: as `dynsal.engines.load_net` (these and the options below are given by
            name); device "auto" (the default) is the GPU when the engine sees one, else the CPU; precision
            None: an `.onnx` file's own, else fp32.
            `settings()` records what ran.
        resize: resize policy text (`fit:512`, `fixed:240x320`, `native`); default from the model's
            settings JSON, else fit:512. An export with fixed shapes takes its own size only (`notice`
            says so); another `resize` is refused.
        flow: FlowSettings (default from the model's settings JSON, else DIS + Middlebury).
        post: Postprocessing (default: the authors').
        batch: frames per forward pass.
        workers: processes computing optical flow (threads for RAFT); None = one per core, 0 = none
            (the pipeline's own threads do it).
        compile, cuda_graphs: the torch engine's fast path (`dynsal.engines.load_net`).

    Worker processes are started at the first input that needs flow and kept for the next ones:
    `close()` (or `with Predictor(...) as predictor:`) stops them.
    """

    def __init__(self, net: Optional[str] = "stsconv", prototxt: Optional[str] = None, weights: Optional[str] = None,
                 *, engine: str = "auto", device: str = "auto", precision: Optional[str] = None,
                 resize: Optional[str] = None, flow: Optional[FlowSettings] = None,
                 post: Optional[Postprocessing] = None, batch: int = 1, workers: Optional[int] = None,
                 compile: bool = False, cuda_graphs: bool = False):
        from_export = net is None and prototxt is None and is_onnx_file(weights)
        if (net is not None and prototxt is not None) or (net is None and prototxt is None and not from_export):
            raise DynsalError("give a zoo net (--net) or a --prototxt, not both (or neither with an .onnx export as "
                              "the weights)")
        self.weights_path = resolve_weights(net, weights)
        saved = model_settings(self.weights_path)
        self.prototxt = prototxt
        net_param = zoo.deploy(net) if net else io.read_net(prototxt) if prototxt else None
        model = None if is_onnx_file(self.weights_path) else io.read_net(self.weights_path)
        #: the zoo net the caffemodel was made for (None: no zoo net's, or an ONNX file)
        self.weights_net = None if model is None else weights_net(model, net)
        try:
            self.net = load_net(net_param, self.weights_path if model is None else model, engine=engine,
                                device=device, precision=precision, compile=compile, cuda_graphs=cuda_graphs)
        except WeightsMismatchError as exc:  # the files, not only the nets' names
            target = f"--net {net}" if net else prototxt
            raise WeightsMismatchError(f"{self.weights_path} into {target}: {exc}") from None
        self.net_param = self.net.net_param
        self.net_name = zoo.name_of(self.net_param) if from_export else net
        if "deconv1" not in self.net.outputs:
            raise DynsalError(f"the net's outputs are {self.net.outputs}; dynsal predict reads `deconv1`")
        self.two_stream = "data1_b" in self.net.inputs
        self.temporal_only = self.net_name in zoo.NETS and zoo.get(self.net_name).inputs_read == ("flows",)
        self.resize, self.notice = _resize_policy(self.net, self.weights_path, resize, saved.get("resize"))
        self.flow = flow or FlowSettings.of_model(saved)
        self.post = post or model_postprocessing(self.weights_path)
        self.batch, self.workers = max(1, batch), available_cores() if workers is None else max(0, workers)
        self.precision = self.net.precision
        self.compile, self.cuda_graphs = compile, cuda_graphs
        self.weights_sha256 = sha256_file(self.weights_path)
        self.prototxt_sha256 = sha256_file(prototxt) if prototxt else None
        self.recipe = FrameRecipe(frame_blob=None if self.temporal_only else "data1",
                                  flow_blob=("data1" if self.temporal_only else "data1_b") if self.uses_flow else None,
                                  flow=self.flow if self.uses_flow else None)
        self.frame_workers = FrameWorkers(self.recipe, self.workers)
        self.times = StageTimes()

    @property
    def weights_warning(self) -> Optional[str]:
        """One line naming the caffemodel's layers the net does not use (Caffe ignores them without a word), or
        None when every layer of the file is used."""
        report = self.net.weights_report
        if report is None or not report.unused:
            return None
        made_for = f" (the file is {zoo.get(self.weights_net).title}'s)" if self.weights_net else ""
        target = f"net {self.net_name}" if self.net_name else str(self.prototxt)
        return (f"{self.weights_path}{made_for}: {target} does not use its layer(s) {', '.join(report.unused)}; "
                "they are ignored, as Caffe does")

    def __enter__(self) -> Predictor:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Stop the frame worker processes (a later input starts new ones)."""
        self.frame_workers.close()

    @property
    def uses_flow(self) -> bool:
        return self.two_stream or self.temporal_only

    def settings(self) -> Dict:
        """Everything that determined the maps (saved as settings.json beside every output)."""
        return {"dynsal": __version__, "net": self.net_name, "prototxt": self.prototxt,
                "weights": str(self.weights_path), "weights_net": self.weights_net, "engine": self.net.engine,
                "device": self.net.device_name, "precision": self.net.precision, "resize": str(self.resize),
                "flow": self.flow.to_dict() if self.uses_flow else None, "postprocessing": self.post.to_dict(),
                "inputs": list(self.net.inputs), "batch": self.batch, "compile": self.compile,
                "cuda_graphs": self.cuda_graphs}

    def request(self, item: PredictInput, outputs: OutputOptions, selected: FrameRange) -> Dict:
        """What determines one input's outputs (`dynsal.predict.record.REQUEST_KEYS` and the input's identity,
        `dynsal.data.identity`: this reads the whole input once to hash it): a rerun compares it."""
        source = str(absolute(item.path)) if isinstance(item.path, Path) else str(item.path)  # streams: the URL
        return {"input": source, IDENTITY_KEY: input_identity(item.path, stream=item.kind == "stream"),
                "net": self.net_name, "prototxt_sha256": self.prototxt_sha256, "weights_sha256": self.weights_sha256,
                "precision": self.precision, "resize": str(self.resize),
                "flow": self.flow.to_dict() if self.uses_flow else None, "postprocessing": self.post.to_dict(),
                "frame_range": {"start": selected.start, "end": selected.end, "every": selected.every},
                "outputs": outputs.to_dict()}

    # ------------------------------------------------------------------------------------ frames
    def predict_frames(self, frames: Iterable[Tuple[str, np.ndarray]], selected: Optional[FrameRange] = None,
                       label: str = "video") -> Iterator[Prediction]:
        """Maps for a sequence of (name, BGR frame) of one video, in order, for the selected frames (one
        frame: a still image)."""
        pipeline = FramePipeline(self.net, self.recipe, self.frame_workers.executor, self.batch, self.post,
                                 self.times, label, str(self.weights_path), ahead=2 * max(1, self.workers) + 2)
        return pipeline.run(frames, selected or FrameRange(), self.resize)

    def predict_image(self, image: np.ndarray) -> Prediction:
        """The map of one still image (zero motion for the temporal stream)."""
        return list(self.predict_frames([("image", image)], label="image"))[0]

    # ------------------------------------------------------------------------------------ inputs
    def frames_of(self, item: PredictInput, frame_name: Callable[[int], str] = "{:06d}".format
                  ) -> Tuple[DecodedFrames, float]:
        """The (name, frame) pairs of an input and its frame rate: frame folders' names are their files'
        stems, frame t of a video file or a stream (webcam, URL) is `frame_name(t)`, a still image is one
        frame named after the image."""
        if item.kind == "image":
            return DecodedFrames(iter([(item.name, read_image(item.path))])), 1.0
        if item.kind == "frames":
            stems = [p.stem for p in frame_files(item.path)]
            return DecodedFrames((stems[f.index], f.image) for f in read_frames(item.path)), 25.0
        if item.kind == "stream":
            frames, fps = open_stream(item.path)
            return DecodedFrames((frame_name(f.index), f.image) for f in frames), fps
        fps, declared = video_info(item.path)
        return DecodedFrames(((frame_name(f.index), f.image) for f in read_frames(item.path)), declared), fps

    def _predictions(self, item: PredictInput, frames: DecodedFrames, selected: FrameRange) -> Iterator[Prediction]:
        if item.kind == "image":
            yield replace(self.predict_image(next(iter(frames))[1]), name=item.name)
        else:
            yield from self.predict_frames(frames, selected, str(item.path))

    def predictions_of(self, source: Union[str, int, Path], start: int = 0, end: Optional[int] = None,
                       every: int = 1) -> Iterator[Prediction]:
        """The maps of one video file, frame folder, image, webcam index or stream URL, frame by frame as
        they are predicted (frames `range(start, end, every)`; a stream runs until it ends or `end`).

        Raises:
            DynsalError: the source is missing or unreadable, or names several videos (a folder of them).
        """
        inputs = expand_inputs([str(source)])
        if len(inputs) != 1:
            raise DynsalError(f"{source}: holds {len(inputs)} videos; give one (or use predict_input per video)")
        frames, _ = self.frames_of(inputs[0])
        return self._predictions(inputs[0], frames, FrameRange(start, end, every))

    def predict_input(self, item: PredictInput, out_dir: Path, outputs: Optional[OutputOptions] = None,
                      selected: Optional[FrameRange] = None, overwrite: bool = False,
                      on_frame: Optional[Callable[[Prediction], Optional[bool]]] = None) -> InputResult:
        """Predict one input into `out_dir/<name>/`, safely (see `dynsal.predict.destination`).

        Holding the input's lock: an output finished for the same request, input content included, is kept
        (skipped); one made for another request or from other content (a replaced video, a stream) is refused
        unless `overwrite`; otherwise the maps are made and replace it. An input that changes while it is
        decoded is refused (nothing of it kept).
        `on_frame(prediction)` is called after each frame's outputs are written (progress, a live window);
        when it returns False the input ends there, its outputs complete up to that frame (a stream the
        user stops).

        Raises:
            OutputError: the destination holds what dynsal did not make, another run is writing it, the
                recorded request differs (without `overwrite`), or a write failed.
            DynsalError: the input cannot be read or the net's output is not finite (naming the frame).
        """
        outputs, selected = outputs or OutputOptions(), selected or FrameRange()
        slot = OutputSlot(out_dir, outputs.video_name(item.name), outputs.videos(still=item.kind == "image"))
        with slot.lock():
            slot.check(overwrite)
            slot.recover()
            request = self.request(item, outputs, selected)
            if slot.record() is not None and not overwrite:
                recorded = slot.finished_for(request)
                return InputResult(slot.final, int(recorded.get("frames", 0)), skipped=True,
                                   warning=_shortfall_warning(recorded), truncated="declared_frames" in recorded)
            return self._predict_into(slot, item, outputs, selected, request, on_frame)

    def _predict_into(self, slot: OutputSlot, item: PredictInput, outputs: OutputOptions, selected: FrameRange,
                      request: Dict, on_frame: Optional[Callable[[Prediction], Optional[bool]]]) -> InputResult:
        frames, fps = self.frames_of(item, outputs.frame_name)
        writer = VideoOutputs(slot, fps, outputs)
        count = 0
        try:
            zero_motion = False
            for prediction in self._predictions(item, frames, selected):
                zero_motion = zero_motion or prediction.zero_motion
                with self.times.timing("write"):
                    writer.add(prediction.name, prediction.frame, prediction.saliency, prediction.float_map)
                count += 1
                if on_frame is not None and on_frame(prediction) is False:
                    break
            if count == 0:
                raise DynsalError(f"{item.path}: no frame selected (check --start/--end/--every)")
            unchanged_since(item.path, request[IDENTITY_KEY])
            settings = dict(self.settings(), **request, frames=count, zero_motion_flow=zero_motion,
                            **frames.shortfall())
            folder = writer.finish(settings)
        except BaseException:
            writer.abort()
            raise
        return InputResult(folder, count, warning=_shortfall_warning(settings), truncated="declared_frames" in settings)


class DecodedFrames:
    """(name, frame) pairs of one input, counted as they are decoded.

    Args:
        pairs: the (name, BGR frame) pairs.
        declared: the frame count the video file declares (None: unknown, or a frame folder).
    """

    def __init__(self, pairs: Iterable[Tuple[str, np.ndarray]], declared: Optional[int] = None):
        self._pairs, self.declared, self.decoded, self.ended = pairs, declared, 0, False

    def __iter__(self) -> Iterator[Tuple[str, np.ndarray]]:
        for pair in self._pairs:
            self.decoded += 1
            yield pair
        self.ended = True  # the decoder ran out (rather than the reader stopping at --end)

    def shortfall(self) -> Dict[str, int]:
        """{declared_frames, decoded_frames} when decoding ended before the declared count, else {}."""
        if self.declared is None or not self.ended or self.decoded >= self.declared:
            return {}
        return {"declared_frames": self.declared, "decoded_frames": self.decoded}


def _shortfall_warning(record: Dict) -> Optional[str]:
    """The warning for an output whose video stopped decoding early (its record says so), or None."""
    if "declared_frames" not in record:
        return None
    return (f"{record['input']}: decoding stopped after frame {record['decoded_frames'] - 1} of the "
            f"{record['declared_frames']} frames the file declares (truncated or corrupt); maps were made for the "
            f"{record['decoded_frames']} decoded frames")
