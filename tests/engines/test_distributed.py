"""dynsal.engines.torch.distributed: which processes are ranks, and SLURM's variables as torch's rendezvous.
(The real thing, `srun -N2 -n2 dynsal train` on a SLURM cluster, is tests/cluster/test_training.py.)"""
from __future__ import annotations

import pytest

pytest.importorskip("torch", reason="the data-parallel helpers need torch")

from dynsal.engines.torch import distributed  # noqa: E402

STEP = {"SLURM_STEP_ID": "0", "SLURM_STEP_NUM_TASKS": "4", "SLURM_NTASKS": "4", "SLURM_PROCID": "3",
        "SLURM_LOCALID": "1", "SLURM_JOB_ID": "123456", "SLURM_STEP_NODELIST": "gpu[07-08]",
        "SLURM_JOB_NODELIST": "gpu[07-08]"}


def test_which_processes_are_ranks():
    assert distributed.launched_as_rank({"WORLD_SIZE": "2"})  # torchrun
    assert distributed.launched_as_rank(STEP)
    assert not distributed.launched_as_rank(dict(STEP, SLURM_STEP_NUM_TASKS="1", SLURM_NTASKS="1"))  # srun -n1
    batch_script = {k: v for k, v in STEP.items() if not k.startswith("SLURM_STEP")}
    assert not distributed.launched_as_rank(batch_script)  # sbatch --ntasks=4 running dynsal itself


def test_slurm_variables_become_the_rendezvous(monkeypatch):
    answers = {("show", "hostnames", "gpu[07-08]"): "gpu07\ngpu08\n",
               ("show", "node", "-o", "gpu07"): "NodeName=gpu07 Arch=x86_64 NodeAddr=10.1.0.7 NodeHostName=gpu07\n"}
    monkeypatch.setattr(distributed, "_scontrol", lambda *arguments: answers[arguments])
    assert distributed.slurm_rendezvous(dict(STEP)) == {"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1",
                                                        "MASTER_ADDR": "10.1.0.7", "MASTER_PORT": "23456"}
    assert distributed.slurm_rendezvous(dict(STEP, MASTER_PORT="29400"))["MASTER_PORT"] == "29400"
    assert distributed.slurm_rendezvous(dict(STEP, WORLD_SIZE="8")) == {}  # srun torchrun: torchrun's own
