"""DIEM gaze → fixation points, fixation and density maps; per-frame layouts."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
from scipy.io import savemat
from scipy.ndimage import gaussian_filter

from dynsal.data import gaze as G
from dynsal.data import ground_truth as GT
from dynsal.errors import DataError
from tests.data.synthetic import diem_row, write_gaze

VIDEO = "clip_640x480"  # centred on 1280×960: offset (320, 240)
ROWS = [
    diem_row(1, (700, 500, 1), (704, 500, 1)),     # both fixating -> mean (702, 500) -> video (382, 260)
    diem_row(2, (800, 600, 1), (810, 600, 2)),     # right eye in a saccade
    diem_row(3, (0, 0, 0), (0, 0, 0)),             # blink
    diem_row(4, (-1, -1, -1), (500, 400, 1)),      # left eye lost (error), right fixating
    diem_row(5, (100, 100, 1), (102, 100, 1)),     # fixation outside the video -> dropped
    diem_row(6, (700, 500, 2), (700, 500, 2)),     # saccade
]


def _points(tmp_path, eyes, mapping=None, frames=6):
    mapping = mapping or G.ScreenMapping()
    path = write_gaze(tmp_path, VIDEO, "diem1s01", ROWS)
    return [p.tolist() for p in G.diem_fixations([path], (640, 480), frames, eyes, mapping)]


def test_fixations_per_eye_rule(tmp_path):
    assert _points(tmp_path, "both") == [[[382, 260]], [], [], [], [], []]
    assert _points(tmp_path, "left") == [[[380, 260]], [[480, 360]], [], [], [], []]
    assert _points(tmp_path, "right") == [[[384, 260]], [], [], [[180, 160]], [], []]
    assert _points(tmp_path, "either") == [[[382, 260]], [[480, 360]], [], [[180, 160]], [], []]
    with pytest.raises(DataError, match="unknown eyes"):
        _points(tmp_path, "cyclops")


def test_screen_mapping_rules(tmp_path):
    assert G.ScreenMapping().video_offset((640, 480)) == (320, 240)
    assert G.ScreenMapping(screen=(1440, 900)).video_offset((640, 360)) == (400, 270)
    # the other published rule, y − 100 only: frames 1 and 2 now fall right of the 640-px video
    shifted = _points(tmp_path, "either", G.ScreenMapping(offset=(0, 100)))
    assert shifted == [[], [], [], [[500, 300]], [[101, 0]], []]


def test_several_participants_and_frame_count(tmp_path):
    a = write_gaze(tmp_path, VIDEO, "diem1s01", ROWS)
    b = write_gaze(tmp_path, VIDEO, "diem2s01", [diem_row(1, (330, 250, 1), (330, 250, 1))])
    points = G.diem_fixations([a, b], (640, 480), 6)
    assert points[0].tolist() == [[382, 260], [10, 10]]
    assert G.gaze_files(tmp_path, VIDEO) == [a, b]
    with pytest.raises(DataError, match=r"diem1s01.asc_clip_640x480.txt:5: frame '5' is not a whole number from 1 to "
                                        r"4 \(the video has 4 frames\)"):
        G.diem_fixations([a, b], (640, 480), 4)
    with pytest.raises(DataError, match="no gaze file for video 'other_640x480'"):
        G.gaze_files(tmp_path, "other_640x480")
    longer = write_gaze(tmp_path, "arctic_clip_640x480", "diem3s01", ROWS)
    assert G.gaze_files(tmp_path, VIDEO, [VIDEO, "arctic_clip_640x480"]) == [a, b]
    assert G.gaze_files(tmp_path, "arctic_clip_640x480", [VIDEO, "arctic_clip_640x480"]) == [longer]


def test_bad_gaze_files_name_file_and_line(tmp_path):
    bad = write_gaze(tmp_path, VIDEO, "bad", [ROWS[0], "2 800 600 1"])
    with pytest.raises(DataError, match=r"bad.asc_clip_640x480.txt:2: expected nine numbers"):
        G.read_diem_events(bad)
    zero = write_gaze(tmp_path, VIDEO, "zero", [diem_row(0, (1, 1, 1), (1, 1, 1))])
    with pytest.raises(DataError, match=r"zero.asc_clip_640x480.txt:1: frame '0' is not a whole number from 1"):
        G.read_diem_events(zero)
    empty = tmp_path / "empty.txt"
    empty.write_text("\n")
    with pytest.raises(DataError, match="empty.txt: empty gaze file"):
        G.read_diem_events(empty)


def test_video_size_sigma_and_geometry():
    assert G.video_size_from_name("harry_potter_6_trailer_1280x544") == (1280, 544)
    with pytest.raises(DataError, match="_<width>x<height>"):
        G.video_size_from_name("clip")
    geometry = G.ViewingGeometry(57.3, 32.0, 1280)
    assert geometry.pixels_per_degree() == pytest.approx(2 * 57.3 * np.tan(np.radians(0.5)) * 40)
    assert G.Sigma("30px").pixels() == 30
    assert G.Sigma("1deg").pixels() == pytest.approx(G.ViewingGeometry().pixels_per_degree())
    assert 50 < G.Sigma("1deg").pixels() < 51
    with pytest.raises(DataError, match="bad sigma"):
        G.Sigma("1cm").pixels()


def test_fixation_map():
    points = np.array([[0.0, 0.0], [639.9, 479.9], [320.0, 240.0]])
    fixations = G.fixation_map(points, (640, 480), (48, 64))
    assert fixations.dtype == bool and fixations.sum() == 3
    assert fixations[0, 0] and fixations[47, 63] and fixations[24, 32]


@pytest.mark.parametrize("scale", [1, 2])
def test_density_map_matches_scipy_gaussian_filter(scale):
    """Gaussians at fixations == gaussian_filter of the fixation map (σ scaled with the map)."""
    shape = (60, 80)
    pixels = [(10, 20), (30, 50), (31, 50), (45, 12)]
    # points at the centres of those map pixels, in video coordinates (`scale` × the map)
    points = np.array([[(c + 0.5) * scale, (r + 0.5) * scale] for r, c in pixels])
    sigma = 4.0
    ours = G.density_map(points, (80 * scale, 60 * scale), shape, sigma * scale)
    impulses = np.zeros(shape)
    for r, c in pixels:
        impulses[r, c] += 1
    theirs = gaussian_filter(impulses, sigma, mode="constant", truncate=8)
    theirs /= theirs.max()
    assert ours.max() == 1.0
    assert np.abs(ours - theirs).max() < 1e-4
    assert G.density_map(np.zeros((0, 2)), (80, 60), shape, sigma).sum() == 0
    assert GT.to_uint8(ours).max() == 255 and GT.to_uint8(ours).dtype == np.uint8


def test_observer_subset_is_seeded(tmp_path):
    paths = [tmp_path / f"{i}.txt" for i in range(10)]
    subset = G.observer_subset(paths, 0.5, seed=3)
    assert len(subset) == 5 and subset == G.observer_subset(paths, 0.5, seed=3)
    assert subset == sorted(subset, key=paths.index)
    with pytest.raises(DataError, match="fraction"):
        G.observer_subset(paths, 0, 1)


def _layout_video(root, name, frames, with_map=True):
    for sub in ("images", "maps", "fixation"):
        (root / name / sub).mkdir(parents=True, exist_ok=True)
    for i in frames:
        cv2.imwrite(str(root / name / "images" / f"{i:04d}.png"), np.full((12, 16, 3), i, np.uint8))
        if with_map or i != frames[-1]:
            cv2.imwrite(str(root / name / "maps" / f"{i:04d}.png"), np.full((12, 16), 10 * i, np.uint8))
    fix = np.zeros((12, 16), np.uint8)
    fix[3, 4] = 1
    savemat(str(root / name / "fixation" / f"{frames[0]:04d}.mat"), {"I": fix})


def test_layout_reader(tmp_path):
    _layout_video(tmp_path, "v1", [1, 2, 3])
    _layout_video(tmp_path, "v2", [1, 2])
    videos = GT.read_layout(tmp_path)
    assert [v.name for v in videos] == ["v1", "v2"]
    assert [p.name for p in videos[0].maps] == ["0001.png", "0002.png", "0003.png"]
    assert videos[0].fixations[0].name == "0001.mat" and videos[0].fixations[1] is None
    assert GT.read_layout_map(videos[0].maps[2])[0, 0] == 30
    assert np.argwhere(GT.read_fixations(videos[0].fixations[0])).tolist() == [[3, 4]]
    cv2.imwrite(str(tmp_path / "deep.png"), np.full((2, 2), 1000, np.uint16))
    assert GT.read_layout_map(tmp_path / "deep.png").tolist() == [[255, 255], [255, 255]]


def test_layout_frame_without_map_is_an_error(tmp_path):
    _layout_video(tmp_path, "v1", [1, 2, 3], with_map=False)
    with pytest.raises(DataError, match=r"v1/maps: no file for frame\(s\) 0003"):
        GT.read_layout(tmp_path)
    with pytest.raises(DataError, match="no video folders"):
        GT.read_layout(tmp_path / "v1" / "maps")
