"""A live window (`dynsal predict --show`): each frame's heat-map overlay as soon as it is predicted.

It needs an OpenCV built with a GUI and a display. dynsal's set-up installs headless wheels (no GUI):
`opencv-python-headless`, and `opencv-contrib-python-headless` whose cv2 is put in place over it; the
fix is the same move with contrib's GUI wheel of that version, `pip install --force-reinstall --no-deps
opencv-contrib-python==<version>` (its cv2, with TV-L1/DeepFlow and a Qt GUI, then replaces the headless one).
`q` or Esc in the window stops the input (its outputs are written up to that frame).
"""
from __future__ import annotations

import importlib.metadata
import re

import cv2
import numpy as np

from dynsal.errors import DynsalError
from dynsal.predict.outputs import heat_overlay

STOP_KEYS = (ord("q"), 27)  # q, Esc


def gui_available() -> bool:
    """Whether this OpenCV was built with a GUI backend (its build information's `GUI:` line)."""
    match = re.search(r"^\s*GUI:\s*(\S+)", cv2.getBuildInformation(), re.MULTILINE)
    return bool(match) and match.group(1).upper() != "NONE"


def gui_install_command() -> str:
    """The pip command that puts OpenCV contrib's GUI build in place of the installed headless cv2, at the
    installed headless wheel's version (its cv2 replaces the headless one; TV-L1 and DeepFlow stay)."""
    for wheel in ("opencv-contrib-python-headless", "opencv-python-headless"):
        try:
            return f"pip install --force-reinstall --no-deps opencv-contrib-python=={importlib.metadata.version(wheel)}"
        except importlib.metadata.PackageNotFoundError:
            continue
    return "pip install opencv-contrib-python"


class LiveWindow:
    """An OpenCV window showing overlays; `show` returns False once the user asked to stop.

    Raises:
        DynsalError: this OpenCV has no GUI (names the wheel to install instead).
    """

    def __init__(self, title: str = "dynsal predict"):
        if not gui_available():
            raise DynsalError(f"--show needs OpenCV with a GUI; this one is headless: {gui_install_command()}")
        self.title = title

    def show(self, frame: np.ndarray, saliency: np.ndarray) -> bool:
        """Draw one frame's overlay (BGR frame, uint8 map); False when q or Esc was pressed."""
        cv2.imshow(self.title, heat_overlay(frame, saliency))
        return (cv2.waitKey(1) & 0xFF) not in STOP_KEYS

    def close(self) -> None:
        cv2.destroyWindow(self.title)
