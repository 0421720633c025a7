"""From the net's raw output to a saliency map, as the authors' inference script does it.

Steps, in order (each can be switched off; `Postprocessing()` is the authors' default):
1. affine: map = raw · 128 + 127 (the inverse of the training target (map − 127) / 128);
2. clip to [0, 255];
3. resize to the frame's size with bicubic interpolation (cv2.INTER_CUBIC);
4. blur: Gaussian, 5×5 kernel, sigma derived from the size (cv2.GaussianBlur(…, (5, 5), 0));
5. clip to [0, 255] again;
6. stretch: scale so the maximum is 255 (an all-zero map stays zero);
7. to uint8 with rounding (what cv2.imwrite does with a float image).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, Dict, Tuple

import cv2
import numpy as np

from dynsal.errors import DynsalError


@dataclass(frozen=True)
class Postprocessing:
    """The post-processing settings (see module docstring); serialisable with `asdict`."""

    scale: float = 128.0
    shift: float = 127.0
    resize: bool = True
    blur_kernel: int = 5  # 0 = no blur; odd
    stretch: bool = True

    def __post_init__(self):
        kernel = self.blur_kernel
        if isinstance(kernel, bool) or not isinstance(kernel, int) or kernel < 0 or (kernel and kernel % 2 == 0):
            raise DynsalError(f"blur_kernel {kernel!r}: the Gaussian blur's kernel must be 0 (no blur) or an odd "
                              "number of pixels")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: Dict[str, Any], source: str = "post-processing settings") -> Postprocessing:
        """The settings a dict names (missing keys keep the authors' values).

        Raises:
            DynsalError: naming `source`, when `values` is not a dict or has an unknown key.
        """
        known = [f.name for f in fields(cls)]
        if not isinstance(values, dict):
            raise DynsalError(f"{source}: `postprocessing` must be an object with keys {', '.join(known)}")
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise DynsalError(f"{source}: unknown post-processing setting(s) {', '.join(unknown)}; known: "
                              f"{', '.join(known)}")
        try:
            return cls(**values)
        except DynsalError as exc:
            raise DynsalError(f"{source}: {exc}") from None

    def float_map(self, raw: np.ndarray, frame_size: Tuple[int, int]) -> np.ndarray:
        """Steps 1-6: H×W float32 in [0, 255] at the frame's (height, width) (or the net's size)."""
        saliency = np.clip(np.asarray(raw, np.float32) * self.scale + self.shift, 0, 255)
        height, width = frame_size
        if self.resize and saliency.shape != (height, width):
            saliency = cv2.resize(saliency, (width, height), interpolation=cv2.INTER_CUBIC)
        if self.blur_kernel:
            saliency = cv2.GaussianBlur(saliency, (self.blur_kernel, self.blur_kernel), 0)
        saliency = np.clip(saliency, 0, 255)
        if self.stretch and saliency.max() > 0:
            saliency = saliency * (255.0 / saliency.max())
        return saliency.astype(np.float32)

    def apply(self, raw: np.ndarray, frame_size: Tuple[int, int]) -> np.ndarray:
        """All steps: the uint8 H×W saliency map written as PNG."""
        return np.clip(np.rint(self.float_map(raw, frame_size)), 0, 255).astype(np.uint8)
