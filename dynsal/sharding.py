"""Work split into n shards run apart (`--shard i/n`, or `--shard slurm` in a SLURM array job).

Shards are balanced by work, not by count of items: items sorted by weight (frames or samples;
largest first, then by position) go one by one to the shard with the least weight so far (lowest
index on ties) — the greedy longest-processing-time rule, within 4/3 of the best split. Every process
of an array computes the same assignment from the same inputs, so the shards cover each item once.

In a SLURM array job (`sbatch --array=A-B`, `--shard slurm`) a task is shard `SLURM_ARRAY_TASK_ID -
SLURM_ARRAY_TASK_MIN` of `SLURM_ARRAY_TASK_COUNT`. A task resubmitted alone (`sbatch --array=3 ...`) is an
array of one, so that rule cannot name its shard: `--shard slurm/N` (task id of N shards, for arrays
`--array=0-(N-1)` and any resubmitted subset) is the form for scripts that may be resubmitted.
"""
from __future__ import annotations

import os
from typing import List, Mapping, Optional, Sequence, Tuple, TypeVar

from dynsal.errors import DynsalError

T = TypeVar("T")
ARRAY_VARIABLES = ("SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_MIN", "SLURM_ARRAY_TASK_COUNT")


def parse_shard(text: str, environ: Optional[Mapping[str, str]] = None) -> Tuple[int, int]:
    """`--shard i/n` -> (i, n) with 0 <= i < n; `--shard slurm` or `slurm/n` -> this SLURM array task's shard.

    Raises:
        DynsalError: none of these forms, or `slurm` outside an array job.
    """
    if text == "slurm" or text.startswith("slurm/"):
        count = text.partition("/")[2]
        if count and not (count.isdigit() and int(count) > 0):
            raise DynsalError(f"--shard {text!r}: write it as slurm/n with n the number of shards, e.g. slurm/8")
        return slurm_array_shard(os.environ if environ is None else environ, int(count) if count else None)
    index, sep, count = text.partition("/")
    if not (sep and index.isdigit() and count.isdigit() and int(index) < int(count)):
        raise DynsalError(f"--shard {text!r}: write it as i/n with 0 <= i < n (e.g. 0/4), slurm or slurm/n")
    return int(index), int(count)


def slurm_array_shard(environ: Mapping[str, str], count: Optional[int] = None) -> Tuple[int, int]:
    """This array task's shard: (SLURM_ARRAY_TASK_ID − SLURM_ARRAY_TASK_MIN, SLURM_ARRAY_TASK_COUNT), or with
    `count` (`--shard slurm/n`) (SLURM_ARRAY_TASK_ID, n), which stays right when one task is resubmitted alone.

    Raises:
        DynsalError: a variable missing (not an array task); ids that do not number the shards 0..n-1
            (`--array=0-9:2`, `--array=1,5`, an id >= n); a lone task other than 0 without `slurm/n`
            (a resubmitted task would otherwise do the whole work as shard 0 of 1).
    """
    missing = [name for name in ARRAY_VARIABLES if not environ.get(name, "").isdigit()]
    if missing:
        raise DynsalError(f"--shard slurm: {', '.join(missing)} not set: this is not a SLURM array task; submit "
                          "with sbatch --array=0-N (N+1 shards) or give --shard i/n")
    task, first, tasks = (int(environ[name]) for name in ARRAY_VARIABLES)
    if count is not None:
        if task >= count:
            raise DynsalError(f"--shard slurm/{count}: array task {task} is not one of shards 0..{count - 1}; "
                              f"submit --array=0-{count - 1} (or a subset of those ids)")
        return task, count
    if tasks == 1 and task > 0:
        raise DynsalError(f"--shard slurm: array task {task} runs alone, so its shard is unknown; give the number "
                          f"of shards: --shard slurm/N (then sbatch --array={task} resumes shard {task} of N)")
    if not 0 <= task - first < tasks:
        raise DynsalError(f"--shard slurm: array task {task} of {tasks} starting at {first} is not one of "
                          f"{tasks} consecutive tasks; submit --array={first}-{first + tasks - 1} (no step or gaps) "
                          "or use --shard slurm/N")
    return task - first, tasks


def balance(weights: Sequence[int], shards: int) -> List[int]:
    """The shard of every item (module docstring: heaviest first onto the least loaded shard)."""
    load, owner = [0] * shards, [0] * len(weights)
    for item in sorted(range(len(weights)), key=lambda i: (-weights[i], i)):
        target = min(range(shards), key=lambda s: (load[s], s))
        owner[item] = target
        load[target] += weights[item]
    return owner


def select(items: Sequence[T], weights: Sequence[int], shard: Tuple[int, int]) -> List[T]:
    """The items of shard (i, n), in their order, with `balance` over `weights`."""
    owner = balance(weights, shard[1])
    return [item for item, o in zip(items, owner) if o == shard[0]]
