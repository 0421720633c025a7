"""The local cluster itself (tests/cluster/local_slurm.py): two nodes that run array tasks and srun steps."""
from __future__ import annotations


def test_two_nodes_run_arrays_and_steps(slurm, tmp_path):
    script = tmp_path / "task.sh"
    script.write_text("#!/bin/bash\necho $SLURM_ARRAY_TASK_ID $SLURM_ARRAY_TASK_COUNT > task-$SLURM_ARRAY_TASK_ID\n")
    slurm.run("sbatch", "--wait", "--array=0-2", "-o", "/dev/null", str(script), cwd=tmp_path)
    assert sorted(p.read_text() for p in tmp_path.glob("task-*")) == ["0 3\n", "1 3\n", "2 3\n"]
    step = slurm.run("srun", "-N2", "-n2", "bash", "-c", "echo $SLURM_PROCID $SLURMD_NODENAME", cwd=tmp_path)
    assert sorted(step.stdout.split("\n")[:2]) == ["0 n1", "1 n2"]
