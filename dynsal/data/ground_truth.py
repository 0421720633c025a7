"""Ground truth of the video saliency datasets: their folder layouts, names and map/fixation readers.

One per-video layout serves DHF1K, Hollywood-2 and UCF-Sports (as distributed with ACLNet and read
by UNISAL) and what `dynsal make-lmdb --save-ground-truth` writes:

    ROOT/<video>/images/<frame>.png         frames (DHF1K: in the videos instead, `video/001.AVI` ...)
    ROOT/<video>/maps/<frame>.png           continuous maps (8-bit; deeper maps are scaled by their max)
    ROOT/<video>/fixation/<frame>.png       binary fixation maps (0/1 or 0/255)
    ROOT/<video>/fixation/maps/<frame>.mat  ... or as MATLAB files (variable `I`), as DHF1K ships them

with each dataset's own names (frames are matched by file stem):

- DHF1K: ROOT `annotation`; video folders `0001` … `0700` (the video `001.AVI` ↔ `0001`); frames
  `0001.png` … (1-based, 4 digits);
- Hollywood-2: ROOT `training` or `testing`; video folders `actioncliptrain00001_1` (clip 00001, shot 1);
  frames `actioncliptrain00001_00001.png` (the clip's frame number, 5 digits, continuing across shots);
- UCF-Sports: ROOT `training` or `testing`; video folders `Diving-Side-001`; frames
  `Diving-Side_001_001.png` (1-based, 3 digits).

`dhf1k_video_name` / `dhf1k_frame_name` give DHF1K's names for a video file and its frames, so
predictions can be written under exactly the annotation's names (`dynsal predict --layout dhf1k`).
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
from PIL import Image, UnidentifiedImageError

from dynsal.data.video import IMAGE_SUFFIXES, natural_key
from dynsal.errors import DataError, EvaluationError

PathLike = Union[str, Path]
MAP_SUFFIXES = (".png", ".jpg", ".jpeg")
IMAGES_FOLDER, MAPS_FOLDER, FIXATION_FOLDER = "images", "maps", "fixation"
#: layouts predictions can be written in: `flat` = <video>/<frame>.png, `dhf1k` = <video>/maps/<frame>.png
#: with DHF1K's video and frame names
LAYOUTS = ("flat", "dhf1k")


# --------------------------------------------------------------------------------------------------
# names


def dhf1k_video_name(name: str) -> str:
    """DHF1K's annotation folder of a video: `001` (from `001.AVI`) → `0001`; other names unchanged."""
    return f"{int(name):04d}" if name.isdigit() else name


def dhf1k_frame_name(index: int) -> str:
    """DHF1K's name of the frame with 0-based decoding index `index`: 0 → `0001` (1-based, 4 digits)."""
    return f"{index + 1:04d}"


def files_by_stem(folder: Path, suffixes: Sequence[str]) -> Dict[str, Path]:
    """{stem: path} of the files in `folder` with one of `suffixes` (in name order; the first file of a
    stem wins), or {} when the folder does not exist."""
    found: Dict[str, Path] = {}
    if not folder.is_dir():
        return found
    for path in sorted(folder.iterdir()):
        if path.is_file() and path.suffix.lower() in suffixes:
            found.setdefault(path.stem, path)
    return found


def fixation_files(video_dir: Path) -> Dict[str, Path]:
    """{frame: fixation file} of a video folder: `fixation/<frame>.png`, else `fixation/<frame>.mat`, else
    `fixation/maps/<frame>.mat` (DHF1K)."""
    files = files_by_stem(video_dir / FIXATION_FOLDER / MAPS_FOLDER, (".mat",))
    files.update(files_by_stem(video_dir / FIXATION_FOLDER, (".mat",)))
    files.update(files_by_stem(video_dir / FIXATION_FOLDER, (".png",)))  # PNG preferred over .mat
    return files


def map_files(video_dir: Path) -> Dict[str, Path]:
    """{frame: map file} of a video folder's `maps/`."""
    return files_by_stem(video_dir / MAPS_FOLDER, MAP_SUFFIXES)


def prediction_files(pred_dir: Path, video: str) -> Dict[str, Path]:
    """{frame: predicted map} of a video: `PRED/<video>/maps/` when it exists (`--layout dhf1k`), else
    `PRED/<video>/` (`--layout flat`)."""
    folder = pred_dir / video
    return files_by_stem(folder / MAPS_FOLDER if (folder / MAPS_FOLDER).is_dir() else folder, MAP_SUFFIXES)


# --------------------------------------------------------------------------------------------------
# readers


def _open_lazily(path: Path):
    """The PIL image of `path`, header read and nothing decoded; refused when it has more pixels than PIL's
    decompression-bomb limit (`Image.MAX_IMAGE_PIXELS`, 89,478,485 by default)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            return Image.open(path)
        except (Image.DecompressionBombWarning, Image.DecompressionBombError) as exc:
            raise EvaluationError(f"{path}: too large to be a saliency map ({exc.args[0].split(',')[0]}); resize "
                                  "it, or raise PIL.Image.MAX_IMAGE_PIXELS in Python if it is genuine") from None


def _open_image(path: Path) -> np.ndarray:
    try:
        with _open_lazily(path) as image:
            if image.mode == "P":
                image = image.convert("RGBA" if "transparency" in image.info else "RGB")
            elif image.mode == "LA":  # grey levels with alpha: the alpha is not part of the map
                image = image.convert("L")
            array = np.asarray(image)
    except (OSError, UnidentifiedImageError, ValueError) as exc:
        raise EvaluationError(f"{path}: cannot read the image ({exc}); re-save it as PNG") from exc
    if array.ndim == 3:
        colour = array[..., :3]
        if not (np.array_equal(colour[..., 0], colour[..., 1])
                and np.array_equal(colour[..., 0], colour[..., 2])):
            raise EvaluationError(f"{path}: a colour image; saliency maps must be single-channel grey "
                                  "levels (save the raw map, not a heat-map rendering)")
        array = colour[..., 0]
    return array


def read_map(path: PathLike) -> np.ndarray:
    """A saliency or density map from an image file.

    Args:
        path: PNG/JPEG file; grey levels (8 or 16 bit, or float), or RGB with equal channels.

    Returns:
        H×W array of the stored values in their own dtype (uint8, uint16, int32 or float32), not
        rescaled: the metrics normalise, and resizing treats integer maps as MATLAB does.

    Raises:
        EvaluationError: if the file cannot be read or holds a colour image.
    """
    return _open_image(Path(path))


def _binary(array: np.ndarray, path: Path) -> np.ndarray:
    if array.ndim != 2:
        raise EvaluationError(f"{path}: a fixation map must be 2-D, got shape {array.shape}")
    if array.dtype.kind not in "biuf":
        raise EvaluationError(f"{path}: a fixation map holds numbers, not {array.dtype} values")
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        raise EvaluationError(f"{path}: the fixation map holds NaN or infinite values; give a 0/1 map of "
                              "fixated pixels")
    on = array != 0
    levels = np.unique(array[on])
    if levels.size > 1:
        raise EvaluationError(f"{path}: fixation map is not binary ({levels.size} different non-zero "
                              "values); give a 0/1 or 0/255 map of fixated pixels")
    return on


def _read_mat(path: Path) -> np.ndarray:
    try:
        from scipy.io import loadmat
    except ImportError as exc:
        raise EvaluationError(f"{path}: reading .mat fixations needs scipy: pip install \"dynsal[eval]\"") from exc
    try:
        content = loadmat(str(path))
    except (NotImplementedError, ValueError, OSError) as exc:
        raise EvaluationError(f"{path}: cannot read the .mat file ({exc}); MATLAB v7.3 files need "
                              "converting, e.g. save('-v7', ...)") from exc
    arrays = {k: v for k, v in content.items() if not k.startswith("__") and np.ndim(v) == 2}
    if "I" in arrays:
        return np.asarray(arrays["I"])
    if len(arrays) == 1:
        return np.asarray(next(iter(arrays.values())))
    raise EvaluationError(f"{path}: expected a variable `I` or a single 2-D variable, found "
                          f"{sorted(arrays) or 'none'}")


def read_fixations(path: PathLike) -> np.ndarray:
    """A binary fixation map from a PNG (0/1 or 0/255) or a MATLAB .mat file.

    Args:
        path: image file, or .mat file with the map in variable `I` (DHF1K) or its only 2-D variable.

    Returns:
        H×W bool array, True at fixated pixels.

    Raises:
        EvaluationError: if the file cannot be read or the map has more than one non-zero value.
    """
    path = Path(path)
    array = _read_mat(path) if path.suffix.lower() == ".mat" else _open_image(path)
    return _binary(array, path)


def to_uint8(density: np.ndarray) -> np.ndarray:
    """A [0, 1] map → uint8 0–255 (rounded)."""
    return np.clip(np.rint(density * 255), 0, 255).astype(np.uint8)


def read_layout_map(path: PathLike) -> np.ndarray:
    """A layout's map file → uint8 H×W (8-bit maps as stored; deeper maps scaled by their max to 255)."""
    array = read_map(path)
    if array.dtype == np.uint8:
        return array
    array = array.astype(np.float64)
    peak = array.max()
    return to_uint8(array / peak if peak > 0 else array)


# --------------------------------------------------------------------------------------------------
# training layouts: <split>/<video>/{images,maps,fixation}


@dataclass(frozen=True)
class LayoutVideo:
    """One video of a per-frame layout: frame images, maps and (optional) fixation files by frame."""

    name: str
    images: Tuple[Path, ...]
    maps: Tuple[Path, ...]
    fixations: Tuple[Optional[Path], ...]


def read_layout(split_dir: PathLike) -> List[LayoutVideo]:
    """The videos of `<split_dir>/<video>/{images,maps,fixation}` (frames matched by file stem).

    Raises:
        DataError: no videos, or a frame image without a map (or a map without a frame), named.
    """
    split_dir = Path(split_dir)
    if not split_dir.is_dir():
        raise DataError(f"{split_dir}: not a folder")
    videos = []
    for video_dir in sorted(p for p in split_dir.iterdir() if p.is_dir()):
        images = files_by_stem(video_dir / IMAGES_FOLDER, IMAGE_SUFFIXES)
        maps = map_files(video_dir)
        fixations = fixation_files(video_dir)
        if not images:
            raise DataError(f"{video_dir}/{IMAGES_FOLDER}: no frame images")
        for missing, where in ((sorted(set(images) - set(maps)), MAPS_FOLDER),
                               (sorted(set(maps) - set(images)), IMAGES_FOLDER)):
            if missing:
                raise DataError(f"{video_dir}/{where}: no file for frame(s) {', '.join(missing[:5])}"
                                f"{' ...' if len(missing) > 5 else ''}: every frame needs an image and a map")
        stems = sorted(images, key=lambda s: natural_key(Path(s)))
        videos.append(LayoutVideo(video_dir.name, tuple(images[s] for s in stems), tuple(maps[s] for s in stems),
                                  tuple(fixations.get(s) for s in stems)))
    if not videos:
        raise DataError(f"{split_dir}: no video folders (<video>/{IMAGES_FOLDER}, <video>/{MAPS_FOLDER})")
    return videos
