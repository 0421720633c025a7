"""`--shard i/n` and `--shard slurm[/n]` (dynsal.sharding): the parsing, SLURM's array variables, the balance."""
from __future__ import annotations

import pytest

from dynsal.errors import DynsalError
from dynsal.sharding import balance, parse_shard, select


def array(task, first, count):
    return {"SLURM_ARRAY_TASK_ID": str(task), "SLURM_ARRAY_TASK_MIN": str(first),
            "SLURM_ARRAY_TASK_COUNT": str(count)}


def test_explicit_shards():
    assert parse_shard("1/3", {}) == (1, 3)
    for text in ("3/3", "1", "a/b", "-1/2"):
        with pytest.raises(DynsalError, match=f"--shard '{text}': write it as i/n with 0 <= i < n"):
            parse_shard(text, {})


def test_an_array_task_is_its_shard():
    assert parse_shard("slurm", array(0, 0, 3)) == (0, 3)
    assert parse_shard("slurm", array(7, 5, 3)) == (2, 3)  # --array=5-7
    assert parse_shard("slurm/4", array(3, 3, 1)) == (3, 4)  # task 3 resubmitted alone
    assert parse_shard("slurm", array(0, 0, 1)) == (0, 1)


@pytest.mark.parametrize("text,env,message", [
    ("slurm", {}, "--shard slurm: SLURM_ARRAY_TASK_ID, SLURM_ARRAY_TASK_MIN, SLURM_ARRAY_TASK_COUNT not set: this "
                  "is not a SLURM array task; submit with sbatch --array=0-N"),
    ("slurm", array(3, 3, 1), "--shard slurm: array task 3 runs alone, so its shard is unknown; give the number of "
                              "shards: --shard slurm/N"),
    ("slurm", array(8, 0, 5), "--shard slurm: array task 8 of 5 starting at 0 is not one of 5 consecutive tasks"),
    ("slurm/4", array(4, 0, 5), "--shard slurm/4: array task 4 is not one of shards 0..3"),
    ("slurm/x", array(0, 0, 1), "--shard 'slurm/x': write it as slurm/n"),
], ids=["not-an-array", "resubmitted-alone", "array-with-a-step", "id-beyond-n", "bad-count"])
def test_what_cannot_name_a_shard(text, env, message):
    with pytest.raises(DynsalError, match=message.replace(".", r"\.").replace("/", "/")):
        parse_shard(text, env)


def test_shards_are_balanced_by_weight_not_count():
    weights = [10, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]  # one long video, ten short ones
    assert balance(weights, 2) == [0] + [1] * 10
    assert [sum(w for w, o in zip(weights, balance(weights, 2)) if o == s) for s in range(2)] == [10, 10]
    assert balance([5, 3, 3, 1], 5) == [0, 1, 2, 3]  # more shards than items: the last stays empty
    items = list("abcdefghijk")
    parts = [select(items, weights, (s, 3)) for s in range(3)]
    assert sorted(sum(parts, [])) == items and all(p == sorted(p) for p in parts)  # each once, in order
