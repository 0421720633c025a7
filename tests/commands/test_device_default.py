"""`dynsal predict` runs on $DYNSAL_DEVICE unless --device says otherwise (the GPU image sets cuda)."""
from __future__ import annotations

import argparse

from dynsal.commands import predict


def _parse(argv):
    parser = argparse.ArgumentParser()
    predict.add_arguments(parser)
    return parser.parse_args(argv)


def test_predict_device_follows_dynsal_device(monkeypatch):
    monkeypatch.delenv("DYNSAL_DEVICE", raising=False)
    assert _parse(["clip.mp4"]).device == "cpu"
    monkeypatch.setenv("DYNSAL_DEVICE", "cuda")
    assert _parse(["clip.mp4"]).device == "cuda"
    assert _parse(["clip.mp4", "--device", "cpu"]).device == "cpu"
