"""Builders of the torch engine's layers, one module per family; importing this registers them all."""
from dynsal.engines.torch.layers import affine, data, loss, neuron, structure, vision  # noqa: F401
