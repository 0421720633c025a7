"""A real SLURM cluster on this machine for the tests: Debian's slurmctld and two slurmd "nodes" (n1, n2).

Everything lives under one folder: slurm.conf, state, spool, logs and pid files. `auth/none` and
`cred/none` (no munge), `proctrack/linuxproc`, `task/none`; the two nodes are two slurmd processes on
127.0.0.1 with their own ports (Debian's build has MULTIPLE_SLURMD). `MinJobAge=4` keeps `sbatch --wait`
polling every 2 s (at the default 300 its back-off waits 42 s and more); `AuthInfo=cred_expire=5` lets a
requeued job start again after 6 s instead of 121 s (SLURM waits the credential lifetime). The daemons
are stopped by the PIDs in their pid files, never by name.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Dict, List

from dynsal.workers import process_alive

DAEMONS = ("slurmctld", "slurmd", "sbatch", "srun", "sinfo", "scontrol")
NODES = ("n1", "n2")
CPUS_PER_NODE = 2
CONF = """\
ClusterName=dynsal
SlurmctldHost=localhost
SlurmctldPort={ctld_port}
SlurmUser=root
AuthType=auth/none
AuthInfo=cred_expire=5
CredType=cred/none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SlurmdParameters=config_overrides
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerParameters=batch_sched_delay=0,sched_min_interval=0,sched_interval=1
MailProg=/bin/true
MinJobAge=4
ReturnToService=2
KillWait=5
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool/%n
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd-%n.pid
SlurmctldLogFile={root}/log/slurmctld.log
SlurmdLogFile={root}/log/slurmd-%n.log
{nodes}
PartitionName=debug Nodes={node_list} Default=YES MaxTime=INFINITE State=UP
"""


class ClusterUnavailable(RuntimeError):
    """SLURM's programs are missing or the cluster did not come up (the message says which)."""


def missing_programs() -> List[str]:
    return [name for name in DAEMONS if shutil.which(name) is None]


def _free_ports(count: int) -> List[int]:
    """Ports free on 127.0.0.1 now (the cluster's daemons bind them a moment later)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


class LocalSlurm:
    """slurmctld + slurmd n1, n2 under `root`; `env` is the environment clients and jobs need."""

    def __init__(self, root: Path, extra_env: Dict[str, str]):
        self.root = Path(root)
        self.conf = self.root / "slurm.conf"
        self.env = {**os.environ, **extra_env, "SLURM_CONF": str(self.conf)}
        for name in [n for n in self.env if n.startswith(("SLURM_", "SBATCH_", "SRUN_", "SALLOC_"))]:
            if name != "SLURM_CONF":  # a cluster job running these tests must not leak its own
                del self.env[name]

    def start(self, timeout: float = 60) -> None:
        missing = missing_programs()
        if missing:
            raise ClusterUnavailable(f"{', '.join(missing)} not found (apt-get install slurmctld slurmd "
                                     "slurm-client)")
        ctld, *node_ports = _free_ports(1 + len(NODES))
        nodes = "\n".join(f"NodeName={n} NodeHostname=localhost NodeAddr=127.0.0.1 Port={p} CPUs={CPUS_PER_NODE}"
                          for n, p in zip(NODES, node_ports))
        for sub in ["state", "log", *(f"spool/{n}" for n in NODES)]:
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        self.conf.write_text(CONF.format(ctld_port=ctld, root=self.root, nodes=nodes, node_list=",".join(NODES)))
        self._run(["slurmctld", "-c", "-i"])
        for node in NODES:
            self._run(["slurmd", "-N", node])
        deadline = time.monotonic() + timeout  # a safety net: the nodes come up in about a second
        while time.monotonic() < deadline:
            idle = subprocess.run(["sinfo", "-h", "-N", "-t", "idle", "-o", "%N"], env=self.env, capture_output=True,
                                  text=True).stdout.split()
            if set(idle) >= set(NODES):
                return
            time.sleep(0.2)
        raise ClusterUnavailable(f"the nodes were not idle after {timeout:.0f} s; see {self.root / 'log'}")

    def _run(self, command: List[str]) -> None:
        result = subprocess.run(command, env=self.env, capture_output=True, text=True)
        if result.returncode != 0:
            raise ClusterUnavailable(f"{' '.join(command)} failed ({result.returncode}): {result.stderr.strip()}")

    def pids(self) -> List[int]:
        files = [self.root / "slurmctld.pid", *(self.root / f"slurmd-{n}.pid" for n in NODES)]
        return [int(f.read_text()) for f in files if f.exists() and f.read_text().strip().isdigit()]

    def stop(self, grace: float = 10) -> None:
        """SIGTERM to each daemon by its pid file, SIGKILL to any still alive after `grace` seconds."""
        pids = self.pids()
        for pid in pids:
            _signal(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while pids and time.monotonic() < deadline:
            pids = [pid for pid in pids if process_alive(pid)]
            time.sleep(0.1)
        for pid in pids:
            _signal(pid, signal.SIGKILL)

    def run(self, *command: str, cwd=None, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess:
        """A client command (sbatch, srun, scontrol ...) against this cluster."""
        result = subprocess.run(list(command), env=self.env, cwd=cwd, capture_output=True, text=True, timeout=timeout)
        if check and result.returncode != 0:
            raise AssertionError(f"{' '.join(command)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
        return result


def _signal(pid: int, number: int) -> None:
    try:
        os.kill(pid, number)
    except ProcessLookupError:
        pass
