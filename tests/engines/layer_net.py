"""Run one Caffe layer through the torch engine: Input blobs → the layer → its tops."""
from __future__ import annotations

from typing import Dict, List, Sequence

import numpy as np

from dynsal.caffe.netspec import L, NetSpec
from dynsal.engines import load_net


def layer_net(type_name: str, inputs: Dict[str, np.ndarray], ntop: int = 1, phase: str = "test",
              params: Sequence[np.ndarray] | None = None, force_backward: bool = False, **layer_kwargs):
    """A torch-engine net `Input(inputs) → <type_name>(**layer_kwargs)` named "layer", tops t0, t1, ...

    `params` sets the layer's learnable blobs; the net is run forward once on `inputs`.
    """
    n = NetSpec("one_layer")
    tops = L.Input(name="input", ntop=len(inputs), shape=[dict(dim=list(a.shape)) for a in inputs.values()])
    tops = tops if isinstance(tops, tuple) else (tops,)
    for name, top in zip(inputs, tops):
        setattr(n, name, top)
    outs = getattr(L, type_name)(*tops, ntop=ntop, name="layer", **layer_kwargs)
    outs = outs if isinstance(outs, tuple) else (outs,)
    for i, top in enumerate(outs):
        setattr(n, f"t{i}", top)
    net_param = n.to_proto()
    net_param.force_backward = force_backward
    net = load_net(net_param, engine="torch", phase=phase, seed=0)
    if params is not None:
        net.set_params({"layer": list(params)})
    net.forward(**inputs)
    return net


def tops(net, count: int = 1) -> List[np.ndarray]:
    return [net.blob(f"t{i}") for i in range(count)]
