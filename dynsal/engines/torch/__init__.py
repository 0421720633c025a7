"""The torch engine: Caffe nets (prototxt + caffemodel) run by PyTorch with Caffe's semantics.

- `registry`: the layer registry keyed by Caffe type, one builder per layer (`layers/`);
- `module`: a constructed net (`dynsal.caffe.graph`) as one nn.Module;
- `params`: caffemodel ⇄ module blobs, and fresh blobs from Caffe's fillers (`dynsal.caffe.fillers`);
- `net`: `TorchNet`, the `dynsal.engines.base.Net` implementation, built as its `TorchNetOptions` say;
- `precision`: fp32 / tf32 / bf16 / fp16.
"""
from dynsal.engines.torch.net import TorchNet, TorchNetOptions
from dynsal.engines.torch.registry import LAYERS, register, supported_types
from dynsal.lazy import submodule_loader

__all__ = ["LAYERS", "TorchNet", "TorchNetOptions", "register", "supported_types"]

__getattr__ = submodule_loader(__name__)  # dynsal.engines.torch.solver etc. after a bare import
