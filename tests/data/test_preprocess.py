"""The nets' input transform: (x − mean[c]) · scale, written in place into a batch buffer too."""
from __future__ import annotations

import numpy as np

from dynsal.data.preprocess import net_input, preprocess_input, to_net_order
from dynsal.zoo import FRAME_MEAN, INPUT_SCALE


def test_preprocess_input_is_caffes_transform_in_a_new_array_or_in_place():
    image = np.random.default_rng(0).integers(0, 256, (3, 5, 7), dtype=np.uint8)
    expected = (image.astype(np.float64) - np.array(FRAME_MEAN)[:, None, None]) * INPUT_SCALE
    assert np.allclose(preprocess_input(image), expected, rtol=1e-6)
    batch = np.full((2, 3, 5, 7), np.nan, np.float32)
    assert np.shares_memory(preprocess_input(image, out=batch[1]), batch)
    assert np.array_equal(batch[1], preprocess_input(image)) and np.isnan(batch[0]).all()  # bit for bit, one row
    bgr = image.transpose(1, 2, 0)[..., ::-1]
    assert np.array_equal(net_input(bgr), preprocess_input(to_net_order(bgr)))
