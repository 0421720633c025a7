"""Small, fast inputs for the reliability tests of `dynsal predict` and `dynsal eval`.

A tiny net (one 3×3 convolution named `deconv1`, or a two-stream one that needs optical flow) stands in
for the zoo nets: the safety of outputs does not depend on the net, and it runs in milliseconds.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Dict, Optional, Sequence, Tuple

import cv2
import numpy as np

from dynsal.caffe import io
from dynsal.cli import main
from tests.data.synthetic import panning_video, texture

FRAME_SIZE = (60, 76)
_INPUT = ('layer {{ name: "{0}" type: "Input" top: "{0}" '
          'input_param {{ shape {{ dim: 1 dim: 3 dim: 16 dim: 16 }} }} }}\n')
_CONV = ('layer {{ name: "deconv1" type: "Convolution" bottom: "{0}" top: "deconv1" '
         'convolution_param {{ num_output: 1 kernel_size: 3 pad: 1 }} }}\n')
ONE_STREAM = 'name: "tiny"\n' + _INPUT.format("data1") + _CONV.format("data1")
TWO_STREAM = ('name: "tiny2"\n' + _INPUT.format("data1") + _INPUT.format("data1_b")
              + 'layer { name: "both" type: "Concat" bottom: "data1" bottom: "data1_b" top: "both" }\n'
              + _CONV.format("both"))


def tiny_model(folder: Path, two_stream: bool = False, bias: float = 0.0, seed: int = 0,
               settings: Optional[Dict] = None) -> Tuple[Path, Path]:
    """(prototxt, caffemodel) of a tiny net with seeded weights and the given bias (NaN or inf to break it);
    `settings` is written beside the caffemodel as the model's settings JSON."""
    folder.mkdir(parents=True, exist_ok=True)
    name = f"tiny{'2' if two_stream else ''}_{seed}_{bias}"
    prototxt, weights = folder / f"{name}.prototxt", folder / f"{name}.caffemodel"
    prototxt.write_text(TWO_STREAM if two_stream else ONE_STREAM)
    channels = 6 if two_stream else 3
    kernel = np.random.default_rng(seed).normal(0, 0.02, (1, channels, 3, 3)).astype(np.float32)
    io.write_caffemodel(io.read_net(prototxt), {"deconv1": [kernel, np.array([bias], np.float32)]}, weights)
    if settings is not None:
        Path(f"{weights}.json").write_text(json.dumps(settings))
    return prototxt, weights


def net_args(model: Tuple[Path, Path]) -> list:
    return ["--prototxt", str(model[0]), "--weights", str(model[1]), "--engine", "torch"]


def frame_folder(folder: Path, count: int = 4, suffix: str = ".png", names: Optional[Sequence[str]] = None) -> Path:
    """A folder of `count` frames of a panning texture (`frame_000.png` …, or `names`)."""
    folder.mkdir(parents=True, exist_ok=True)
    big = texture(FRAME_SIZE[0], FRAME_SIZE[1] + 2 * count, seed=1)
    for i, name in enumerate(names or [f"frame_{i:03d}" for i in range(count)]):
        cv2.imwrite(str(folder / f"{name}{suffix}"), big[:, 2 * i:2 * i + FRAME_SIZE[1]])
    return folder


def video(path: Path, count: int = 4, seed: int = 0) -> Path:
    """An MJPG AVI of `count` frames of a panning texture (`seed`: another texture, the same frame count)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return panning_video(path, count, *FRAME_SIZE, seed=seed)


def snapshot(root: Path, skip: Sequence[Path] = ()) -> Dict[str, Tuple]:
    """Every path under `root` (except those under `skip`) → (kind, size, sha256 of its bytes, mtime)."""
    skipped = [Path(p).resolve() for p in skip]
    state = {}
    for path in sorted(Path(root).rglob("*")):
        resolved = path.resolve()
        if any(resolved == s or s in resolved.parents for s in skipped):
            continue
        if path.is_symlink():
            state[str(path)] = ("link", str(path.readlink()))
        elif path.is_dir():
            state[str(path)] = ("dir",)
        else:
            data = path.read_bytes()
            state[str(path)] = ("file", len(data), hashlib.sha256(data).hexdigest(), path.stat().st_mtime_ns)
    return state


def predict(capsys, *args: str) -> Tuple[int, str, str]:
    """(exit status, stdout, stderr) of `dynsal predict ARGS` run in this process."""
    status = main(["predict", *args])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def maps_of(folder: Path) -> Dict[str, np.ndarray]:
    """{file name: uint8 map} of an output folder's PNGs."""
    return {p.name: cv2.imread(str(p), cv2.IMREAD_UNCHANGED) for p in sorted(Path(folder).glob("*.png"))}
