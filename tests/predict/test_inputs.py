"""What `dynsal predict` accepts as inputs, and the output names they get."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from dynsal.errors import DataError
from dynsal.predict.inputs import expand_inputs


def test_names_kinds_globs_lists_and_layout_folders(tmp_path):
    for video in ("v1", "v2"):
        (tmp_path / video / "images").mkdir(parents=True)
        cv2.imwrite(str(tmp_path / video / "images" / "0001.png"), np.zeros((4, 4, 3), np.uint8))
    cv2.imwrite(str(tmp_path / "still.jpg"), np.zeros((4, 4, 3), np.uint8))
    (tmp_path / "list.txt").write_text(f"# a comment\n{tmp_path / 'still.jpg'}\n\n")
    items = expand_inputs([str(tmp_path / "v*" / "images"), f"@{tmp_path / 'list.txt'}"])
    assert [(i.name, i.kind) for i in items] == [("v1", "frames"), ("v2", "frames"), ("still", "image")]
    with pytest.raises(DataError, match="matches no file"):
        expand_inputs([str(tmp_path / "nothing*.mp4")])
    with pytest.raises(DataError, match="no such file or folder"):
        expand_inputs([str(tmp_path / "missing.xyz")])
