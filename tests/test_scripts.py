"""The scripts/ wrappers: each runs its dynsal command and shows an example in --help."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


@pytest.mark.parametrize("script", ["train.py", "make_lmdb.py", "make_hdf5.py", "predict.py",
                                    "generate_saliencies.py", "make_gallery.py", "make_report_screenshot.py"])
def test_script_help_shows_an_example(script):
    result = subprocess.run([sys.executable, str(SCRIPTS / script), "--help"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "python scripts/" in result.stdout or "dynsal " in result.stdout
    assert "usage" in result.stdout.lower()
