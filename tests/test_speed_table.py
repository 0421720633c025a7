"""README's speed table is the one benchmarks/speed_table.py makes from benchmarks/results/*.json."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_readme_speed_table_is_generated_from_the_stored_results():
    result = subprocess.run([sys.executable, "benchmarks/speed_table.py", "--check"], cwd=REPO, capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stderr
    assert len(list((REPO / "benchmarks" / "results").glob("*.json"))) >= 1
