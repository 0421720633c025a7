"""recipes/diem.sh end to end on a miniature DIEM-format folder, so the recipe cannot rot."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np

from tests.data.synthetic import steady_gaze

REPO = Path(__file__).resolve().parents[1]
# two training videos and two of DIEM's 20 test videos (named as in DIEM: <name>_<W>x<H>)
VIDEOS = ("sport_slam_dunk_1280x720", "advert_bravia_paint_1280x720", "one_show_1280x712", "DIY_SOS_1280x712")
TEST_VIDEOS = ["DIY_SOS_1280x712", "one_show_1280x712"]
FRAMES = 6


def miniature_diem(root: Path) -> Path:
    rng = np.random.default_rng(0)
    (root / "video").mkdir(parents=True)
    for name in VIDEOS:
        width, height = (int(v) for v in name.rsplit("_", 1)[1].split("x"))
        small = (width // 16, height // 16)
        texture = cv2.GaussianBlur(rng.integers(0, 256, (small[1], small[0] + 3 * FRAMES, 3), dtype=np.uint8),
                                   (5, 5), 0)
        writer = cv2.VideoWriter(str(root / "video" / f"{name}.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 25.0, small)
        for t in range(FRAMES):
            writer.write(np.ascontiguousarray(texture[:, 3 * t:3 * t + small[0]]))
        writer.release()
        steady_gaze(root / "event_data", name, FRAMES, (width, height))
    return root


def test_diem_recipe_runs_end_to_end(tmp_path):
    diem = miniature_diem(tmp_path / "DIEM")
    env = dict(os.environ, DYNSAL=f"{sys.executable} -m dynsal", PYTHONPATH=os.pathsep.join(sys.path),
               OMP_NUM_THREADS="2")
    result = subprocess.run(["bash", str(REPO / "recipes" / "diem.sh"), str(diem), str(tmp_path / "work"), "2",
                             "32x48"], capture_output=True, text=True, env=env, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    work = tmp_path / "work"
    assert sorted(p.name for p in (work / "ground_truth").iterdir()) == TEST_VIDEOS
    for net in ("ssnet", "tsnet", "stsconv"):
        assert (work / "snapshots" / f"{net}_iter_2.caffemodel").is_file()
    for name in TEST_VIDEOS:
        assert len(list((work / "maps" / name).glob("*.png"))) == FRAMES
    scores = json.loads((work / "scores.json").read_text())
    assert scores and (work / "scores.md").read_text().count("|") > 10
