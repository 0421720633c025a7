"""recipes/slurm/ end to end on the local cluster with a miniature DIEM folder, so the recipes cannot rot.

pipeline.sh submits every stage (dataset array -> merge -> SSNet and TSNet on two nodes -> STSConvNet
initialisation and fine-tuning -> prediction array -> evaluation) chained by dependencies; flow.sbatch
runs as an array of its own.
"""
from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import REPO
from tests.test_recipe_diem import FRAMES, TEST_VIDEOS, VIDEOS, miniature_diem

RECIPES = REPO / "recipes" / "slurm"


def test_the_pipeline_runs_every_stage_on_the_cluster(slurm, tmp_path):
    diem, work = miniature_diem(tmp_path / "DIEM"), tmp_path / "work"
    env = dict(slurm.env, DIEM=str(diem), WORK=str(work), SHARDS="2", NODES="2", SIZE="32x48", ITERATIONS="2",
               DEVICE="cpu", DYNSAL=f"{sys.executable} -m dynsal", WAIT="1", OMP_NUM_THREADS="1")
    result = subprocess.run(["bash", str(RECIPES / "pipeline.sh")], env=env, capture_output=True, text=True,
                            timeout=1800)
    logs = "\n".join(f"== {p.name}\n{p.read_text()[-1500:]}" for p in sorted((work / "logs").glob("*.out")))
    assert result.returncode == 0, result.stdout + result.stderr + logs
    assert sorted(p.name for p in (work / "data" / "shards").iterdir()) == ["train_0of2", "train_1of2", "val_0of2",
                                                                          "val_1of2"]
    for split in ("train", "val"):
        manifest = json.loads((work / "data" / f"{split}_lmdb_manifest.json").read_text())
        assert manifest["count"] == manifest["split_count"] > 0
    for net in ("ssnet", "tsnet", "stsconv"):
        assert (work / "snapshots" / f"{net}_iter_2.caffemodel").is_file()
        assert "finished at iteration 2" in next((work / "logs").glob(f"train-{net}-*.out")).read_text()
    assert (work / "snapshots" / "stsconv_init.caffemodel").is_file()
    for name in TEST_VIDEOS:
        assert len(list((work / "maps" / name).glob("*.png"))) == FRAMES
    scores = json.loads((work / "scores.json").read_text())
    assert scores and (work / "scores.md").read_text().strip()


def test_flow_array(slurm, tmp_path):
    diem = miniature_diem(tmp_path / "DIEM")
    env_vars = {"VIDEOS": f"{diem}/video/*.mp4", "OUT": str(tmp_path / "flows"),
                "DYNSAL": f"{sys.executable} -m dynsal"}
    slurm.run("sbatch", "--wait", "--array=0-2", f"--output={tmp_path}/flow-%a.out",
              "--export=ALL," + ",".join(f"{k}={v}" for k, v in env_vars.items()), str(RECIPES / "flow.sbatch"),
              cwd=tmp_path)
    assert sorted(p.name for p in (tmp_path / "flows").iterdir()) == sorted(VIDEOS)
    assert all((tmp_path / "flows" / name / "flow_settings.json").is_file() for name in VIDEOS)
    assert sum(len((tmp_path / f"flow-{i}.out").read_text().splitlines()) for i in range(3)) == len(VIDEOS)
