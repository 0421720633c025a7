"""benchmarks/caffe_gpu_check.sh, the GPU anchor, dry-run on the CPU: a pack of the GPU image's CUDA 13 + cuDNN
Caffe (scripts/pack_caffe_gpu.sh --ci-build, compiled in the image's build stage) runs with its own loader and
libraries — the CUDA ones taken from the image's venv, as on a GPU machine they come from its PyTorch —
caffe_blobs runs CPU mode, the torch engine matches it blob for blob, and the JSON holds both engines' frames/s.
The scripts run the tests' interpreter ($PYTHON), not PATH's python3."""
from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

from tests.interpreter import this_python_only

REPO = Path(__file__).resolve().parents[1]


def test_caffe_gpu_check_dry_run_on_the_cpu(caffe_cuda, tmp_path):
    pack = tmp_path / "pack"
    env = this_python_only(dict(os.environ, XZ_OPT="-0"), tmp_path / "bin")
    result = subprocess.run(["bash", "scripts/pack_caffe_gpu.sh", str(pack), "--ci-build"], cwd=REPO, env=env,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    needed = set((pack / "caffe" / "cuda-libraries.txt").read_text().split())
    assert {"libcudart.so.13", "libcublas.so.13", "libcurand.so.10", "libcudnn.so.9"} <= needed
    packed = {path.name for path in (pack / "caffe" / "lib").iterdir()}
    assert {"libc.so.6", "ld-linux-x86-64.so.2", "libcaffe.so.1.0.0"} <= packed

    out = tmp_path / "out"
    build_stage = Path(re.search(r"the GPU image's build stage at (\S+)", result.stdout).group(1))
    nvidia = next(build_stage.glob("opt/venv/lib/python3*/site-packages/nvidia"))
    chroot_cuda = f"{nvidia}/cu13/lib:{nvidia}/cudnn/lib"
    env = this_python_only(dict(os.environ, OUT=str(out), PACK=str(pack), DEVICE="cpu", SIZE="48x64", REPEATS="2",
                                ROUNDS="1", NETS="ssnet stsconv", CAFFE_CUDA_LIBS=chroot_cuda), tmp_path / "bin")
    result = subprocess.run(["bash", "benchmarks/caffe_gpu_check.sh"], cwd=REPO, env=env, capture_output=True,
                            text=True, timeout=1800)
    report = json.loads((out / "caffe_gpu.json").read_text())
    assert result.returncode == 0, json.dumps(report)[-3000:] + result.stderr[-2000:]
    assert report["device"] == "cpu" and report["parity_failed"] == []
    assert sorted(report["parity"]) == ["ssnet", "stsconv"]
    for row in report["parity"].values():
        assert row["forward"] == [] and row["backward"] == []
    for engine in ("caffe", "torch"):
        assert report["speed"][engine]["frames_per_s"] > 0
    assert "libcudnn.so.9" in (out / "caffe_gpu_environment.txt").read_text()
