"""benchmarks/gpu_check.sh is run on a lent GPU with minutes to spare: every flag it passes to a benchmark
must exist (checked against each script's --help here, where no GPU is needed), bash must parse it, and its
dry run on the CPU (tiny sizes, Dynamo's eager backend) must run every step and write every file."""
from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

from tests.interpreter import this_python_only

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks" / "gpu_check.sh"


def benchmark_calls():
    """[(script path, [flags])] of the `step ... $PY benchmarks/X.py ...` lines (continuations joined)."""
    text = SCRIPT.read_text().replace("\\\n", " ")
    calls = []
    for line in text.splitlines():
        match = re.match(r"step \d+ \S+ \$PY (benchmarks/\S+\.py)(.*)", line.strip())
        if match:
            flags = [word for word in shlex.split(match.group(2)) if word.startswith("--")]
            calls.append((match.group(1), flags))
    return calls


def test_gpu_check_script_parses_and_names_existing_flags():
    assert subprocess.run(["bash", "-n", str(SCRIPT)]).returncode == 0
    calls = benchmark_calls()
    assert {script for script, _ in calls} == {"benchmarks/forward.py", "benchmarks/predict.py",
                                               "benchmarks/train.py", "benchmarks/flow.py",
                                               "benchmarks/layer_profile.py"}
    for script, flags in calls:
        result = subprocess.run([sys.executable, str(REPO / script), "--help"], capture_output=True, text=True,
                                cwd=REPO)
        assert result.returncode == 0, result.stderr
        missing = [flag for flag in flags if flag not in result.stdout]
        assert not missing, f"{script} has no {missing}"
    assert "tests/engines/test_cuda.py" in SCRIPT.read_text() and (REPO / "tests/engines/test_cuda.py").is_file()


def test_gpu_check_dry_run_runs_every_step_and_writes_what_the_device_tool_returns(tmp_path):
    from dynsal.predict.pipeline import STAGES

    out = tmp_path / "out"
    env = this_python_only(dict(os.environ, DEVICE="cpu", OUT=str(out), DYNSAL_COMPILE_CACHE=str(tmp_path / "cache")),
                           tmp_path / "bin")  # the tests' interpreter, not PATH's python3
    result = subprocess.run(["bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=1200)
    assert result.returncode == 0, result.stderr
    files = sorted(p.name for p in out.iterdir())
    assert files == ["cuda_tests.txt", "flow.json", "forward_compiled.json", "forward_eager.json", "log.txt",
                     "predict.json", "profile.json", "train.json"]  # the device tool returns 8 files at most
    log = (out / "log.txt").read_text()
    assert log.count("   exit 0 after") == 7 and "skipped:" not in log, log
    eager = json.loads((out / "forward_eager.json").read_text())["results"]
    assert sorted((r["precision"], r["batch"]) for r in eager) == sorted(
        (p, b) for p in ("fp32", "tf32", "bf16") for b in (1, 2))
    assert all(r["cc_fp32"] > 0.999 and r["frames_per_s"] > 0 for r in eager)
    compiled = json.loads((out / "forward_compiled.json").read_text())["results"]
    assert {(r["precision"], r["mode"]) for r in compiled} == {("bf16", "compile"), ("tf32", "compile")}
    assert not any("compile_failure" in r for r in compiled)
    predict = json.loads((out / "predict.json").read_text())
    assert predict["frames"] == 6 and set(predict["stages"]) == set(STAGES) and predict["compile_failure"] is None
    assert 0 < predict["end_to_end_over_network_only"]["best"] <= 1
    assert 0 < predict["end_to_end_over_network_only"]["median"] <= 1
    assert json.loads((out / "train.json").read_text())["torch_cpu_fp32_iter_per_s"] > 0
    assert "LRN" in {row["type"] for row in json.loads((out / "profile.json").read_text())["types"]}
    assert json.loads((out / "flow.json").read_text())["results"]["240x320"]["dis"]["flow_fps_one_thread"] > 0
    assert re.fullmatch(r"\d+ skipped in [\d.]+s", (out / "cuda_tests.txt").read_text().splitlines()[-1])  # no GPU
    assert "| goal | measured | met |" in result.stdout and "no result in" not in result.stdout
