"""Ground-truth layouts with their real names: miniature DHF1K, Hollywood-2 and UCF-Sports copies,
read by the layout reader (training sets) and matched by `dynsal eval` (predictions named like them)."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from scipy.io import savemat

from dynsal import evaluate as E
from dynsal.data import ground_truth as GT

SHAPE = (18, 32)


def _frame_files(video_dir: Path, stems, fixations_as_mat: bool = False) -> None:
    """images/, maps/ and fixation/ (PNG, or DHF1K's fixation/maps/*.mat) of one video."""
    rng = np.random.default_rng(len(stems))
    for stem in stems:
        for folder in ("images", "maps", "fixation"):
            (video_dir / folder).mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(video_dir / "images" / f"{stem}.png"), rng.integers(0, 256, SHAPE + (3,), dtype=np.uint8))
        cv2.imwrite(str(video_dir / "maps" / f"{stem}.png"), rng.integers(0, 256, SHAPE, dtype=np.uint8))
        fixations = np.zeros(SHAPE, np.uint8)
        fixations[rng.integers(0, SHAPE[0], 3), rng.integers(0, SHAPE[1], 3)] = 1
        if fixations_as_mat:
            (video_dir / "fixation" / "maps").mkdir(exist_ok=True)
            savemat(str(video_dir / "fixation" / "maps" / f"{stem}.mat"), {"I": fixations})
        else:
            cv2.imwrite(str(video_dir / "fixation" / f"{stem}.png"), fixations * 255)


def dhf1k(root: Path, frames: int = 3) -> Path:
    """DHF1K's annotation/0001, annotation/0002: 1-based 4-digit frames, fixations as .mat (variable I)."""
    for video in ("0001", "0002"):
        _frame_files(root / "annotation" / video, [GT.dhf1k_frame_name(i) for i in range(frames)],
                     fixations_as_mat=True)
    return root / "annotation"


def hollywood(root: Path) -> Path:
    """Hollywood-2's testing/: two shots of clip 00001 numbering frames on from the clip, one of clip 00002."""
    _frame_files(root / "testing" / "actioncliptest00001_1", [f"actioncliptest00001_{i:05d}" for i in (1, 2, 3)])
    _frame_files(root / "testing" / "actioncliptest00001_2", [f"actioncliptest00001_{i:05d}" for i in (4, 5)])
    _frame_files(root / "testing" / "actioncliptest00002_1", [f"actioncliptest00002_{i:05d}" for i in (1, 2)])
    return root / "testing"


def ucf_sports(root: Path) -> Path:
    """UCF-Sports' training/: `Diving-Side-001/images/Diving-Side_001_001.png` ..."""
    for video in ("Diving-Side-001", "Golf-Swing-Back-002"):
        name = f"{video[:-4]}_{video[-3:]}"
        _frame_files(root / "training" / video, [f"{name}_{i:03d}" for i in (1, 2, 3)])
    return root / "training"


def predictions_like(annotation: Path, predictions: Path, maps_folder: str = "") -> None:
    """One predicted map per annotated frame, named exactly like the annotation (the map itself)."""
    for map_file in sorted(annotation.glob("*/maps/*.png")):
        target = predictions / map_file.parent.parent.name / maps_folder / map_file.name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(map_file.read_bytes())


@pytest.mark.parametrize("make, videos, frames", [(dhf1k, 2, 6), (hollywood, 3, 7), (ucf_sports, 2, 6)])
@pytest.mark.parametrize("maps_folder", ["", "maps"])
def test_eval_matches_each_annotation_layout(tmp_path, make, videos, frames, maps_folder):
    annotation = make(tmp_path / "dataset")
    predictions_like(annotation, tmp_path / "pred", maps_folder)
    result = E.evaluate(tmp_path / "pred", annotation, metrics=("cc", "nss"))
    assert result.settings["videos"] == videos and result.settings["frames"] == frames
    assert all(row.scores["cc"] == pytest.approx(1.0) for row in result.rows)


def test_layout_reader_reads_hollywood_and_ucf_names(tmp_path):
    videos = GT.read_layout(hollywood(tmp_path))
    assert [v.name for v in videos] == ["actioncliptest00001_1", "actioncliptest00001_2", "actioncliptest00002_1"]
    assert [p.name for p in videos[1].maps] == ["actioncliptest00001_00004.png", "actioncliptest00001_00005.png"]
    assert all(f is not None for v in videos for f in v.fixations)
    videos = GT.read_layout(ucf_sports(tmp_path))
    assert [p.stem for p in videos[0].images] == ["Diving-Side_001_001", "Diving-Side_001_002", "Diving-Side_001_003"]


def test_dhf1k_names():
    assert GT.dhf1k_video_name("001") == "0001" and GT.dhf1k_video_name("700") == "0700"
    assert GT.dhf1k_video_name("clip") == "clip"
    assert [GT.dhf1k_frame_name(i) for i in (0, 9, 999)] == ["0001", "0010", "1000"]


def test_dhf1k_fixations_are_read_from_mat(tmp_path):
    annotation = dhf1k(tmp_path)
    files = GT.fixation_files(annotation / "0001")
    assert sorted(files) == ["0001", "0002", "0003"] and files["0001"].suffix == ".mat"
    assert GT.read_fixations(files["0001"]).dtype == bool
