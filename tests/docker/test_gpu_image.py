"""What only the GPU image (docker/Dockerfile) must show, run in it without a GPU: Caffe and torch load the very
same CUDA files, the venv's (one CUDA runtime, one cuBLAS, one cuDNN in the process), no compiler is left, and the
NVIDIA container toolkit's settings. Caffe's links (ldd), its cuDNN layers in CPU mode, its engine tests and its
agreement with bullseye's Caffe: tests/oracle/test_caffe_cuda.py, run in this image's file system."""
from __future__ import annotations

import json

VENV = "/opt/venv/"

ONE_PROCESS = """
import json, re
import caffe
import torch
caffe.set_mode_cpu()
torch.backends.cudnn.version()  # loads cuDNN where torch loads it lazily
maps = {}
for line in open("/proc/self/maps"):
    path = line.split()[-1]
    name = re.sub(r"\\.so\\.[0-9.]*$", ".so", path.rsplit("/", 1)[-1])
    if re.match(r"lib(cudart|cublas|cublasLt|curand|cudnn)\\.so$", name):
        maps.setdefault(name, set()).add(path)
print(json.dumps({"torch": torch.__version__, "cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version(),
                  "caffe": caffe.__file__, "maps": {k: sorted(v) for k, v in maps.items()}}))
"""


def test_caffe_and_torch_share_one_copy_of_each_cuda_library(gpu_image, image_folder):
    """`import caffe, torch` in one process maps each of the CUDA runtime, cuBLAS(Lt), cuRAND and cuDNN from
    one file, the venv's (torch's own wheels), and torch is the CUDA 13 build."""
    (image_folder / "one_process.py").write_text(ONE_PROCESS)
    result = gpu_image.run(["one_process.py"], image_folder, entrypoint="python3")
    shown = json.loads(result.stdout.strip().splitlines()[-1])
    assert shown["cuda"].startswith("13.") and shown["cudnn"] >= 90000, shown
    assert shown["caffe"].startswith("/opt/caffe/python/caffe/"), shown
    assert set(shown["maps"]) == {"libcudart.so", "libcublas.so", "libcublasLt.so", "libcurand.so", "libcudnn.so"}, \
        shown
    for name, paths in shown["maps"].items():
        assert len(paths) == 1 and paths[0].startswith(VENV), (name, paths)


def test_no_cuda_compiler_in_the_image(gpu_image, image_folder):
    """The runtime stage has the venv without nvcc's wheels (nvcc, nvvm, crt, cccl) and no C++ compiler."""
    result = gpu_image.run(["-c", "command -v g++ gcc cc nvcc; ls /opt/venv/lib/python3*/site-packages/nvidia/cu13/bin;"
                                  " /opt/venv/bin/pip list --format json"], image_folder, entrypoint="sh", check=False)
    *found, listed = result.stdout.strip().splitlines()
    packages = {p["name"] for p in json.loads(listed)}
    assert "torch" in packages and "dynsal" in packages
    assert not packages & {"nvidia-cuda-nvcc", "nvidia-nvvm", "nvidia-cuda-crt", "nvidia-cuda-cccl"}, packages
    assert not [line for line in found if "nvcc" in line or "cc" in line.rsplit("/", 1)[-1]], found


def test_gpu_image_hands_the_driver_in_as_nvidia_images_do(gpu_image, image_folder):
    """NVIDIA_DRIVER_CAPABILITIES with compute: without it the NVIDIA container toolkit mounts no CUDA driver."""
    shown = gpu_image.run(["-c", "echo $NVIDIA_VISIBLE_DEVICES $NVIDIA_DRIVER_CAPABILITIES"], image_folder,
                          entrypoint="sh").stdout.split()
    assert shown == ["all", "compute,utility"]
