"""benchmarks/gpu_check.sh is run on a lent GPU with minutes to spare: every flag it passes to a benchmark
must exist (checked against each script's --help here, where no GPU is needed), and bash must parse it."""
from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

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
                                               "benchmarks/train.py", "benchmarks/flow.py"}
    for script, flags in calls:
        result = subprocess.run([sys.executable, str(REPO / script), "--help"], capture_output=True, text=True,
                                cwd=REPO)
        assert result.returncode == 0, result.stderr
        missing = [flag for flag in flags if flag not in result.stdout]
        assert not missing, f"{script} has no {missing}"
    assert "tests/engines/test_cuda.py" in SCRIPT.read_text() and (REPO / "tests/engines/test_cuda.py").is_file()
