"""The ONNX lowerings of Caffe layers, one module per family (importing this package registers them)."""
from dynsal.export.layers import affine, loss, neuron, structure, vision  # noqa: F401
