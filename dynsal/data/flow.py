"""Dense optical flow behind one function, and the settings record that makes it reproducible.

`compute_flow(prev, next, method, **params)` returns the H×W×2 float32 field (u, v) in pixels such
that prev(x, y) ≈ next(x + u, y + v) (OpenCV's convention; u to the right, v downwards).

Methods (the paper does not name its flow algorithm: seed-networks.md, "not stated anywhere"):
- `dis`: OpenCV's DIS (Kroeger et al., ECCV 2016), `preset` ultrafast|fast|medium (default medium),
  plus the optional overrides in `DIS_SETTERS`;
- `farneback`: `cv2.calcOpticalFlowFarneback` (Farnebäck, SCIA 2003) with OpenCV's tutorial values
  pyr_scale 0.5, levels 3, winsize 15, iterations 3, poly_n 5, poly_sigma 1.2;
- `tvl1`: Dual TV-L1 (Zach et al. 2007) from opencv-contrib's `cv2.optflow`, OpenCV's defaults;
- `deepflow`: DeepFlow (Weinzaepfel et al., ICCV 2013) from `cv2.optflow`.
- `raft`: RAFT (Teed & Deng, ECCV 2020), torchvision's model with weights from a local file
  (`dynsal.data.raft`; parameters `weights`, `iterations`, `device`); the only method that sees colour.
The contrib methods exist only where `cv2.optflow` does (opencv-contrib-python-headless), `raft`
where torchvision is installed; `available_methods()` lists what this installation has.

Which flow belongs to frame t (`flow_pair`): the motion from frame t−1 to frame t (what a causal,
online predictor can compute); frame 0 uses the flow from frame 0 to frame 1.
"""
from __future__ import annotations

import importlib.util
import json
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Tuple

import cv2
import numpy as np

from dynsal.data.flow_image import ENCODINGS, encode_flow
from dynsal.errors import DataError

DIS_PRESETS = {"ultrafast": 0, "fast": 1, "medium": 2}
#: optional DIS parameters -> the setter of cv2.DISOpticalFlow
DIS_SETTERS = {
    "finest_scale": "setFinestScale", "patch_size": "setPatchSize", "patch_stride": "setPatchStride",
    "gradient_descent_iterations": "setGradientDescentIterations",
    "variational_refinement_iterations": "setVariationalRefinementIterations",
    "variational_refinement_alpha": "setVariationalRefinementAlpha",
    "variational_refinement_delta": "setVariationalRefinementDelta",
    "variational_refinement_gamma": "setVariationalRefinementGamma",
    "use_mean_normalization": "setUseMeanNormalization", "use_spatial_propagation": "setUseSpatialPropagation",
}
FARNEBACK_DEFAULTS = dict(pyr_scale=0.5, levels=3, winsize=15, iterations=3, poly_n=5, poly_sigma=1.2, flags=0)
TVL1_DEFAULTS = dict(tau=0.25, lambda_=0.15, theta=0.3, nscales=5, warps=5, epsilon=0.01)


def _uint8(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise DataError(f"optical flow needs uint8 frames, got {image.dtype}")
    return image


def _grey(image: np.ndarray) -> np.ndarray:
    image = _uint8(image)
    return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image


def _dis(prev, nxt, preset: str = "medium", **overrides) -> np.ndarray:
    if preset not in DIS_PRESETS:
        raise DataError(f"unknown DIS preset {preset!r}; use {', '.join(DIS_PRESETS)}")
    dis = cv2.DISOpticalFlow_create(DIS_PRESETS[preset])
    for name, value in overrides.items():
        getattr(dis, DIS_SETTERS[name])(value)
    return dis.calc(prev, nxt, None)


def _farneback(prev, nxt, **params) -> np.ndarray:
    merged = {**FARNEBACK_DEFAULTS, **params}
    return cv2.calcOpticalFlowFarneback(prev, nxt, None, merged["pyr_scale"], int(merged["levels"]),
                                        int(merged["winsize"]), int(merged["iterations"]), int(merged["poly_n"]),
                                        merged["poly_sigma"], int(merged["flags"]))


def _tvl1(prev, nxt, **params) -> np.ndarray:
    return cv2.optflow.DualTVL1OpticalFlow_create(**{**TVL1_DEFAULTS, **params}).calc(prev, nxt, None)


def _deepflow(prev, nxt) -> np.ndarray:
    return cv2.optflow.createOptFlow_DeepFlow().calc(prev, nxt, None)


def _raft(prev, nxt, **params) -> np.ndarray:
    from dynsal.data.raft import raft_flow

    return raft_flow(prev, nxt, **params)


#: what a method needs beyond dynsal's dependencies: (is it installed?, how to install it)
REQUIREMENTS = {
    "contrib": (lambda: hasattr(cv2, "optflow"),
                "OpenCV's contrib modules (cv2.optflow): pip install \"dynsal[contrib]\" && pip install "
                "--force-reinstall --no-deps opencv-contrib-python-headless"),
    "torchvision": (lambda: importlib.util.find_spec("torchvision") is not None,
                    "torch and torchvision: pip install 'dynsal[raft]'"),
}


@dataclass(frozen=True)
class _Method:
    function: Callable
    params: Tuple[str, ...]
    needs: Optional[str] = None  # a REQUIREMENTS key
    colour: bool = False  # takes BGR frames (else grey)
    processes: bool = True  # one frame pair per worker process pays (else: one model shared by threads)


METHODS: Dict[str, _Method] = {
    "dis": _Method(_dis, ("preset",) + tuple(DIS_SETTERS)),
    "farneback": _Method(_farneback, tuple(FARNEBACK_DEFAULTS)),
    "tvl1": _Method(_tvl1, tuple(TVL1_DEFAULTS) + ("innnerIterations", "outerIterations", "scaleStep", "gamma",
                                                   "medianFiltering"), needs="contrib"),
    "deepflow": _Method(_deepflow, (), needs="contrib"),
    "raft": _Method(_raft, ("weights", "iterations", "device"), needs="torchvision", colour=True, processes=False),
}


def available_methods() -> List[str]:
    """The flow methods this installation provides."""
    return [name for name, method in METHODS.items() if method.needs is None or REQUIREMENTS[method.needs][0]()]


def _check(method: str, params: Dict[str, Any]) -> _Method:
    if method not in METHODS:
        raise DataError(f"unknown flow method {method!r}; choose one of {', '.join(METHODS)}")
    entry = METHODS[method]
    unknown = sorted(set(params) - set(entry.params))
    if unknown:
        raise DataError(f"unknown parameter(s) {', '.join(unknown)} for flow method {method!r}; known: "
                        f"{', '.join(entry.params) or 'none'}")
    if entry.needs is not None and not REQUIREMENTS[entry.needs][0]():
        raise DataError(f"flow method {method!r} needs {REQUIREMENTS[entry.needs][1]}; available here: "
                        f"{', '.join(available_methods())}")
    return entry


def compute_flow(prev: np.ndarray, next: np.ndarray, method: str = "dis", **params) -> np.ndarray:
    """Dense flow from `prev` to `next`.

    Args:
        prev, next: BGR uint8 H×W×3 (or grey H×W) frames of the same size (grey for all but raft).
        method: one of `METHODS` (see the module docstring for each reference).
        **params: the method's parameters (unknown names are refused).

    Returns:
        H×W×2 float32 (u, v) in pixels.

    Raises:
        DataError: unknown method or parameter, a method whose requirement is missing, size mismatch, or
            frames OpenCV's method refuses (e.g. DIS needs 12 pixels on one side).
    """
    entry = _check(method, params)
    a, b = (_uint8(prev), _uint8(next)) if entry.colour else (_grey(prev), _grey(next))
    if a.shape != b.shape:
        raise DataError(f"flow between frames of different sizes {a.shape} and {b.shape}")
    try:
        flow = entry.function(a, b, **params)
    except cv2.error as exc:
        raise DataError(f"{method} optical flow of {a.shape[1]}×{a.shape[0]} frames failed: {exc.err}; frames this "
                        "small come from a small --resize, choose a larger one") from None
    return np.ascontiguousarray(flow, dtype=np.float32)


def flow_pair(index: int, count: int) -> Tuple[int, int]:
    """The (from, to) frame indices whose flow is frame `index`'s: (t−1, t), and (0, 1) for t = 0."""
    if count < 2:
        raise DataError("optical flow needs at least two frames")
    return (0, 1) if index == 0 else (index - 1, index)


def flow_inputs(frames: Iterable[Tuple[int, np.ndarray]], name: str = "video"
                ) -> Iterator[Tuple[int, np.ndarray, np.ndarray, np.ndarray]]:
    """For a stream of (index, frame) from 0: (t, frame t, first, second) with (first, second) the
    frames of `flow_pair(t)`, for every t in order (t = 0 comes once frame 1 has arrived).

    Raises:
        DataError: the stream holds fewer than two frames (naming `name`).
    """
    window: Dict[int, np.ndarray] = {}
    count = 0
    for index, image in frames:
        count = index + 1
        window[index] = image
        window.pop(index - 2, None)
        for t in ([0] if index == 1 else []) + ([index] if index >= 1 else []):
            a, b = flow_pair(t, 2)
            yield t, window[t], window[a], window[b]
    if count < 2:
        raise DataError(f"{name}: {count} frame(s); optical flow needs at least two")


def mirror_flow(flow: np.ndarray) -> np.ndarray:
    """The flow of the horizontally mirrored frame pair: columns reversed and u negated.

    Mirroring maps x to W−1−x, so a displacement u becomes −u; v is unchanged.
    """
    mirrored = np.ascontiguousarray(flow[:, ::-1]).copy()
    mirrored[..., 0] *= -1
    return mirrored


def mirror_image(image: np.ndarray) -> np.ndarray:
    """A frame or map mirrored horizontally (columns reversed), H×W[×C]."""
    return np.ascontiguousarray(image[:, ::-1])


NORMALISATIONS = ("frame", "fixed")


@dataclass(frozen=True)
class FlowSettings:
    """Everything that determines a flow image, saved with every dataset and flow folder.

    Attributes:
        method: a `METHODS` name.
        params: the method's parameters (JSON values).
        encoding: a `dynsal.data.flow_image.ENCODINGS` name ("middlebury" or "xy").
        normalisation: "frame" (each frame divided by its own largest magnitude, as the Middlebury
            `flowToColor` does) or "fixed" (divided by `max_magnitude` for every frame).
        max_magnitude: pixels mapped to full saturation under "fixed".
    """

    method: str = "dis"
    params: Dict[str, Any] = field(default_factory=dict)
    encoding: str = "middlebury"
    normalisation: str = "frame"
    max_magnitude: float = 20.0

    def __post_init__(self):
        _check(self.method, self.params)
        if self.encoding not in ENCODINGS:
            raise DataError(f"unknown flow encoding {self.encoding!r}; choose one of {', '.join(ENCODINGS)}")
        if self.normalisation not in NORMALISATIONS:
            raise DataError(f"unknown flow normalisation {self.normalisation!r}; use frame or fixed")
        if not self.max_magnitude > 0:
            raise DataError(f"max_magnitude must be positive, got {self.max_magnitude}")

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, values: Dict[str, Any]) -> FlowSettings:
        known = {"method", "params", "encoding", "normalisation", "max_magnitude"}
        unknown = sorted(set(values) - known)
        if unknown:
            raise DataError(f"unknown flow setting(s) {', '.join(unknown)}")
        return cls(**values)

    @classmethod
    def of_model(cls, settings: Dict[str, Any]) -> FlowSettings:
        """A model's flow: `flow` of its settings (`<file>.caffemodel.json`), else the default (DIS, Middlebury)."""
        return cls.from_dict(settings["flow"]) if settings.get("flow") else cls()

    def overridden(self, method: str | None = None, params: Dict[str, Any] | None = None,
                   encoding: str | None = None) -> FlowSettings:
        """These settings with another `method` (its parameters then start empty), `params` set over them and
        another `encoding` (None: keep)."""
        values = self.to_dict()
        if method and method != values["method"]:
            values.update(method=method, params={})
        values["params"].update(params or {})
        values["encoding"] = encoding or values["encoding"]
        return FlowSettings.from_dict(values)

    @classmethod
    def from_json(cls, text: str) -> FlowSettings:
        return cls.from_dict(json.loads(text))

    @classmethod
    def from_file(cls, path) -> FlowSettings:
        """The settings recorded in a JSON file: `dynsal flow`'s flow_settings.json, a model's settings
        JSON (key `flow`), a dataset manifest (`settings.flow`), or the settings themselves.

        Raises:
            DataError: unreadable file, or no flow settings in it (naming the file).
        """
        try:
            record = json.loads(open(path, encoding="utf-8").read())
        except (OSError, ValueError) as exc:
            raise DataError(f"{path}: cannot read flow settings ({exc})") from None
        for candidate in (record.get("flow"), record.get("settings", {}).get("flow"), record):
            if isinstance(candidate, dict) and "method" in candidate:
                return cls.from_dict(candidate)
        raise DataError(f"{path}: holds no flow settings (expected `method` under flow, settings.flow or at the top)")

    def files(self) -> List[str]:
        """Files these settings read (RAFT's weights), whose contents a dataset's manifest hashes."""
        return [str(self.params["weights"])] if self.method == "raft" and self.params.get("weights") else []

    @property
    def in_processes(self) -> bool:
        """Whether pairs are best computed in worker processes, one per core (the OpenCV methods), rather
        than by threads sharing one model (RAFT)."""
        return METHODS[self.method].processes

    def flow(self, prev: np.ndarray, next: np.ndarray) -> np.ndarray:
        """compute_flow with these settings."""
        return compute_flow(prev, next, self.method, **self.params)

    def image(self, flow: np.ndarray) -> np.ndarray:
        """The flow image (BGR uint8 H×W×3) with these settings' encoding and normalisation."""
        return encode_flow(flow, self.encoding, None if self.normalisation == "frame" else self.max_magnitude)
