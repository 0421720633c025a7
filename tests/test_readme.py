"""The README's tour, extracted from README.md and run as written on generated data (with weights of
the published STSConvNet's structure made here, so nothing is downloaded)."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np

from tests.predict.helpers import FRAME_SIZE, make_inputs, zoo_weights

REPO = Path(__file__).resolve().parents[1]


def readme_block(heading: str) -> list:
    """The command lines of the first code block after a README heading (comments dropped)."""
    text = (REPO / "README.md").read_text()
    section = text[text.index(heading):]
    block = re.search(r"```\n(.*?)```", section, re.S).group(1)
    lines = [line.split("  #")[0].rstrip() for line in block.splitlines()]
    return [line for line in lines if line and not line.lstrip().startswith("#")]


def write_annotation(root: Path, video: str, frames: int) -> None:
    """DHF1K-style ground truth <video>/{maps,fixation}/<frame>.png, gaze near the frame's centre."""
    height, width = FRAME_SIZE
    for kind in ("maps", "fixation"):
        (root / video / kind).mkdir(parents=True)
    for t in range(frames):
        fixation = np.zeros(FRAME_SIZE, np.uint8)
        fixation[height // 2 + (t % 3) - 1, width // 2 + t] = 255
        density = cv2.GaussianBlur(fixation.astype(np.float32), (0, 0), 4)
        cv2.imwrite(str(root / video / "fixation" / f"{t:06d}.png"), fixation)
        cv2.imwrite(str(root / video / "maps" / f"{t:06d}.png"), (255 * density / density.max()).astype(np.uint8))


def test_tour_runs_as_written(tmp_path):
    commands = readme_block("## A 5-minute tour")
    assert commands[0].startswith("dynsal weights fetch") and len(commands) == 4
    home = tmp_path / "home"
    models = home / ".cache" / "dynsal" / "models"
    models.mkdir(parents=True)
    zoo_weights("stsconv", models).rename(models / "stsconvnet.caffemodel")
    make_inputs(tmp_path, frames=5)
    write_annotation(tmp_path / "ground_truth", "clip", 5)
    shutil.copytree(REPO / "prototxt", tmp_path / "prototxt")
    script = "\n".join(["set -euo pipefail", f'dynsal() {{ "{sys.executable}" -m dynsal "$@"; }}', *commands])
    env = {k: v for k, v in os.environ.items() if k != "DYNSAL_MODELS"}
    env.update(HOME=str(home), PYTHONPATH=os.pathsep.join(sys.path))
    result = subprocess.run(["bash", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert len(list((tmp_path / "saliency" / "clip").glob("*.png"))) == 5
    assert (tmp_path / "saliency" / "clip_overlay.mp4").is_file()
    assert (tmp_path / "saliency" / "clip" / "settings.json").is_file()
    assert "NSS" in (tmp_path / "scores.md").read_text()
    assert "fits" in result.stdout


def test_ci_runs_the_readme_setup():
    """.ci/run installs with the README's first command (plus pip options) and runs exactly its test command;
    .ci/system_python.sh reads both from the README and runs them with the system's externally managed Python."""
    install, test = readme_block("## Set-up")
    ci = (REPO / ".ci" / "run").read_text().splitlines()
    assert test in ci
    assert any(line.startswith(install + " ") or line == install for line in ci)
    assert "bash .ci/system_python.sh" in ci
    assert install == "bash scripts/install_dev.sh" and test.startswith(".venv/bin/python ")
