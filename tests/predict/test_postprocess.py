"""Post-processing as the authors' script: known answers for each step."""
from __future__ import annotations

import cv2
import numpy as np

from dynsal.predict.postprocess import Postprocessing


def test_affine_clip_and_stretch():
    raw = np.array([[-2.0, -1.0], [0.0, 0.5]], np.float32)
    post = Postprocessing(resize=False, blur_kernel=0, stretch=False)
    np.testing.assert_allclose(post.float_map(raw, (2, 2)), [[0, 0], [127, 191]])
    stretched = Postprocessing(resize=False, blur_kernel=0).apply(raw, (2, 2))
    np.testing.assert_array_equal(stretched, [[0, 0], [round(127 * 255 / 191), 255]])


def test_all_negative_output_stays_black():
    assert not Postprocessing().apply(np.full((4, 4), -3.0, np.float32), (8, 8)).any()


def test_resize_and_blur_follow_opencv():
    rng = np.random.default_rng(0)
    raw = rng.uniform(-1, 1, (12, 16)).astype(np.float32)
    got = Postprocessing(stretch=False).float_map(raw, (30, 40))
    expected = np.clip(raw * 128 + 127, 0, 255)
    expected = cv2.resize(expected, (40, 30), interpolation=cv2.INTER_CUBIC)
    expected = np.clip(cv2.GaussianBlur(expected, (5, 5), 0), 0, 255)
    assert got.shape == (30, 40)
    np.testing.assert_allclose(got, expected, atol=1e-4)
    assert Postprocessing().apply(raw, (30, 40)).max() == 255
