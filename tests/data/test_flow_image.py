"""Flow image encodings: the Middlebury colour wheel on known vectors, and the xy encoding."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from dynsal.data.flow_image import colour_wheel, encode_flow, middlebury_image, xy_image


def _hue_degrees(bgr: np.ndarray) -> float:
    """OpenCV's full-range hue (0–360) of one BGR pixel."""
    return float(cv2.cvtColor(bgr.reshape(1, 1, 3), cv2.COLOR_BGR2HSV_FULL)[0, 0, 0]) * 360 / 256


def _field(*vectors):
    return np.array([vectors], dtype=np.float32)


def test_colour_wheel_is_middleburys():
    wheel = colour_wheel()
    assert wheel.shape == (55, 3)
    assert wheel[0].tolist() == [255, 0, 0]          # RY starts at red
    assert wheel[15].tolist() == [255, 255, 0]       # YG starts at yellow
    assert wheel[21].tolist() == [0, 255, 0]         # GC starts at green
    assert wheel[25].tolist() == [0, 255, 255]       # CB starts at cyan
    assert wheel[36].tolist() == [0, 0, 255]         # BM starts at blue
    assert wheel[49].tolist() == [255, 0, 255]       # MR starts at magenta
    assert wheel[1].tolist() == [255, np.floor(255 / 15), 0]


@pytest.mark.parametrize("vector,rgb", [
    ((1.0, 0.0), (255, 0, 0)),        # right: wheel[0], red
    ((0.0, 1.0), (255, 229, 0)),      # down: halfway between wheel[13] (G 221) and wheel[14] (G 238): yellow
    ((-1.0, 0.0), (0, 209, 255)),     # left: wheel[27], CB step 2 (G 255 - 46): cyan-blue
    ((0.0, -1.0), (87, 0, 255)),      # up: halfway between wheel[40] (R 78) and wheel[41] (R 98), 87.99999
                                      # in C's float arithmetic, truncated: blue-violet
])
def test_unit_vectors_give_the_wheel_colours(vector, rgb):
    """Full-magnitude motion (|f| = M) shows the pure wheel colour of its direction."""
    bgr = middlebury_image(_field(vector), max_magnitude=1.0)[0, 0]
    assert bgr[::-1].tolist() == list(rgb)


def test_hues_saturation_and_normalisation():
    flow = _field((4, 0), (0, 4), (-4, 0), (0, -4), (0, 0), (2, 0))
    image = middlebury_image(flow)  # per-frame: M = 4
    hues = [_hue_degrees(image[0, i]) for i in range(4)]
    assert hues[0] == pytest.approx(0, abs=2) and 40 < hues[1] < 60 and 185 < hues[2] < 200 and 250 < hues[3] < 265
    assert image[0, 4].tolist() == [255, 255, 255]                         # no motion: white
    assert image[0, 5][::-1].tolist() == [255, 127, 127]                   # half magnitude: half saturation
    fixed = middlebury_image(flow, max_magnitude=8.0)
    assert fixed[0, 0][::-1].tolist() == [255, 127, 127]                   # 4 px of 8: half saturation
    beyond = middlebury_image(flow, max_magnitude=2.0)
    assert beyond[0, 0][::-1].tolist() == [191, 0, 0]                      # beyond M: 0.75 × colour
    assert np.array_equal(middlebury_image(np.zeros((2, 3, 2), np.float32)), np.full((2, 3, 3), 255, np.uint8))


def test_xy_encoding():
    flow = _field((0, 0), (10, -5), (40, 0))
    image = xy_image(flow, max_magnitude=20.0)
    assert image[0, 0].tolist() == [0, 128, 128]                                   # B=|f|, G=v, R=u
    assert image[0, 1].tolist() == [round(255 * np.hypot(10, 5) / 20), round(128 - 127 * 5 / 20),
                                    round(128 + 127 * 10 / 20)]
    assert image[0, 2].tolist() == [255, 128, 255]                                 # clipped
    per_frame = xy_image(flow)
    assert per_frame[0, 2].tolist() == [255, 128, 255] and per_frame[0, 1][2] == round(128 + 127 * 10 / 40)
    assert np.array_equal(encode_flow(flow, "xy", 20.0), image)


def _colorcode_cpp(fx, fy, wheel) -> list:
    """A per-pixel transcription of Middlebury's computeColor (colorcode.cpp), float where C has float."""
    import math

    f32 = np.float32
    fx, fy = f32(fx), f32(fy)
    rad = f32(math.sqrt(fx * fx + fy * fy))
    a = f32(math.atan2(-float(fy), -float(fx)) / math.pi)
    fk = f32((float(a) + 1.0) / 2.0 * (len(wheel) - 1))
    k0 = int(fk)
    k1 = (k0 + 1) % len(wheel)
    f = f32(fk - f32(k0))
    out = []
    for b in range(3):
        col0, col1 = f32(wheel[k0][b] / 255.0), f32(wheel[k1][b] / 255.0)
        col = (f32(1) - f) * col0 + f * col1
        col = f32(1) - rad * (f32(1) - col) if rad <= 1 else f32(float(col) * 0.75)
        out.append(int(255.0 * float(col)))
    return out


def test_matches_a_per_pixel_transcription_of_colorcode_cpp():
    rng = np.random.default_rng(5)
    flow = (rng.standard_normal((20, 30, 2)) * 3).astype(np.float32)
    wheel = colour_wheel().tolist()
    image = middlebury_image(flow, max_magnitude=5.0)
    for r in range(20):
        for c in range(30):
            fx, fy = flow[r, c] / np.float32(5.0)
            assert image[r, c][::-1].tolist() == _colorcode_cpp(fx, fy, wheel), (r, c)
