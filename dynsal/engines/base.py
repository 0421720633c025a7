"""The engine-neutral net interface that the torch and pycaffe engines both implement.

It mirrors what pycaffe's `caffe.Net` offers, with plain numpy arrays in and out:
- `inputs`, `outputs`, `blob_names`: Caffe's net input blobs (tops of `Input` layers), its outputs
  (blobs no layer consumes, alphabetically) and every blob in creation order (implicit `Split`
  tops included);
- `forward(**inputs)` runs the net (Net::Forward) and returns the outputs; every blob is readable
  afterwards with `blob(name)` (for in-place chains: the value after the last in-place layer);
- `start_forward(**inputs)` is forward that may return before the device has finished (CUDA), and
  `host_buffer(shape)` an array whose transfers to the device are fastest: pipelines fill the next
  batch while the net runs this one;
- `backward(top_diffs)` back-propagates (Net::Backward): loss tops are seeded with their loss
  weights, `top_diffs` adds diffs on output blobs; parameter diffs accumulate across calls until
  `clear_param_diffs()` (as in Caffe, where only the solver clears them);
- `params()` / `param_diffs()`: learnable blobs per layer, in Caffe's blob order;
- `save(path)`: a caffemodel (the net definition with every layer's blobs attached).
"""
from __future__ import annotations

import abc
import os
from typing import Callable, Dict, List, Sequence, Tuple, Union

import numpy as np

from dynsal.caffe import io
from dynsal.errors import DynsalError

PathLike = Union[str, os.PathLike]
Arrays = Dict[str, np.ndarray]


class PendingOutputs:
    """The outputs of a forward pass that may still be running on a device.

    Args:
        wait: returns the outputs ({output blob: array}) once the pass has finished.
    """

    def __init__(self, wait: Callable[[], Arrays]):
        self._wait = wait

    def result(self) -> Arrays:
        """Wait for the pass; its outputs, as `Net.forward` returns them."""
        return self._wait()


class Net(abc.ABC):
    """A constructed Caffe net for one phase, run by some engine."""

    #: The `pb.NetParameter` the net was built from (upgraded, unfiltered).
    net_param: object
    #: "test" or "train": the phase the net was constructed for.
    phase: str
    #: the engine that runs the net ("torch", "caffe", "onnx").
    engine: str
    #: the device it runs on, resolved ("cpu", "cuda:0"; never "auto").
    device_name: str
    #: the arithmetic it runs in ("fp32", "tf32", "bf16", "fp16").
    precision: str
    #: the caffemodel matched against the net by layer name (`dynsal.caffe.caffemodel.WeightsReport`: its `unused`
    #: layers are those Caffe ignores without a word); None for fresh blobs or an exported ONNX file.
    weights_report = None
    #: the (height, width) its inputs must have (an export with fixed shapes), None where any size runs.
    fixed_size: Tuple[int, int] | None = None

    @property
    @abc.abstractmethod
    def inputs(self) -> List[str]:
        """Names of the net's input blobs (tops of its Input layers), in layer order."""

    @property
    @abc.abstractmethod
    def outputs(self) -> List[str]:
        """Names of the blobs no layer consumes, alphabetically (Caffe keeps them in a std::set)."""

    @property
    @abc.abstractmethod
    def blob_names(self) -> List[str]:
        """Every blob of the constructed net, in creation order (as pycaffe's `net.blobs`)."""

    @abc.abstractmethod
    def forward(self, **inputs: np.ndarray) -> Arrays:
        """Run the net on `inputs` ({input blob: N×C×H×W float array}); returns {output blob: array}.

        Raises:
            DynsalError: an input is missing or unknown.
        """

    def start_forward(self, **inputs: np.ndarray) -> PendingOutputs:
        """`forward`, returning as soon as the pass is queued where the engine runs asynchronously (the
        torch engine on CUDA); the arrays in `inputs` must stay unchanged until `result()` returns.
        Engines without asynchronous passes run it now."""
        outputs = self.forward(**inputs)
        return PendingOutputs(lambda: outputs)

    def host_buffer(self, shape: Sequence[int]) -> np.ndarray:
        """An uninitialised float32 array of `shape` for inputs: page-locked where that makes transfers
        to the net's device faster and asynchronous (CUDA), plain memory elsewhere."""
        return np.empty(tuple(shape), np.float32)

    @abc.abstractmethod
    def backward(self, top_diffs: Dict[str, np.ndarray] | None = None) -> Arrays:
        """Back-propagate through the last forward pass; returns {input blob: its diff}.

        Args:
            top_diffs: optional {output blob: diff of the output's shape} added to the loss
                weights (a net without loss layers needs them).

        Raises:
            DynsalError: no forward pass to back-propagate, or nothing to back-propagate from.
        """

    @abc.abstractmethod
    def blob(self, name: str) -> np.ndarray:
        """The data of blob `name` after the last forward pass."""

    @abc.abstractmethod
    def blob_diff(self, name: str) -> np.ndarray:
        """The diff of blob `name` after the last backward pass (zeros where nothing flowed)."""

    @abc.abstractmethod
    def params(self) -> Dict[str, List[np.ndarray]]:
        """{layer name: [blob, ...]} for every layer with learnable blobs, in Caffe's blob order."""

    @abc.abstractmethod
    def param_diffs(self) -> Dict[str, List[np.ndarray]]:
        """{layer name: [diff, ...]} like `params()`: the accumulated parameter gradients."""

    @abc.abstractmethod
    def clear_param_diffs(self) -> None:
        """Zero every parameter diff (Net::ClearParamDiffs)."""

    @abc.abstractmethod
    def set_params(self, params: Dict[str, Sequence[np.ndarray]]) -> None:
        """Overwrite learnable blobs from {layer name: [array, ...]} (shapes must match exactly)."""

    @abc.abstractmethod
    def reshape(self, **shapes: Sequence[int]) -> Dict[str, tuple]:
        """Set new input shapes ({input blob: shape}); returns every blob's new shape.

        Raises:
            NetDefinitionError: a layer cannot take the new shapes.
        """

    def save(self, caffemodel_path: PathLike) -> None:
        """Write the net definition with its current learnable blobs as a caffemodel (binary, or HDF5
        when the name ends in `.h5`)."""
        io.write_caffemodel(self.net_param, self.params(), caffemodel_path, phase=self.phase.upper())

    def _check_input_names(self, names) -> None:
        """DynsalError naming the net's inputs when `names` misses one or adds an unknown one."""
        missing = [name for name in self.inputs if name not in names]
        unknown = sorted(set(names) - set(self.inputs))
        if missing or unknown:
            raise DynsalError(f"net {self.net_param.name!r} takes inputs {', '.join(self.inputs)}; "
                              f"missing: {', '.join(missing) or '-'}, unknown: {', '.join(unknown) or '-'}")

    def _check_blob(self, name: str) -> None:
        if name not in self.blob_names:
            raise DynsalError(f"net {self.net_param.name!r} has no blob {name!r}; "
                              f"blobs: {', '.join(self.blob_names)}")


class GraphNet(Net):
    """A Net built by dynsal from a constructed net (`self.graph`, `dynsal.caffe.graph.NetGraph`), whose
    names come from it."""

    graph: object

    @property
    def inputs(self) -> List[str]:
        return list(self.graph.inputs)

    @property
    def outputs(self) -> List[str]:
        return list(self.graph.outputs)

    @property
    def blob_names(self) -> List[str]:
        return list(self.graph.blobs)

    def _check_reshape_names(self, names) -> None:
        """DynsalError naming the net's inputs when `names` (of a reshape) has a blob that is not one."""
        unknown = sorted(set(names) - set(self.inputs))
        if unknown:
            raise DynsalError(f"not inputs of net {self.net_param.name!r}: {', '.join(unknown)}; "
                              f"inputs: {', '.join(self.inputs)}")
