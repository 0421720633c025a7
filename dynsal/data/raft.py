"""RAFT (Teed & Deng, ECCV 2020) optical flow through torchvision, with weights from a local file.

`raft_flow(prev, nxt, weights=PATH)` runs torchvision's `raft_large` or `raft_small` (picked from
the state dict's keys) with the weights the user gives: torchvision's published files
(`raft_large_C_T_SKHT_V2-ff5fadd5.pth`, `raft_small_C_T_V2-01064c6d.pth`, ... from
download.pytorch.org/models) or any `torch.save(model.state_dict())` of those models. dynsal never
downloads them. The original princeton-vl checkpoints (`raft-things.pth`) use other key names and
are refused with a message.

Inputs are prepared as torchvision's `OpticalFlow` preset does (`Raft_*_Weights.*.transforms()`):
BGR → RGB, uint8 → float /255, then (x − 0.5)/0.5 into [−1, 1]. RAFT needs sides divisible by 8:
frames are padded by replicating their border, centred (RAFT's own `InputPadder`, Sintel mode),
and the flow is cropped back. Its correlation pyramid needs sides of at least 128 pixels (smaller
frames are refused with a message). The flow is the last of `iterations` refinement steps (default 12,
torchvision's), (u, v) in pixels from `prev` to `nxt`, u to the right and v downwards: OpenCV's
convention, the same as the other methods. `device`: `auto` (CUDA when available), `cpu`, `cuda`,
`cuda:N`. Models are cached per (file, device) in each process; calls on one model are serialised
(torchvision's correlation block keeps per-call state on the module, so threads must not share a
call).

Needs torch and torchvision of matching builds (`pip install "dynsal[raft]"`); `import dynsal` never
imports them.
"""
from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any, Dict, Tuple

import numpy as np

from dynsal.errors import DataError

DEFAULT_ITERATIONS = 12
_MODELS: Dict[Tuple[str, int, str], Any] = {}
_LOADING = threading.Lock()


def _import():
    try:
        import torch
        from torchvision.models import optical_flow
    except (ImportError, RuntimeError) as exc:  # RuntimeError: a torchvision built for another torch
        raise DataError(f"flow method 'raft' needs torch and torchvision built for each other ({exc}); "
                        "pip install 'dynsal[raft]'") from None
    return torch, optical_flow


def _device(torch, name: str):
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise DataError(f"flow method 'raft': unknown device {name!r}; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise DataError("flow method 'raft': device cuda asked for but torch sees no CUDA GPU; use --param device=cpu")
    return device


def load_model(weights: str, device: str = "auto"):
    """(model, lock): torchvision's raft_large or raft_small with the state dict in `weights`, in eval
    mode on `device`, and the lock its calls take.

    Raises:
        DataError: no such file, or a file that is not a state dict of either model.
    """
    torch, optical_flow = _import()
    path = Path(weights).expanduser()
    if not path.is_file():
        raise DataError(f"{path}: no such RAFT weights file; give torchvision's raft_large_*.pth or "
                        "raft_small_*.pth with --param weights=PATH")
    target = _device(torch, device)
    key = (str(path.resolve()), os.stat(path).st_mtime_ns, str(target))
    with _LOADING:
        if key not in _MODELS:
            try:
                state = torch.load(path, map_location="cpu", weights_only=True)
            except Exception as exc:  # pickle, zip and tensor errors all mean "not a weights file"
                first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
                raise DataError(f"{path}: not a PyTorch weights file ({type(exc).__name__}: {first_line})") from None
            _MODELS[key] = (_model_for(state, optical_flow, path).to(target).eval(), threading.Lock())
        return _MODELS[key]


def _model_for(state, optical_flow, path: Path):
    """The RAFT variant whose parameter names and shapes are exactly those of `state`."""
    if isinstance(state, dict):
        for build in (optical_flow.raft_large, optical_flow.raft_small):
            model = build(weights=None)
            try:
                model.load_state_dict(state, strict=True)
                return model
            except (RuntimeError, TypeError, AttributeError):
                continue
    names = list(state)[:3] if isinstance(state, dict) else [type(state).__name__]
    raise DataError(f"{path}: not a state dict of torchvision's raft_large or raft_small (it starts with "
                    f"{', '.join(map(str, names))}); the original RAFT repository's checkpoints do not fit")


def raft_flow(prev: np.ndarray, nxt: np.ndarray, weights: str = "", iterations: int = DEFAULT_ITERATIONS,
              device: str = "auto") -> np.ndarray:
    """Flow from `prev` to `nxt` (BGR uint8 H×W×3 or grey H×W), H×W×2 float32 (module docstring)."""
    if not weights:
        raise DataError("flow method 'raft' needs its weights file: --param weights=PATH (torchvision's "
                        "raft_large_*.pth or raft_small_*.pth)")
    if int(iterations) < 1:
        raise DataError(f"flow method 'raft': iterations must be ≥ 1, got {iterations}")
    torch, _ = _import()
    model, lock = load_model(weights, device)
    target = next(iter(model.parameters())).device
    height, width = prev.shape[:2]
    smallest = 16 * 2 ** (model.corr_block.num_levels - 1)  # torchvision's limit for the correlation pyramid
    if min(height, width) < smallest:
        raise DataError(f"flow method 'raft' needs frames of at least {smallest}×{smallest} pixels, got "
                        f"{height}×{width}; resize them larger (e.g. --resize fixed:240x320)")
    pad_h, pad_w = -height % 8, -width % 8
    box = (pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2)  # left, right, top, bottom
    images = [_as_input(torch, image, target, box) for image in (prev, nxt)]
    with lock, torch.inference_mode():
        flow = model(*images, num_flow_updates=int(iterations))[-1][0]
    flow = flow[:, box[2]:box[2] + height, box[0]:box[0] + width]
    return np.ascontiguousarray(flow.permute(1, 2, 0).float().cpu().numpy())


def _as_input(torch, image: np.ndarray, device, box):
    """1×3×H'×W' float in [−1, 1], RGB, padded: torchvision's OpticalFlow preset + RAFT's padder."""
    rgb = np.repeat(image[..., None], 3, axis=2) if image.ndim == 2 else image[..., ::-1]
    tensor = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)[None].to(device)
    tensor = (tensor.to(torch.float32) / 255 - 0.5) / 0.5
    if any(box):
        tensor = torch.nn.functional.pad(tensor, box, mode="replicate")
    return tensor.contiguous()
