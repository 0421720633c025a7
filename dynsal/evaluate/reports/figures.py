"""The pictures of the HTML report, as data: URIs: frame panels (frame, ground truth with fixations, a model's
map, overlay) and the per-metric distributions over videos (matplotlib, the `[plot]` extra)."""
from __future__ import annotations

import base64
import importlib.util
import io
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from dynsal.data import ground_truth as GT
from dynsal.data.video import read_image
from dynsal.errors import EvaluationError
from dynsal.evaluate.pairing import Frame
from dynsal.evaluate.reports.common import arrow
from dynsal.evaluate.result import LABELS
from dynsal.predict.outputs import heat_overlay

#: longest side of a frame panel in pixels (panels are never enlarged)
PANEL_SIZE = 320
JPEG_QUALITY = 85
FIXATION_BGR = (40, 40, 255)  # red dots on grey maps
_GREY_FRAME = 128


def require_matplotlib() -> None:
    """EvaluationError saying how to install matplotlib when it is missing (before any scoring starts)."""
    if importlib.util.find_spec("matplotlib") is None:
        raise EvaluationError('--html draws its plots with matplotlib, which is not installed here: '
                              'pip install "dynsal[plot]"')


def data_uri(image: np.ndarray, kind: str = ".jpg") -> str:
    """A BGR or grey uint8 image as a `data:image/...;base64,` URI (JPEG or PNG)."""
    params = [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY] if kind == ".jpg" else []
    ok, encoded = cv2.imencode(kind, image, params)
    if not ok:
        raise EvaluationError(f"cannot encode a {image.shape} image as {kind}")
    mime = "jpeg" if kind == ".jpg" else "png"
    return f"data:image/{mime};base64," + base64.b64encode(encoded.tobytes()).decode("ascii")


def panel_shape(shape: Tuple[int, int]) -> Tuple[int, int]:
    """(H, W) of a panel for a ground-truth frame of `shape`: the longest side at most PANEL_SIZE."""
    scale = min(1.0, PANEL_SIZE / max(shape))
    return max(1, round(shape[0] * scale)), max(1, round(shape[1] * scale))


def _grey(values: np.ndarray, shape: Tuple[int, int]) -> np.ndarray:
    """A map stretched to 0-255 (a constant map: black) and resized to `shape`, uint8."""
    values = values.astype(np.float64)
    low, high = float(values.min()), float(values.max())
    scaled = np.zeros_like(values) if high == low else (values - low) * (255.0 / (high - low))
    return cv2.resize(scaled.astype(np.uint8), (shape[1], shape[0]), interpolation=cv2.INTER_AREA)


def _with_fixations(grey: np.ndarray, fixations: Optional[np.ndarray]) -> np.ndarray:
    """The grey panel in BGR with each fixated pixel of `fixations` (any size) as a 3×3 red dot."""
    out = cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR)
    if fixations is None:
        return out
    rows, cols = np.nonzero(fixations)
    h, w = grey.shape
    rows = np.minimum(((rows + 0.5) * h / fixations.shape[0]).astype(int), h - 1)
    cols = np.minimum(((cols + 0.5) * w / fixations.shape[1]).astype(int), w - 1)
    for dr in (-1, 0, 1):
        for dc in (-1, 0, 1):
            out[np.clip(rows + dr, 0, h - 1), np.clip(cols + dc, 0, w - 1)] = FIXATION_BGR
    return out


def frame_image_path(ground_truth_dir: Path, frame: Frame) -> Optional[Path]:
    """GT/<video>/images/<frame>.* (Hollywood-2's and UCF-Sports' layout), or None where there is none."""
    return GT.files_by_stem(Path(ground_truth_dir) / frame.video / GT.IMAGES_FOLDER, GT.IMAGE_SUFFIXES).get(
        frame.frame)


class FramePanels:
    """The panels of one frame, read once: `frame`, `truth` (density with fixations), per model `map` (with
    fixations) and `overlay` (the map's heat on the frame); every panel PANEL_SIZE at most."""

    def __init__(self, ground_truth_dir: Path, frame: Frame, models: Sequence[str]):
        density = GT.read_map(frame.density) if frame.density else None
        self.fixations = GT.read_fixations(frame.fixations) if frame.fixations else None
        truth_shape = (density if density is not None else self.fixations).shape
        self.shape = panel_shape(truth_shape)
        image = frame_image_path(ground_truth_dir, frame)
        self.has_image = image is not None
        size = (self.shape[1], self.shape[0])
        self.image = (cv2.resize(read_image(image), size, interpolation=cv2.INTER_AREA) if image is not None
                      else np.full(self.shape + (3,), _GREY_FRAME, np.uint8))
        self.density = density
        self.maps = {name: _grey(GT.read_map(path), self.shape) for name, path in zip(models, frame.predictions)}

    def frame(self) -> str:
        return data_uri(self.image)

    def truth(self) -> str:
        grey = (_grey(self.density, self.shape) if self.density is not None
                else np.zeros(self.shape, np.uint8))
        return data_uri(_with_fixations(grey, self.fixations))

    def map(self, model: str) -> str:
        return data_uri(_with_fixations(self.maps[model], self.fixations))

    def overlay(self, model: str) -> str:
        return data_uri(heat_overlay(self.image, self.maps[model]))


def distribution_plot(per_video: Dict[str, Dict[str, Dict[str, Optional[float]]]], models: Sequence[str],
                      metrics: Sequence[str]) -> str:
    """One panel per metric: each model's per-video means as a box plot with the videos as dots; a PNG URI."""
    import matplotlib  # the [plot] extra: imported only when a report is drawn

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = min(4, len(metrics))
    rows = -(-len(metrics) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(3.2 * columns, 0.35 * len(models) + 1.4 * rows + 0.6),
                                squeeze=False)
    version = tuple(int(part) for part in matplotlib.__version__.split(".")[:2])
    horizontal = {"orientation": "horizontal"} if version >= (3, 10) else {"vert": False}  # `vert` before 3.10
    rng = np.random.default_rng(0)  # the dots' vertical jitter only
    for ax, metric in zip(axes.flat, metrics):
        values: List[List[float]] = [[v[metric] for v in per_video[m].values() if v[metric] is not None]
                                     for m in models]
        ax.boxplot([v or [np.nan] for v in values], widths=0.6, showfliers=False, **horizontal)
        for position, series in enumerate(values, start=1):
            ax.plot(series, position + rng.uniform(-0.15, 0.15, len(series)), ".", color="tab:blue", alpha=0.6,
                    markersize=4)
        ax.set_yticks(range(1, len(models) + 1))
        ax.set_yticklabels(models)
        ax.invert_yaxis()
        ax.set_title(f"{LABELS[metric]} {arrow(metric)}", fontsize=10)
        ax.tick_params(labelsize=8)
    for ax in list(axes.flat)[len(metrics):]:
        ax.axis("off")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=80)
    plt.close(figure)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
