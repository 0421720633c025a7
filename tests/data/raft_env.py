"""Checks of `dynsal.data.raft` run inside the torchvision venv by tests/data/test_raft.py.

`python raft_env.py CHECK FOLDER` prints one JSON object of measurements; the test asserts on it.
Weights are random (seeded): the published ones cannot be downloaded here, so these checks compare
dynsal against torchvision's own documented use of the same model, not against true motion.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import cv2
import numpy as np
import torch
from torchvision.models.optical_flow import Raft_Large_Weights, Raft_Small_Weights, raft_large, raft_small

from dynsal.data.flow import compute_flow
from dynsal.errors import DataError

MODELS = {"small": (raft_small, Raft_Small_Weights.C_T_V2), "large": (raft_large, Raft_Large_Weights.C_T_SKHT_V2)}


def texture(height: int, width: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (height // 4 + 1, width // 4 + 1, 3), dtype=np.uint8)
    return cv2.GaussianBlur(cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC), (0, 0), 1.0)


def save_weights(folder: Path) -> dict:
    files = {}
    for name, (build, _) in MODELS.items():
        torch.manual_seed(0)
        files[name] = folder / f"raft_{name}_random.pth"
        torch.save(build().state_dict(), files[name])
    return files


def reference(name: str, weights: Path, prev: np.ndarray, nxt: np.ndarray, iterations: int) -> np.ndarray:
    """torchvision's documented use: RGB uint8 tensors -> the weights' transforms() -> model -> last flow."""
    build, published = MODELS[name]
    model = build()
    model.load_state_dict(torch.load(weights, weights_only=True))
    model.eval()
    tensors = [torch.from_numpy(np.ascontiguousarray(image[..., ::-1])).permute(2, 0, 1)[None] for image in (prev, nxt)]
    with torch.inference_mode():
        return model(*published.transforms()(*tensors), num_flow_updates=iterations)[-1][0].permute(1, 2, 0).numpy()


def matches_torchvision(folder: Path) -> dict:
    """max |dynsal − torchvision| per model on 128×136 frames, and on 130×141 frames padded by hand."""
    files, out = save_weights(folder), {}
    for name, weights in files.items():
        prev, nxt = texture(128, 136, 1), texture(128, 136, 2)
        ours = compute_flow(prev, nxt, "raft", weights=str(weights), iterations=3, device="cpu")
        out[f"{name} 128x136"] = float(np.abs(ours - reference(name, weights, prev, nxt, 3)).max())
        out[f"{name} shape"] = list(ours.shape) + [str(ours.dtype)]
        prev, nxt = texture(130, 141, 3), texture(130, 141, 4)  # padded to 136×144: 3+3 rows, 1+2 columns
        ours = compute_flow(prev, nxt, "raft", weights=str(weights), iterations=3, device="cpu")
        padded = [cv2.copyMakeBorder(image, 3, 3, 1, 2, cv2.BORDER_REPLICATE) for image in (prev, nxt)]
        expected = reference(name, weights, *padded, 3)[3:133, 1:142]
        out[f"{name} 130x141"] = float(np.abs(ours - expected).max())
        grey = compute_flow(cv2.cvtColor(prev, cv2.COLOR_BGR2GRAY), cv2.cvtColor(nxt, cv2.COLOR_BGR2GRAY), "raft",
                            weights=str(weights), iterations=2, device="cpu")
        out[f"{name} grey shape"] = list(grey.shape)
    return out


def errors(folder: Path) -> dict:
    """The one-line messages for files that are not RAFT weights, and for bad parameters."""
    frame = texture(128, 128, 0)
    not_raft, garbage = folder / "conv.pth", folder / "garbage.pth"
    torch.save(torch.nn.Conv2d(3, 4, 3).state_dict(), not_raft)
    garbage.write_bytes(b"not a weights file")
    cases = {"missing": dict(weights=str(folder / "none.pth")), "not raft": dict(weights=str(not_raft)),
             "garbage": dict(weights=str(garbage)), "no weights": {},
             "iterations": dict(weights=str(not_raft), iterations=0),
             "device": dict(weights=str(not_raft), device="tpu")}
    small = folder / "small.pth"
    torch.save(raft_small().state_dict(), small)
    out = {}
    try:
        compute_flow(frame[:100], frame[:100], "raft", weights=str(small), device="cpu")
        out["too small"] = "no error"
    except DataError as exc:
        out["too small"] = str(exc)
    for case, params in cases.items():
        try:
            compute_flow(frame, frame, "raft", **params)
            out[case] = "no error"
        except DataError as exc:
            out[case] = str(exc)
    return out


if __name__ == "__main__":
    check, folder = sys.argv[1], Path(sys.argv[2])
    print(json.dumps({"matches_torchvision": matches_torchvision, "errors": errors}[check](folder)))
