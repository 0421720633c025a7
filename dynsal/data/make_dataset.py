"""The `make-lmdb` / `make-hdf5` job: videos and ground truth, split, built (or sharded) per split.

`sources_by_split` finds the videos of each split (DIEM videos + raw gaze split by a preset or a
seeded fraction, or a `ROOT/<split>/<video>/{images,maps}` layout); `make_dataset` builds every split
with `dynsal.data.build.build_split` in the chosen format, or its shard `i/n` into `OUT/shards`;
`save_ground_truth` writes the per-frame maps and fixations of DIEM videos at the dataset's frame size
in the layout `dynsal eval` reads.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from dynsal.data import gaze as G
from dynsal.data import shards as S
from dynsal.data.build import build_split
from dynsal.data.dataset import DatasetSettings, VideoSource, gaze_frame_count, split_videos, subset_gaze
from dynsal.data.lmdb_writer import LmdbWriter
from dynsal.data.sources import diem_sources, layout_sources
from dynsal.data.video import ResizePolicy
from dynsal.errors import DataError

SPLITS = ("train", "val")


@dataclass
class BuiltSplit:
    """What one split's build made: its manifest, the videos in it, where and in which format."""

    split: str
    manifest: Dict
    sources: List[VideoSource]
    root: Path
    kind: str


def sources_by_split(splits: Sequence[str], layout: Optional[str] = None, videos: Sequence[str] = (),
                     gaze: Optional[str] = None, split_preset: Optional[str] = None, val_fraction: float = 0.0,
                     seed: int = 0) -> Dict[str, List[VideoSource]]:
    """{split: its videos} for the wanted splits (those without videos left out).

    Args:
        splits: split names among `SPLITS`.
        layout: ROOT of a `ROOT/<split>/<video>/{images,maps}` layout, or None for DIEM input.
        videos, gaze: DIEM video files / frame folders (or folders of them) and the event_data folder.
        split_preset, val_fraction, seed: how DIEM videos are split (`dynsal.data.dataset.split_videos`).

    Raises:
        DataError: an unknown split, a missing split folder, or input given both ways / not at all.
    """
    unknown = [s for s in splits if s not in SPLITS]
    if unknown:
        raise DataError(f"--splits: unknown split(s) {', '.join(unknown)}; the zoo's nets read train and val")
    if layout:
        if videos or gaze:
            raise DataError("give either --layout or --videos with --gaze, not both")
        missing = [s for s in splits if not (Path(layout) / s).is_dir()]
        if missing:
            raise DataError(f"{layout}: no {', '.join(missing)} folder(s); expected ROOT/<split>/<video>/"
                            "{images,maps} (choose splits with --splits)")
        return {s: layout_sources(Path(layout) / s) for s in splits}
    if not (videos and gaze):
        raise DataError("give --videos and --gaze (DIEM), or --layout ROOT")
    sources = diem_sources(videos, gaze)
    by_name = {s.name: s for s in sources}
    split = split_videos(list(by_name), split_preset, val_fraction, seed)
    return {s: [by_name[n] for n in split[s]] for s in splits if split[s]}


def make_dataset(output: str, splits: Dict[str, List[VideoSource]], settings: DatasetSettings, backend: str,
                 make_writer: Callable, jobs: int = 1, overwrite: bool = False, progress: bool = True,
                 shard: Optional[Tuple[int, int]] = None, merge_only: bool = False) -> List[BuiltSplit]:
    """Build every split into `output` (`backend` "lmdb" or "hdf5", written by `make_writer`), or only
    shard `(i, n)` of each into `output/shards` (LMDB, put together by a later run without a shard).

    Raises:
        DataError: no videos, --merge-only with a shard, or what `build_split` raises.
    """
    if shard is not None and merge_only:
        raise DataError("--merge-only puts shards together; it does not go with --shard")
    if not splits:
        raise DataError("no videos in the requested splits")
    built = []
    for split, sources in splits.items():
        root, writer, kind = Path(output), make_writer, backend
        if shard is not None:
            root, writer, kind = S.shard_root(output, split, shard), LmdbWriter, S.SHARD_BACKEND
        manifest = build_split(split, sources, root, settings, writer, kind, jobs=max(1, jobs), overwrite=overwrite,
                               progress=progress, shard=shard, merge_only=merge_only)
        built.append(BuiltSplit(split, manifest, [s for s in sources if s.name in manifest["videos"]], root, kind))
    return built


def save_ground_truth(source: VideoSource, settings: DatasetSettings, folder: str) -> Tuple[Path, int]:
    """Per-frame density and fixation PNGs of a DIEM video at the size its frames get in the dataset;
    returns (its folder, frames written).

    Raises:
        DataError: the video comes from a layout (which has its maps already).
    """
    if source.layout is not None:
        raise DataError("--save-ground-truth makes maps from raw gaze (DIEM); a layout already has them")
    sigma = G.Sigma(settings.sigma).pixels(G.ViewingGeometry(*settings.geometry))
    width, height = G.video_size_from_name(source.name)
    shape = ResizePolicy.parse(settings.resize).output_size(height, width)
    points = subset_gaze(source, settings, gaze_frame_count(source), 0)
    target = Path(folder) / source.name
    return target, G.write_ground_truth(points, (width, height), shape, sigma, target, settings.keep_empty)
