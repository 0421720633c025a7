"""The resumable, atomic dataset build shared by the LMDB and HDF5 writers.

One split is built in a staging folder `<root>/.<split>_<backend>.partial/` holding the writer's
files and `progress.json` (settings, source hashes, sample count, finished videos). Each video's
samples are committed, then the video is recorded as finished; an interrupted build (crash, Ctrl-C)
rerun with the same inputs and settings redoes only unfinished videos, and since every sample's key
and position come from the plan alone, it ends with exactly the records of an uninterrupted build.
The inputs are compared by content (the SHA-256 of every file of every video, taken again by each run):
a video that changed between the interrupted build and its rerun is refused, naming the video and the
file, so samples of two contents are never mixed.
Only when every video is done are the outputs moved to their final names (replacing an older
dataset when `overwrite`), and the manifest `<root>/<split>_<backend>_manifest.json` (format,
version, counts, settings, source hashes, flow weights' hashes, keys' video and frame) is written
last: a dataset without its manifest is not complete. A build holds the lock `<root>/.<split>_<backend>.lock`
(`dynsal.lock`) throughout, so a second run on the same split and format is refused at once, naming the
first, instead of writing the same staging folder.
"""
from __future__ import annotations

import json
import os
import shutil
from collections import Counter, deque
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Deque, Dict, List, Optional, Sequence, Set, Tuple

from dynsal import __version__
from dynsal.data import dataset as D
from dynsal.data import shards as S
from dynsal.data.flow import FlowSettings
from dynsal.data.identity import hash_change
from dynsal.data.writer import DatasetWriter, WriterFactory
from dynsal.errors import DataError
from dynsal.files import sha256_file, sync_folder, write_json
from dynsal.lock import OutputLock
from dynsal.progress import progress_bar
from dynsal.workers import WorkerProcesses

MANIFEST_FORMAT = "dynsal-dataset"
MANIFEST_VERSION = 1
_BATCH_PER_JOB = 8


def manifest_path(root: Path, split: str, backend: str) -> Path:
    return Path(root) / f"{split}_{backend}_manifest.json"


class _Runner:
    """make_samples over batches of jobs, in this process or a pool of `jobs` processes.

    `submit` returns a function giving the batch's results in order; with a pool the batch runs while
    the caller decodes the next one (one batch in flight ahead).
    """

    def __init__(self, jobs: int):
        self.jobs = jobs
        self.pool = WorkerProcesses(jobs, one_opencv_thread=True, error=DataError).pool() if jobs > 1 else None

    def submit(self, batch: List) -> Callable[[], List]:
        if self.pool is None:
            results = [D.make_samples(job) for job in batch]
            return lambda: results
        return self.pool.map_async(D.make_samples, batch, chunksize=1).get

    def close(self) -> None:
        if self.pool is not None:
            self.pool.terminate()
            self.pool.join()


def _samples(source: D.VideoSource, items: Sequence[D.PlanItem], settings: D.DatasetSettings, runner: _Runner):
    """The Samples of one video, in frame order, computed `_BATCH_PER_JOB × jobs` frames at a time."""
    variants = settings.variants()
    batch: List = []
    in_flight: Deque = deque()

    def emit(entries, results):
        for (plan_items, _), made in zip(entries, results()):
            for item, (frame, flow, saliency) in zip(plan_items, made):
                key = D.sample_key(item.position, source.name, item.frame, variants[item.variant])
                yield D.Sample(item.position, key, frame, flow, saliency)

    for entry in D.video_jobs(source, items, settings):
        batch.append(entry)
        if len(batch) >= _BATCH_PER_JOB * runner.jobs:
            in_flight.append((batch, runner.submit([job for _, job in batch])))
            batch = []
            if len(in_flight) > 1:
                yield from emit(*in_flight.popleft())
    if batch:
        in_flight.append((batch, runner.submit([job for _, job in batch])))
    while in_flight:
        yield from emit(*in_flight.popleft())


@dataclass(frozen=True)
class BuildRequest:
    """One split to build (or resume): `build_split`'s arguments, which every step of the build reads."""

    split: str
    sources: Sequence[D.VideoSource]
    root: Path
    settings: D.DatasetSettings
    make_writer: WriterFactory
    backend: str
    jobs: int = 1
    overwrite: bool = False
    progress: bool = True
    shard: Optional[Tuple[int, int]] = None
    merge_only: bool = False

    @property
    def manifest(self) -> Path:
        return manifest_path(self.root, self.split, self.backend)

    @property
    def staging(self) -> Path:
        return self.root / f".{self.split}_{self.backend}.partial"


def build_split(split: str, sources: Sequence[D.VideoSource], root, settings: D.DatasetSettings,
                make_writer: WriterFactory, backend: str, jobs: int = 1, overwrite: bool = False,
                progress: bool = True, shard: Optional[Tuple[int, int]] = None, merge_only: bool = False) -> Dict:
    """Build (or resume) one split; returns its manifest.

    Args:
        split: split name (train, val, ...).
        sources: the split's videos.
        root: dataset folder.
        settings: what decides the contents.
        make_writer: (staging folder, split, sample count) -> the format's `DatasetWriter`.
        backend: "lmdb" or "hdf5" (names the staging folder and manifest).
        jobs: worker processes for flow (1 = this process).
        overwrite: replace a finished dataset of the same split and backend.
        progress: tqdm bar when tqdm is installed.
        shard: (i, n): build only the videos of shard i of n (`dynsal.data.shards`; `root` is then the
            shard's folder and the writer an LmdbWriter). Without it, videos held by finished shards
            in `<root>/shards` are read from there instead of computed.
        merge_only: only put finished shards together: a video no finished shard holds is an error
            (naming it) instead of being computed here.

    Raises:
        DataError: a finished dataset exists (without `overwrite`), a staging folder of a build with
            other inputs or settings exists, or bad input (naming the file).
        OutputError: another run builds the same split and format into `root`.
    """
    request = BuildRequest(split, sources, Path(root), settings, make_writer, backend, jobs, overwrite, progress, shard,
                           merge_only)
    created = _outermost_missing(request.root)
    try:
        with OutputLock(request.root / f".{split}_{backend}.lock", f"the {split} {backend} dataset in {request.root}",
                        f"dynsal make-{backend}"):
            return _build_locked(request)
    finally:
        _remove_if_empty(created, request.root)


def _build_locked(request: BuildRequest) -> Dict:
    """`build_split`'s work, while this run holds the split's lock."""
    split, sources, backend = request.split, request.sources, request.backend
    if request.manifest.exists() and not request.overwrite:
        raise DataError(f"{request.manifest}: a finished {split} {backend} dataset exists; "
                        "pass --overwrite to replace it")
    names = [s.name for s in sources]
    if len(set(names)) != len(names):
        raise DataError(f"two videos of the {split} split have the same name; video names must be unique")
    plan = D.make_plan(sources, request.settings)
    if not plan:
        raise DataError(f"the {split} split has no samples (no frames with fixations in its videos)")
    hashes = {s.name: {str(p): sha256_file(p) for p in s.files()} for s in sources}
    flow_files = {path: sha256_file(path) for path in FlowSettings.from_dict(request.settings.flow).files()}
    state = json.loads(json.dumps({"split": split, "backend": backend, "settings": request.settings.to_dict(),
                                   "sources": hashes, "flow_files": flow_files, "count": len(plan),
                                   "done": []}))  # as saved
    wanted = set(range(len(sources)))
    if request.shard is not None:
        state["shard"] = list(request.shard)
        owner = S.assign_videos(plan, len(sources), request.shard[1])
        wanted = {v for v in wanted if owner[v] == request.shard[0]}
    staging = request.staging
    progress_file = staging / "progress.json"
    if progress_file.exists():
        saved = json.loads(progress_file.read_text())
        difference = _resume_difference(saved, state)
        if difference:
            raise DataError(f"{staging}: holds an interrupted build with other inputs or settings ({difference}); "
                            "its samples must not be mixed with new ones: rerun it with the same ones, or delete the "
                            "folder to start afresh")
        if "moves" in saved:  # interrupted while moving the finished outputs into place
            return _move_outputs(request.root, staging, saved)
        state["done"] = saved["done"]
    created = _outermost_missing(staging)
    staging.mkdir(parents=True, exist_ok=True)
    try:
        write_json(progress_file, state)
        writer = request.make_writer(staging, split, len(plan))
    except BaseException:
        _discard(created)
        raise
    taken = [final for _, final in writer.outputs() if os.path.lexists(final)]
    if taken and not request.overwrite:
        writer.close()
        _discard(created)
        raise DataError(f"{taken[0]}: exists, and no finished-dataset manifest ({request.manifest.name}) says dynsal "
                        "made it; move it away, or pass --overwrite to replace it")
    for name in writer.damaged_videos(plan, sources):
        if name in state["done"]:
            state["done"].remove(name)
    by_video: Dict[int, List[D.PlanItem]] = {}
    for item in plan:
        if item.video in wanted:
            by_video.setdefault(item.video, []).append(item)
    try:
        runner = _Runner(request.jobs)
    except DataError:
        writer.close()
        raise
    shards: Dict[str, S.ShardReader] = {}
    bar = progress_bar(sum(map(len, by_video.values())), f"dynsal make-{backend}: {split}", "samples",
                       enabled=request.progress)
    try:
        if request.shard is None:
            shards = S.finished_shards(request.root, state)
        if request.merge_only:
            S.check_all_held(shards, [s.name for i, s in enumerate(sources) if by_video.get(i)], state["done"])
        for index, source in enumerate(sources):
            items = by_video.get(index, [])
            if source.name in state["done"] or not items:
                bar.update(len(items))
                continue
            if source.name in shards:
                samples = shards[source.name].samples(source, items, request.settings.variants())
            else:
                samples = _samples(source, items, request.settings, runner)
            for sample in samples:
                writer.put(sample)
                bar.update(1)
            writer.commit()
            state["done"].append(source.name)
            write_json(progress_file, state)
    finally:
        runner.close()
        writer.close()
        for reader in set(shards.values()):
            reader.close()
        bar.close()
    return _finalise(request, writer, state, plan, wanted)


def _outermost_missing(folder: Path) -> Optional[Path]:
    """The outermost of `folder` and its parents that does not exist (what mkdir(parents=True) makes)."""
    missing = None
    for path in (folder, *folder.parents):
        if path.exists():
            break
        missing = path
    return missing


def _remove_if_empty(created: Optional[Path], folder: Path) -> None:
    """Remove `folder` and its parents up to `created` (the outermost this run made, for its lock) where
    nothing is left in them, e.g. after a refusal; a folder with anything in it stays."""
    if created is None:
        return
    for path in (folder, *folder.parents):
        try:
            path.rmdir()
        except OSError:
            return
        if path == created:
            return


def _discard(created: Optional[Path]) -> None:
    """Remove the folder this run created (nothing else) when a build is refused before it starts."""
    if created is not None:
        shutil.rmtree(created)


def _identity(state: Dict) -> Dict:
    """What must match for a staging folder to be resumed: inputs, settings, count."""
    return {k: v for k, v in state.items() if k not in ("done", "manifest", "moves")}


def _resume_difference(saved: Dict, state: Dict) -> str:
    """What keeps an interrupted build (`saved`) from being resumed by this one: the first video whose files
    changed (`the video clip changed: clip.avi: sha256 1a2b… → 9f8e…`), else the other entries that differ;
    "" when it can be resumed."""
    old, new = _identity(saved), _identity(state)
    if old == new:
        return ""
    before, now = old.get("sources") or {}, new["sources"]
    for name in list(now) + [name for name in before if name not in now]:
        if before.get(name) != now.get(name):
            return f"the video {name} changed: {_files_changed(before.get(name) or {}, now.get(name) or {})}"
    return "other " + ", ".join(sorted(key for key in set(old) | set(new) if old.get(key) != new.get(key)))


def _files_changed(before: Dict[str, str], now: Dict[str, str]) -> str:
    """The first of a video's files whose SHA-256 differs (`path: sha256 … → …`), and how many more do."""
    changed = [path for path in list(now) + [p for p in before if p not in now] if before.get(path) != now.get(path)]
    more = f" and {len(changed) - 1} more file(s)" if len(changed) > 1 else ""
    return f"{changed[0]}: {hash_change(before.get(changed[0]), now.get(changed[0]))}{more}"


def _finalise(request: BuildRequest, writer: DatasetWriter, state: Dict, plan: Sequence[D.PlanItem],
              wanted: Set[int]) -> Dict:
    """Record the manifest and the moves in the progress file, then move (resumable if interrupted).

    `wanted` are the videos built (all, or a shard's); `count` counts their samples, `split_count` the plan's.
    """
    writer.finish()
    sources, variants = request.sources, request.settings.variants()
    built = [item for item in plan if item.video in wanted]
    per_video = Counter(item.video for item in built)
    state["manifest"] = {
        "format": MANIFEST_FORMAT, "version": MANIFEST_VERSION, "dynsal": __version__, "backend": request.backend,
        "split": request.split, "count": len(built), "split_count": state["count"], **_shard_entry(state),
        "settings": state["settings"], "sources": state["sources"], "flow_files": state["flow_files"],
        "videos": {sources[v].name: per_video[v] for v in sorted(wanted)},
        "keys": [D.sample_key(i.position, sources[i.video].name, i.frame, variants[i.variant]) for i in built],
        **writer.describe(),
    }
    state["moves"] = [[str(a), str(b)] for a, b in writer.outputs()]
    write_json(request.staging / "progress.json", state)
    return _move_outputs(request.root, request.staging, state)


def _confined_moves(root: Path, staging: Path, state: Dict) -> List[Tuple[Path, Path]]:
    """The recorded moves as (staging / name, root / name): only names are taken from the progress file
    (so a rerun may name the dataset folder another way), plain ones, from a file of the staging folder to
    one starting with `<split>_` — what a build of the split makes (a forged entry made a rerun remove a
    folder outside the dataset).

    Raises:
        DataError: a move that is not a plain name inside the staging folder and the dataset.
    """
    moves = []
    for move in state["moves"]:
        paths = [Path(p) for p in move] if isinstance(move, list) and len(move) == 2 else []
        names = [p.name for p in paths]
        plain = names and all(n not in ("", ".", "..") for n in names)
        if not (plain and paths[0].parent.name == staging.name and names[1].startswith(f"{state['split']}_")):
            raise DataError(f"{staging / 'progress.json'}: records a move {move!r} that is not an output of this "
                            f"dataset (altered?); delete {staging} and build again")
        moves.append((staging / names[0], root / names[1]))
    return moves


def _shard_entry(state: Dict) -> Dict:
    return {"shard": state["shard"]} if "shard" in state else {}


def _move_outputs(root: Path, staging: Path, state: Dict) -> Dict:
    """Move the outputs still in staging to their final names, then write the manifest last."""
    manifest = state["manifest"]
    moves = _confined_moves(root, staging, state)
    final_manifest = manifest_path(root, state["split"], state["backend"])
    final_manifest.unlink(missing_ok=True)
    for source_path, final_path in moves:
        if not source_path.exists():
            continue  # moved before the interruption
        if final_path.exists():
            shutil.rmtree(final_path) if final_path.is_dir() else final_path.unlink()
        os.replace(source_path, final_path)
    sync_folder(root)  # the outputs are in place before the manifest that says they are complete
    write_json(final_manifest, manifest)
    shutil.rmtree(staging)
    return manifest
