"""PNG files written atomically (a temporary file renamed)."""
from __future__ import annotations

from pathlib import Path
from typing import Union

import cv2
import numpy as np

from dynsal.errors import DataError
from dynsal.files import write_atomic


def write_png(image: np.ndarray, path: Union[str, Path]) -> None:
    """Write a uint8 H×W (grey) or H×W×3 (BGR) image as PNG, atomically."""
    ok, data = cv2.imencode(".png", np.ascontiguousarray(image))
    if not ok:
        raise DataError(f"{path}: cannot encode an image of shape {np.shape(image)} as PNG")
    write_atomic(path, data.tobytes())
