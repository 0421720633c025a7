"""Small synthetic inputs for the data tests: textures moved by known motions, videos, DIEM gaze files."""
from __future__ import annotations

from pathlib import Path
from typing import List, Sequence, Tuple

import cv2
import numpy as np


def texture(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A smooth random BGR uint8 texture (blurred noise: good gradients at every scale flow uses)."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (height // 4 + 1, width // 4 + 1, 3), dtype=np.uint8)
    image = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
    return cv2.GaussianBlur(image, (0, 0), 1.0)


def moved_pair(height: int, width: int, matrix: np.ndarray, seed: int = 0) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(prev, next, true flow) where next(M·x) = prev(x) for the 2×3 affine `matrix`; flow = M·x − x."""
    prev = texture(height, width, seed)
    nxt = cv2.warpAffine(prev, matrix, (width, height), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float64)
    u = matrix[0, 0] * xs + matrix[0, 1] * ys + matrix[0, 2] - xs
    v = matrix[1, 0] * xs + matrix[1, 1] * ys + matrix[1, 2] - ys
    return prev, nxt, np.stack([u, v], axis=2).astype(np.float32)


def translation(dx: float, dy: float) -> np.ndarray:
    return np.array([[1, 0, dx], [0, 1, dy]], dtype=np.float64)


def rotation(height: int, width: int, degrees: float) -> np.ndarray:
    return cv2.getRotationMatrix2D(((width - 1) / 2, (height - 1) / 2), degrees, 1.0)


def write_video(path: Path, frames: Sequence[np.ndarray], fps: float = 25.0) -> Path:
    """An MJPG .avi of BGR frames."""
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (width, height))
    assert writer.isOpened()
    for frame in frames:
        writer.write(np.ascontiguousarray(frame))
    writer.release()
    return path


def panning_frames(count: int, height: int = 96, width: int = 128, step: int = 2, seed: int = 0) -> List[np.ndarray]:
    """Frames of a texture panning left by `step` pixels per frame (content moves by −step in x)."""
    big = texture(height + 8, width + step * count + 8, seed)
    return [big[4:4 + height, 4 + step * i:4 + step * i + width] for i in range(count)]


def panning_video(path: Path, count: int, height: int = 96, width: int = 128, step: int = 2, seed: int = 0) -> Path:
    """A video of `panning_frames`."""
    return write_video(path, panning_frames(count, height, width, step, seed))


def diem_row(frame: int, left: Tuple[float, float, int], right: Tuple[float, float, int]) -> str:
    """One event_data row: frame, left x y dil event, right x y dil event."""
    return (f"{frame}\t{left[0]}\t{left[1]}\t1000\t{left[2]}\t{right[0]}\t{right[1]}\t1000\t{right[2]}")


def write_gaze(folder: Path, video: str, participant: str, rows: Sequence[str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{participant}.asc_{video}.txt"
    path.write_text("\n".join(rows) + "\n")
    return path


def steady_gaze(folder: Path, video: str, frames: int, size: Tuple[int, int], participants: int = 3,
                screen: Tuple[int, int] = (1280, 960)) -> None:
    """Fixations of `participants` viewers on every frame, at distinct places inside a centred video."""
    ox, oy = (screen[0] - size[0]) / 2, (screen[1] - size[1]) / 2
    for p in range(participants):
        rows = []
        for f in range(1, frames + 1):
            x, y = ox + size[0] * (0.2 + 0.2 * p) + f, oy + size[1] * (0.3 + 0.15 * p)
            rows.append(diem_row(f, (x, y, 1), (x + 2, y, 1)))
        write_gaze(folder, video, f"diem{p}s", rows)
