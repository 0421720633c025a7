"""Data-parallel training processes: torchrun's variables, or SLURM's under `srun`.

torch.distributed's `env://` rendezvous reads RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and
MASTER_PORT; torchrun sets them. In a SLURM job step (`srun -N2 -n8 dynsal train ...`, one task per
GPU) they are derived from SLURM's own: RANK = SLURM_PROCID, WORLD_SIZE = SLURM_STEP_NUM_TASKS (else
SLURM_NTASKS), LOCAL_RANK = SLURM_LOCALID, MASTER_ADDR = the address of the step's first node (rank 0
runs there; `scontrol show hostnames` expands the node list, `scontrol show node` gives its NodeAddr),
MASTER_PORT = $MASTER_PORT, else 20000 + SLURM_JOB_ID mod 20000 (the same on every node, different for
concurrent jobs). The batch script itself (no SLURM_STEP_ID) and `srun torchrun ...` (torchrun sets
WORLD_SIZE for its children) are left alone. Gradients go through NCCL on GPUs, gloo on CPUs.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from typing import Dict, MutableMapping, Optional

import torch
import torch.distributed as dist

from dynsal.errors import DynsalError

RENDEZVOUS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


def _step_tasks(environ: MutableMapping[str, str]) -> int:
    """The task count of the SLURM job step this process is a task of (0 outside a step)."""
    if "SLURM_STEP_ID" not in environ:
        return 0
    return int(environ.get("SLURM_STEP_NUM_TASKS") or environ.get("SLURM_NTASKS", "1"))


def launched_as_rank(environ: Optional[MutableMapping[str, str]] = None) -> bool:
    """Whether a launcher made this process one of several ranks (torchrun's WORLD_SIZE, or an srun step of
    several tasks)."""
    environ = os.environ if environ is None else environ
    return "WORLD_SIZE" in environ or _step_tasks(environ) > 1


def slurm_rendezvous(environ: MutableMapping[str, str]) -> Dict[str, str]:
    """The torch.distributed variables of this SLURM step's task ({} outside a step of several tasks or
    where WORLD_SIZE is set already).

    Raises:
        DynsalError: scontrol missing or failing (the first node cannot be found).
    """
    tasks = _step_tasks(environ)
    if "WORLD_SIZE" in environ or tasks <= 1:
        return {}
    nodes = environ.get("SLURM_STEP_NODELIST") or environ["SLURM_JOB_NODELIST"]
    first = _scontrol("show", "hostnames", nodes).split()[0]
    address = re.search(r"\bNodeAddr=(\S+)", _scontrol("show", "node", "-o", first))
    port = environ.get("MASTER_PORT") or str(20000 + int(environ.get("SLURM_JOB_ID", "0")) % 20000)
    return {"RANK": environ["SLURM_PROCID"], "WORLD_SIZE": str(tasks), "LOCAL_RANK": environ.get("SLURM_LOCALID", "0"),
            "MASTER_ADDR": address.group(1) if address else first, "MASTER_PORT": port}


def _scontrol(*arguments: str) -> str:
    if shutil.which("scontrol") is None:
        raise DynsalError("training in a SLURM step of several tasks needs `scontrol` on PATH to find the first "
                          "node (or set RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT yourself)")
    result = subprocess.run(["scontrol", *arguments], capture_output=True, text=True)
    if result.returncode != 0 or not result.stdout.strip():
        raise DynsalError(f"scontrol {' '.join(arguments)} failed: {result.stderr.strip() or 'no output'}")
    return result.stdout


def world_size(environ: Optional[MutableMapping[str, str]] = None) -> int:
    return int((os.environ if environ is None else environ).get("WORLD_SIZE", "1"))


def rank(environ: Optional[MutableMapping[str, str]] = None) -> int:
    return int((os.environ if environ is None else environ).get("RANK", "0"))


def join_process_group(device: str, environ: Optional[MutableMapping[str, str]] = None) -> str:
    """Under torchrun or srun with several tasks: set the rendezvous variables (SLURM's, see the module
    docstring) and join the process group; returns this rank's device (cuda:<LOCAL_RANK> where the task
    sees several GPUs, cuda:0 where SLURM gave it one)."""
    environ = os.environ if environ is None else environ
    environ.update(slurm_rendezvous(environ))
    if world_size(environ) <= 1:
        return device
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
    if not device.startswith("cuda"):
        return device
    return f"cuda:{environ.get('LOCAL_RANK', '0') if torch.cuda.device_count() > 1 else 0}"


def leave_process_group() -> None:
    """Close the process group before exit (gloo/NCCL abort the process otherwise)."""
    if world_size() > 1 and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
