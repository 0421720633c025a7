"""Optical flow methods on known motions, settings records, mirroring, .flo files."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from dynsal.data.flo import MAGIC, read_flo, write_flo
from dynsal.data.flow import (
    METHODS,
    FlowSettings,
    available_methods,
    compute_flow,
    flow_pair,
    mirror_flow,
    mirror_image,
)
from dynsal.errors import DataError
from tests.data.synthetic import moved_pair, rotation, translation

H, W = 96, 128
#: mean end-point error (px) allowed on the interior (16 px border left out) for every method
MEAN_EPE, P95_EPE = 0.15, 0.3
MOTIONS = {"translation": translation(2.5, -1.5), "rotation": rotation(H, W, 2.0)}


def _epe(flow, true):
    error = np.sqrt(((flow - true) ** 2).sum(axis=2))[16:-16, 16:-16]
    return float(error.mean()), float(np.percentile(error, 95))


@pytest.mark.parametrize("method", [name for name, entry in METHODS.items() if entry.needs != "torchvision"])
@pytest.mark.parametrize("motion", list(MOTIONS))
def test_flow_recovers_known_motion(method, motion):
    """Every CPU (OpenCV) method recovers a sub-pixel translation and a 2° rotation within MEAN_EPE / P95_EPE."""
    prev, nxt, true = moved_pair(H, W, MOTIONS[motion])
    flow = compute_flow(prev, nxt, method)
    assert flow.shape == (H, W, 2) and flow.dtype == np.float32
    mean, p95 = _epe(flow, true)
    assert mean < MEAN_EPE and p95 < P95_EPE, (mean, p95)


def test_flow_parameters_are_used_and_checked():
    prev, nxt, true = moved_pair(H, W, translation(2.5, -1.5))
    coarse = compute_flow(prev, nxt, "dis", preset="ultrafast")
    fine = compute_flow(prev, nxt, "dis", preset="medium")
    assert not np.array_equal(coarse, fine)
    assert _epe(compute_flow(prev, nxt, "farneback", winsize=9, levels=2), true)[0] < MEAN_EPE
    with pytest.raises(DataError, match="unknown parameter.*winsise.*farneback"):
        compute_flow(prev, nxt, "farneback", winsise=9)
    with pytest.raises(DataError, match="unknown flow method 'pwcnet'"):
        compute_flow(prev, nxt, "pwcnet")
    with pytest.raises(DataError, match="preset"):
        compute_flow(prev, nxt, "dis", preset="slow")
    with pytest.raises(DataError, match="different sizes"):
        compute_flow(prev, nxt[:-1], "dis")


def test_mirroring_the_pair_mirrors_the_flow():
    """Flow of the mirrored frames ≈ mirror_flow(flow): columns reversed, u negated, v kept."""
    prev, nxt, true = moved_pair(H, W, translation(2.0, 1.0))
    flow = compute_flow(prev, nxt, "farneback")
    mirrored = compute_flow(mirror_image(prev), mirror_image(nxt), "farneback")
    assert _epe(mirrored, mirror_flow(flow))[0] < 0.05
    assert np.allclose(mirror_flow(true)[..., 0], -2.0) and np.allclose(mirror_flow(true)[..., 1], 1.0)
    field = np.random.default_rng(0).standard_normal((4, 5, 2)).astype(np.float32)
    assert mirror_flow(field)[1, 0, 0] == -field[1, 4, 0] and mirror_flow(field)[1, 0, 1] == field[1, 4, 1]
    assert np.array_equal(mirror_flow(mirror_flow(field)), field)


def test_flow_pair_and_settings_round_trip():
    assert flow_pair(0, 5) == (0, 1) and flow_pair(3, 5) == (2, 3)
    with pytest.raises(DataError, match="two frames"):
        flow_pair(0, 1)
    settings = FlowSettings("dis", {"preset": "fast"}, "xy", "fixed", 12.5)
    text = settings.to_json()
    assert json.loads(text)["params"] == {"preset": "fast"}
    assert FlowSettings.from_json(text) == settings
    prev, nxt, _ = moved_pair(H, W, translation(1, 1))
    assert np.array_equal(FlowSettings.from_json(text).image(settings.flow(prev, nxt)),
                          settings.image(settings.flow(prev, nxt)))
    for bad, message in (({"encoding": "hsv"}, "encoding"), ({"normalisation": "global"}, "normalisation"),
                         ({"max_magnitude": 0}, "max_magnitude"), ({"colour": 1}, "unknown flow setting")):
        with pytest.raises(DataError, match=message):
            FlowSettings.from_dict({**FlowSettings().to_dict(), **bad})


def test_flo_round_trip_and_layout(tmp_path):
    flow = np.random.default_rng(1).standard_normal((7, 11, 2)).astype(np.float32) * 10
    path = tmp_path / "a.flo"
    write_flo(flow, path)
    raw = path.read_bytes()
    assert raw[:4] == b"PIEH" and np.frombuffer(raw[:4], "<f4")[0] == MAGIC
    assert tuple(np.frombuffer(raw[4:12], "<i4")) == (11, 7)
    assert np.frombuffer(raw[12:20], "<f4").tolist() == flow[0, 0].tolist()  # u, v interleaved
    assert np.array_equal(read_flo(path), flow)


def test_flo_errors_name_the_file(tmp_path):
    path = tmp_path / "bad.flo"
    path.write_bytes(b"nope" + bytes(8))
    with pytest.raises(DataError, match="bad.flo: not a Middlebury"):
        read_flo(path)
    write_flo(np.zeros((3, 4, 2), np.float32), path)
    path.write_bytes(path.read_bytes()[:-4])
    with pytest.raises(DataError, match="bad.flo.*truncated"):
        read_flo(path)
    with pytest.raises(DataError, match="missing.flo"):
        read_flo(tmp_path / "missing.flo")


def test_contrib_methods_without_opencv_contrib_say_how_to_install_it(monkeypatch):
    monkeypatch.delattr(cv2, "optflow", raising=False)
    frame = np.zeros((16, 16, 3), np.uint8)
    with pytest.raises(DataError, match=r"flow method 'tvl1' needs OpenCV's contrib modules \(cv2.optflow\): pip "
                                        r"install \"dynsal\[contrib\]\" && pip install --force-reinstall"):
        compute_flow(frame, frame, "tvl1")
    assert "tvl1" not in available_methods() and "dis" in available_methods()


def test_a_models_flow_and_overrides_over_it():
    """FlowSettings.of_model: the model's settings JSON's `flow`, else DIS + Middlebury; overridden: a new method
    drops the old method's parameters, given parameters and encoding replace the old ones."""
    assert FlowSettings.of_model({}) == FlowSettings()
    model = FlowSettings.of_model({"flow": {"method": "farneback", "params": {"levels": 2}, "encoding": "xy"}})
    assert (model.method, model.params, model.encoding) == ("farneback", {"levels": 2}, "xy")
    same_method = model.overridden("farneback", {"winsize": 9})
    assert same_method.params == {"levels": 2, "winsize": 9} and same_method.encoding == "xy"
    other = model.overridden("dis", encoding="middlebury")
    assert (other.method, other.params, other.encoding) == ("dis", {}, "middlebury")
    assert model.params == {"levels": 2}  # the settings overridden are left as they are
