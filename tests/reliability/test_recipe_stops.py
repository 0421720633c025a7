"""Defect 11: `dynsal train` stopped by Ctrl-C exits 130, so recipes/diem.sh (`set -e`) stops instead of going
on with an interrupted model; run again, it keeps finished datasets and resumes each net's training.

The recipe's own logic is tested here with a stand-in `dynsal` (the DYNSAL variable) that records its
arguments and makes the files the real commands make; tests/test_recipe_diem.py runs it with real dynsal."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.interrupting import SAFETY_NET_S
from tests.reliability.faults import REPO

FAKE = r"""#!/usr/bin/env bash
# a stand-in for dynsal: logs its arguments, makes the files the real command would
echo "$*" >> "$FAKE_LOG"
case "$1" in
  make-lmdb)
    split=$(echo "$*" | sed -E 's/.*--splits ([a-z]+).*/\1/')
    mkdir -p data && echo '{}' > "data/${split}_lmdb_manifest.json"
    if [[ "$*" == *--save-ground-truth* ]]; then mkdir -p ground_truth/DIY_SOS_1280x712; fi ;;
  train)
    net=$(basename "$2" _solver.prototxt)
    mkdir -p snapshots
    if [ "${FAKE_STOP:-}" = "$net" ]; then
      touch "snapshots/${net}_iter_1.caffemodel" "snapshots/${net}_iter_1.solverstate"
      echo "stopped by SIGINT at iteration 1"; exit 130
    fi
    touch "snapshots/${net}_iter_2.caffemodel" "snapshots/${net}_iter_2.solverstate" ;;
  init-weights) touch snapshots/stsconv_init.caffemodel ;;
esac
"""


def _recipe(tmp_path: Path, stop: str = ""):
    fake = tmp_path / "fake-dynsal"
    fake.write_text(FAKE)
    fake.chmod(0o755)
    (tmp_path / "DIEM" / "video").mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, DYNSAL=str(fake), FAKE_LOG=str(tmp_path / "log"), FAKE_STOP=stop)
    result = subprocess.run(["bash", str(REPO / "recipes" / "diem.sh"), str(tmp_path / "DIEM"), str(tmp_path / "work"),
                             "2"], env=env, capture_output=True, text=True, timeout=SAFETY_NET_S)
    log = (tmp_path / "log").read_text().splitlines()
    (tmp_path / "log").unlink()
    return result, [line.split() for line in log]


def test_a_stopped_training_stops_the_recipe_and_a_rerun_resumes(tmp_path):
    result, log = _recipe(tmp_path, stop="tsnet")
    assert result.returncode == 130
    assert [words[0] for words in log] == ["zoo", "make-lmdb", "make-lmdb", "train", "train"]  # no init-weights
    result, log = _recipe(tmp_path)
    assert result.returncode == 0, result.stderr
    commands = [words[:2] for words in log]
    assert "make-lmdb" not in [c[0] for c in commands]  # the finished datasets are kept
    trains = [words for words in log if words[0] == "train"]
    assert trains[0][1:4] == ["prototxt/ssnet_solver.prototxt", "--resume", "snapshots/ssnet_iter_2.solverstate"]
    assert trains[1][1:4] == ["prototxt/tsnet_solver.prototxt", "--resume", "snapshots/tsnet_iter_1.solverstate"]
    assert trains[2][1:4] == ["prototxt/stsconv_solver.prototxt", "--weights", "snapshots/stsconv_init.caffemodel"]
    assert ["init-weights", "--net", "stsconv", "--spatial", "snapshots/ssnet_iter_2.caffemodel", "--temporal",
            "snapshots/tsnet_iter_2.caffemodel"] == [w for w in log if w[0] == "init-weights"][0][:7]


def test_a_stopped_fine_tuning_resumes_without_a_new_initialisation(tmp_path):
    result, _ = _recipe(tmp_path, stop="stsconv")
    assert result.returncode == 130
    result, log = _recipe(tmp_path)
    assert result.returncode == 0, result.stderr
    assert "init-weights" not in [words[0] for words in log]
    stsconv = [words for words in log if words[0] == "train" and "stsconv" in words[1]][0]
    assert stsconv[2:4] == ["--resume", "snapshots/stsconv_iter_1.solverstate"] and "--weights" not in stsconv
    assert [w for w in log if w[0] == "predict"][0][4] == "snapshots/stsconv_iter_2.caffemodel"
