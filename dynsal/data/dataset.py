"""Videos + ground truth → aligned (frame, flow image, map) samples, with splits, order and augmentation.

A sample of frame t of a video is the decoded frame (resize policy applied), the flow image of the
motion from frame t−1 to t (`dynsal.data.flow.flow_pair`) and the saliency map at the frame's size.
Arrays come out in the layout the writers store and the nets see: uint8 C×H×W, frames and flow
images in **RGB** order (OpenCV's BGR swapped, as the authors' script does before mean
subtraction), maps 1×H×W.

Ground truth: DIEM raw gaze (`dynsal.data.gaze`, density maps built here; frames without any
fixation are left out unless `keep_empty`) or a `<split>/<video>/{images,maps}` layout (maps read
and resized to the frame with INTER_AREA).

Order: the plan lists, video by video, every `stride`-th frame and its variants, then permutes the
list with `numpy.random.default_rng(seed)` (unless `shuffle` is off); position i in that order gets
the key `%08d_<video>_<frame %06d><variant>`, which is the order Caffe's Data layer reads.

Augmentation (dynsal's reconstruction; the paper only says it used data augmentation), as extra
samples next to the original:
- `mirror`: frame, map and flow mirrored horizontally, u negated (`mirror_flow`); key suffix `_m`;
- `scales` s < 1: a crop of s·H × s·W at a seeded random position (seed, video, frame, s; the
  mirrored variant mirrors the same crop),
  rescaled to H×W (INTER_LINEAR) for frame and map; the flow is cropped and rescaled with its
  vectors multiplied by 1/s before encoding; key suffix `_s<s>`; combined with `mirror` when set;
- `observer_subsets` k: maps from k seeded draws of round(`observer_fraction`·n) of a video's n
  observers (one draw per video, the same for all its frames; DIEM gaze only), each combined with
  the other variants; key suffix `_o<k>`. A frame kept for its fixations may have none in a subset:
  its map is then all zeros.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterator, List, NamedTuple, Optional, Sequence, Tuple

import cv2
import numpy as np

from dynsal.data import gaze as G
from dynsal.data import ground_truth as GT
from dynsal.data.flow import FlowSettings, flow_inputs, mirror_flow, mirror_image
from dynsal.data.preprocess import to_net_order
from dynsal.data.video import ResizePolicy, declared_frame_count, read_frames, read_image
from dynsal.errors import DataError
from dynsal.seeds import frame_seed

#: DIEM's common 20-video test list (datasets-and-metrics.md); the other 64 videos train
DIEM_TEST_VIDEOS = (
    "BBC_life_in_cold_blood_1278x710", "BBC_wildlife_serpent_1280x704", "DIY_SOS_1280x712",
    "advert_bbc4_bees_1024x576", "advert_bbc4_library_1024x576", "advert_iphone_1272x720",
    "ami_ib4010_closeup_720x576", "ami_ib4010_left_720x576", "harry_potter_6_trailer_1280x544",
    "music_gummybear_880x720", "music_trailer_nine_inch_nails_1280x720", "news_tony_blair_resignation_720x540",
    "nightlife_in_mozambique_1280x580", "one_show_1280x712", "pingpong_angle_shot_960x720",
    "pingpong_no_bodies_960x720", "sport_scramblers_1280x720", "sport_wimbledon_federer_final_1280x704",
    "tv_uni_challenge_final_1280x712", "university_forum_construction_ionic_1280x720",
)


@dataclass(frozen=True)
class VideoSource:
    """One video and its ground truth: DIEM gaze files, or a layout video's frames and maps."""

    name: str
    frames: Path  # video file or frame folder (layouts: the images folder)
    gaze: Tuple[Path, ...] = ()
    layout: Optional[GT.LayoutVideo] = None

    def files(self) -> List[Path]:
        """Every input file, for the manifest's hashes."""
        if self.layout is not None:
            return list(self.layout.images) + list(self.layout.maps)
        frames = sorted(p for p in self.frames.iterdir() if p.is_file()) if self.frames.is_dir() else [self.frames]
        return frames + list(self.gaze)


@dataclass(frozen=True)
class DatasetSettings:
    """Everything that decides a dataset's contents (saved in its manifest)."""

    resize: str = "fixed:240x320"
    flow: Dict[str, Any] = field(default_factory=lambda: FlowSettings().to_dict())
    stride: int = 1
    eyes: str = "both"
    screen: Tuple[int, int] = (1280, 960)
    offset: Optional[Tuple[float, float]] = None
    sigma: str = "1deg"
    geometry: Tuple[float, float, int] = (90.0, 40.0, 1280)
    keep_empty: bool = False
    mirror: bool = False
    scales: Tuple[float, ...] = ()
    observer_subsets: int = 0
    observer_fraction: float = 0.5
    shuffle: bool = True
    seed: int = 0

    def __post_init__(self):
        ResizePolicy.parse(self.resize)
        FlowSettings.from_dict(self.flow)
        if self.stride < 1:
            raise DataError(f"stride must be ≥ 1, got {self.stride}")
        if any(not 0 < s < 1 for s in self.scales):
            raise DataError(f"crop scales must be in (0, 1), got {list(self.scales)}")
        if self.observer_subsets < 0 or not 0 < self.observer_fraction <= 1:
            raise DataError(f"observer subsets must be ≥ 0 and their fraction in (0, 1], got "
                            f"{self.observer_subsets} and {self.observer_fraction}")
        if self.eyes not in G.EYES:
            raise DataError(f"unknown eyes {self.eyes!r}; choose one of {', '.join(G.EYES)}")

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)

    def variants(self) -> List[Tuple[bool, float, int]]:
        """(mirrored, crop scale, observer subset) of every sample made from one frame; (False, 1.0, 0) first.

        Observer subset 0 is every observer; k ≥ 1 the k-th seeded draw (`observer_subsets`).
        """
        scales = (1.0,) + tuple(self.scales)
        return [(m, s, o) for o in range(self.observer_subsets + 1) for s in scales
                for m in ((False, True) if self.mirror else (False,))]


def variant_suffix(mirrored: bool, scale: float, subset: int = 0) -> str:
    """`_o<subset>` (observer draw), `_s<scale>` (crop), `_m` (mirrored), each only when it applies."""
    return (f"_o{subset}" if subset else "") + (f"_s{scale:.2f}" if scale != 1.0 else "") + ("_m" if mirrored else "")


class PlanItem(NamedTuple):
    """One sample to write: its position (key order), video index, frame index and variant."""

    position: int
    video: int
    frame: int
    variant: int


class Sample(NamedTuple):
    """One aligned sample: key and uint8 C×H×W arrays in the nets' order (frame/flow RGB, map 1×H×W)."""

    position: int
    key: str
    frame: np.ndarray
    flow: np.ndarray
    map: np.ndarray


def split_videos(names: Sequence[str], preset: Optional[str] = None, val_fraction: float = 0.0,
                 seed: int = 0) -> Dict[str, List[str]]:
    """{split: video names}: preset `diem` puts DIEM's 20 test videos in `val` (the split the zoo's
    TEST phase reads), else `val_fraction` of the videos (seeded choice) go to val; the rest train."""
    names = sorted(names)
    if preset == "diem":
        val = [n for n in names if n in DIEM_TEST_VIDEOS]
    elif preset is None:
        count = int(round(val_fraction * len(names)))
        picked = np.random.default_rng(seed).choice(len(names), size=count, replace=False) if count else []
        val = [names[i] for i in sorted(picked)]
    else:
        raise DataError(f"unknown split preset {preset!r}; use diem")
    return {"train": [n for n in names if n not in val], "val": val}


def gaze_frame_count(source: VideoSource) -> int:
    """The last frame any of the video's gaze files refers to, at most the frames the video has (a frame
    folder's count, or a video file's declared count with a margin of 5 % + 25 for containers that
    estimate it; the exact count is checked after decoding, `video_jobs`)."""
    declared = declared_frame_count(source.frames)
    if declared is None:
        limit, what = G.MAX_GAZE_FRAME, ""
    elif declared[1]:
        limit, what = declared[0], f"{source.frames} has {declared[0]:,} frames"
    else:
        limit = declared[0] + declared[0] // 20 + 25
        what = f"{source.frames} declares {declared[0]:,} frames"
    return max(int(G.read_diem_events(p, limit, what)[:, 0].max()) for p in source.gaze)


def planned_frames(source: VideoSource, settings: DatasetSettings) -> List[int]:
    """The frame indices (0-based) of one video that become samples."""
    if source.layout is not None:
        return list(range(0, len(source.layout.images), settings.stride))
    if not source.gaze:
        raise DataError(f"video {source.name!r} ({source.frames}): no gaze files")
    points = subset_gaze(source, settings, gaze_frame_count(source), 0)
    return [t for t in range(0, len(points), settings.stride) if settings.keep_empty or len(points[t])]


def make_plan(sources: Sequence[VideoSource], settings: DatasetSettings) -> List[PlanItem]:
    """Every sample of a split, sorted by position (the key order)."""
    items = [(v, t, k) for v, source in enumerate(sources) for t in planned_frames(source, settings)
             for k in range(len(settings.variants()))]
    order = np.random.default_rng(settings.seed).permutation(len(items)) if settings.shuffle else np.arange(len(items))
    plan = [PlanItem(int(pos), *items[i]) for pos, i in enumerate(order)]
    return sorted(plan)


def sample_key(position: int, video: str, frame: int, variant: Tuple[bool, float, int]) -> str:
    """`%08d_<video>_<frame %06d><variant suffix>`: the record's key (its position fixes Caffe's order)."""
    return f"{position:08d}_{video}_{frame:06d}{variant_suffix(*variant)}"


# --------------------------------------------------------------------------------------------------
# making the samples of one video


def _crop_box(shape: Tuple[int, int], scale: float, seed: int) -> Tuple[int, int, int, int]:
    height, width = shape
    ch, cw = max(1, int(round(height * scale))), max(1, int(round(width * scale)))
    rng = np.random.default_rng(seed)
    return int(rng.integers(0, height - ch + 1)), int(rng.integers(0, width - cw + 1)), ch, cw


def _rescale(image: np.ndarray, box, shape) -> np.ndarray:
    top, left, ch, cw = box
    return cv2.resize(image[top:top + ch, left:left + cw], (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)


def augment(frame: np.ndarray, flow: np.ndarray, saliency: np.ndarray, mirrored: bool, scale: float,
            seed: int) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One variant of (BGR frame H×W×3, flow H×W×2, map H×W): crop-rescale (module docstring), then mirror."""
    shape = frame.shape[:2]
    if scale != 1.0:
        box = _crop_box(shape, scale, seed)
        frame, saliency = _rescale(frame, box, shape), _rescale(saliency, box, shape)
        flow = _rescale(flow, box, shape) * np.array([shape[1] / box[3], shape[0] / box[2]], np.float32)
    if mirrored:
        frame, saliency, flow = mirror_image(frame), mirror_image(saliency), mirror_flow(flow)
    return frame, flow, saliency


def make_samples(job: Tuple) -> List[Tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(first, second, frame is first?, {observer subset: map}, flow settings dict,
    [(mirrored, scale, subset, seed)]) → [(frame, flow image, map)] C×H×W, flow from `first` to `second`.

    Runs in worker processes (one OpenCV thread each).
    """
    first, second, frame_is_first, maps, flow_settings, variants = job
    settings = FlowSettings.from_dict(flow_settings)
    flow = settings.flow(first, second)
    frame = first if frame_is_first else second
    out = []
    for mirrored, scale, subset, seed in variants:
        f, fl, s = augment(frame, flow, maps[subset], mirrored, scale, seed)
        out.append((to_net_order(f), to_net_order(settings.image(fl)), np.ascontiguousarray(s[None])))
    return out


def subset_gaze(source: VideoSource, settings: DatasetSettings, frame_count: int, subset: int):
    """Per-frame points of every observer (subset 0) or of the subset-th seeded draw; None for layouts."""
    if source.layout is not None:
        if subset:
            raise DataError(f"video {source.name!r}: observer subsets need raw gaze (DIEM), not a map layout")
        return None
    files = source.gaze
    if subset:
        seed = frame_seed(settings.seed, source.name, "observers", subset)
        files = tuple(G.observer_subset(files, settings.observer_fraction, seed))
    return G.diem_fixations(files, G.video_size_from_name(source.name), frame_count, settings.eyes,
                            G.ScreenMapping(tuple(settings.screen), settings.offset))


def _frame_map(source: VideoSource, settings: DatasetSettings, points, t: int, shape) -> np.ndarray:
    if source.layout is not None:
        saliency = GT.read_layout_map(source.layout.maps[t])
        if saliency.shape != tuple(shape):
            saliency = cv2.resize(saliency, (shape[1], shape[0]), interpolation=cv2.INTER_AREA)
        return saliency
    geometry = G.ViewingGeometry(*settings.geometry)
    sigma = G.Sigma(settings.sigma).pixels(geometry)
    return GT.to_uint8(G.density_map(points[t], G.video_size_from_name(source.name), shape, sigma))


def _decoded(source: VideoSource, resize: ResizePolicy) -> Iterator[Tuple[int, np.ndarray]]:
    if source.layout is None:
        for frame in read_frames(source.frames, resize):
            yield frame.index, frame.image
        return
    for index, path in enumerate(source.layout.images):
        yield index, resize.apply(read_image(path))


def video_jobs(source: VideoSource, items: Sequence[PlanItem], settings: DatasetSettings
               ) -> Iterator[Tuple[List[PlanItem], Tuple]]:
    """(plan items of one frame, make_samples job) for every planned frame of a video, in frame order.

    Raises:
        DataError: the video has fewer frames than its gaze refers to, or fewer than two.
    """
    by_frame: Dict[int, List[PlanItem]] = {}
    for item in items:
        by_frame.setdefault(item.frame, []).append(item)
    variants = settings.variants()
    resize = ResizePolicy.parse(settings.resize)
    gaze_frames = gaze_frame_count(source) if source.layout is None else 0
    points = {o: subset_gaze(source, settings, gaze_frames, o) for o in range(settings.observer_subsets + 1)}
    decoded = [0]

    def counted():
        for index, image in _decoded(source, resize):
            decoded[0] = index + 1
            yield index, image

    for t, frame, first, second in flow_inputs(counted(), str(source.frames)):
        if t not in by_frame:
            continue
        wanted = [variants[i.variant] for i in by_frame[t]]
        maps = {o: _frame_map(source, settings, points[o], t, frame.shape[:2]) for o in {v[2] for v in wanted}}
        jobs = [(m, s, o, frame_seed(settings.seed, source.name, str(t), int(round(s * 1e4)))) for m, s, o in wanted]
        yield by_frame[t], (first, second, frame is first, maps, settings.flow, jobs)
    if gaze_frames > decoded[0]:
        culprit = max(source.gaze, key=lambda p: G.read_diem_events(p)[:, 0].max())
        raise DataError(f"{culprit}: gaze rows go up to frame {gaze_frames} but the video {source.frames} has "
                        f"{decoded[0]} frames; is this the gaze of another video, or a truncated video?")
