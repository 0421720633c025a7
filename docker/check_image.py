"""Build-time check of the GPU image (docker/Dockerfile): pycaffe, dynsal and torch import into one
process, agree on numpy, and pycaffe runs a forward pass (CPU mode: no GPU while an image builds)."""
import os
import tempfile

import caffe
import numpy as np
import torch

import dynsal
from dynsal.engines import pick_engine

NET = """
layer { name: "in" type: "Input" top: "data" input_param { shape { dim: 1 dim: 3 dim: 8 dim: 8 } } }
layer { name: "conv" type: "Convolution" bottom: "data" top: "conv"
  convolution_param { num_output: 2 kernel_size: 3 weight_filler { type: "constant" value: 1 } } }
layer { name: "relu" type: "ReLU" bottom: "conv" top: "conv" }
"""

caffe.set_mode_cpu()
with tempfile.TemporaryDirectory() as tmp:
    path = os.path.join(tmp, "net.prototxt")
    with open(path, "w") as f:
        f.write(NET)
    net = caffe.Net(path, caffe.TEST)
net.blobs["data"].data[...] = 1.0
out = net.forward()["conv"]
assert out.shape == (1, 2, 6, 6) and np.allclose(out, 27.0), out
assert pick_engine("auto") == "caffe", "engine auto does not pick this image's pycaffe"
print(f"image ok: caffe {caffe.__version__} (CUDA + cuDNN), dynsal {dynsal.__version__}, torch {torch.__version__} "
      f"(CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}), numpy {np.__version__}")
