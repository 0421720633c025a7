"""Caffe's HDF5 snapshot files (`snapshot_format: HDF5`): `.caffemodel.h5` and `.solverstate.h5`.

Weights (`Net::ToHDF5` / `Net::CopyTrainedLayersFromHDF5`): a group `data` with one group per net
layer, named like the layer (layers without parameters too), holding float32 datasets `0`, `1`, ...
of the blob shapes; a parameter shared from another layer is written only by its owner; with
`snapshot_diff` a group `diff` mirrors `data` with the gradients. Read back as a `pb.NetParameter`
whose layers carry only names and blobs, so the same matching as for binary caffemodels applies.

Solver state (`SGDSolver::SnapshotSolverStateToHDF5`): int32 datasets `iter` and `current_step`
(one element each), a null-terminated fixed-length string `learned_net`, and a group `history` of
datasets `0`, `1`, ... in the order of the binary format. Read back as a `pb.SolverState`.

Files ending in `.h5` are these; `dynsal.caffe.io` dispatches on the suffix as Caffe does.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Union

import numpy as np

from dynsal.caffe.blobs import array_to_blob, blob_to_array
from dynsal.caffe.schema import pb
from dynsal.errors import FormatError
from dynsal.files import atomic_output, library_os_error

PathLike = Union[str, os.PathLike]


def is_hdf5_path(path: PathLike) -> bool:
    """Caffe's test (`Solver::Restore`, `Net::CopyTrainedLayersFrom`): the name ends in `.h5`."""
    return str(path).endswith(".h5")


def _h5py():
    try:
        import h5py
    except ImportError:
        raise FormatError("Caffe's HDF5 snapshot files need h5py: pip install h5py") from None
    return h5py


def _open(path: PathLike, what: str):
    h5py = _h5py()
    if not Path(path).is_file():
        raise FormatError(f"{path}: no such file")
    try:
        return h5py.File(path, "r")
    except OSError as exc:
        raise FormatError(f"{path}: not a readable HDF5 {what} ({exc}); copy it again") from None


def _indexed_arrays(group, path: PathLike) -> List[np.ndarray]:
    """Datasets `0`..`n-1` of a group, in index order."""
    names = sorted(group, key=lambda n: int(n) if n.isdigit() else -1)
    if names != [str(i) for i in range(len(names))]:
        raise FormatError(f"{path}: group {group.name} holds {sorted(group)}, expected datasets 0..{len(names) - 1} "
                          "(parameters shared from another layer are not supported in HDF5 weights)")
    return [np.asarray(group[name][()], dtype=np.float32) for name in names]


def read_weights(path: PathLike):
    """A `.caffemodel.h5` as a `pb.NetParameter` of (name, blobs) layers, in the file's order.

    Raises:
        FormatError: unreadable file, no `data` group, or parameter datasets not numbered 0..n-1.
    """
    net = pb.NetParameter()
    with _open(path, "caffemodel") as handle:
        if "data" not in handle:
            raise FormatError(f"{path}: no `data` group; not a caffemodel written by Caffe's Net::ToHDF5")
        for name, group in handle["data"].items():
            layer = net.layer.add(name=name)
            for array in _indexed_arrays(group, path):
                array_to_blob(array, layer.blobs.add())
    return net


def write_weights(path: PathLike, layer_names: Sequence[str], params: Dict[str, List[np.ndarray]],
                  diffs: Optional[Dict[str, List[np.ndarray]]] = None) -> None:
    """Net::ToHDF5: a group per layer of `layer_names` (net order) under `data` (and `diff`), atomically."""
    h5py = _h5py()

    def fill(handle):
        groups = [("data", params)] + ([("diff", diffs)] if diffs is not None else [])
        for group_name, arrays in groups:
            top = handle.create_group(group_name)
            for name in layer_names:
                layer = top.create_group(name)
                for index, array in enumerate(arrays.get(name, [])):
                    layer.create_dataset(str(index), data=np.asarray(array, dtype=np.float32))

    _write_atomic(path, h5py, fill)


def read_solverstate(path: PathLike):
    """A `.solverstate.h5` as a `pb.SolverState` (iter, learned_net, current_step, history)."""
    state = pb.SolverState()
    with _open(path, "solverstate") as handle:
        missing = [key for key in ("iter", "current_step", "history") if key not in handle]
        if missing:
            raise FormatError(f"{path}: no {', '.join(missing)}; not a solver state written by Caffe's HDF5 snapshot")
        state.iter = int(handle["iter"][()].ravel()[0])
        state.current_step = int(handle["current_step"][()].ravel()[0])
        if "learned_net" in handle:
            raw = handle["learned_net"][()]
            state.learned_net = (raw.tobytes() if isinstance(raw, np.ndarray) else bytes(raw)).split(b"\0")[0].decode()
        for array in _indexed_arrays(handle["history"], path):
            array_to_blob(array, state.history.add())
    return state


def write_solverstate(path: PathLike, state) -> None:
    """SnapshotSolverStateToHDF5 from a `pb.SolverState`, atomically."""
    h5py = _h5py()

    def fill(handle):
        handle.create_dataset("iter", data=np.array([state.iter], dtype=np.int32))
        _write_c_string(handle, "learned_net", state.learned_net, h5py)
        handle.create_dataset("current_step", data=np.array([state.current_step], dtype=np.int32))
        history = handle.create_group("history")
        for index, blob in enumerate(state.history):
            history.create_dataset(str(index), data=blob_to_array(blob).astype(np.float32))

    _write_atomic(path, h5py, fill)


def _write_c_string(handle, name: str, value: str, h5py) -> None:
    """A scalar string dataset as H5LTmake_dataset_string writes it: size strlen + 1, null-terminated
    (Caffe's hdf5_load_string reads it into a C string)."""
    data = value.encode() + b"\0"
    string_type = h5py.h5t.C_S1.copy()
    string_type.set_size(len(data))
    string_type.set_strpad(h5py.h5t.STR_NULLTERM)
    dataset = h5py.h5d.create(handle.id, name.encode(), string_type, h5py.h5s.create(h5py.h5s.SCALAR))
    dataset.write(h5py.h5s.ALL, h5py.h5s.ALL, np.array(data, dtype=f"S{len(data)}"))


def _write_atomic(path: PathLike, h5py, fill) -> None:
    """Write an HDF5 file through `fill(handle)` under an exclusive temporary name (`dynsal.files`),
    then rename it over `path`."""
    try:
        with atomic_output(path) as tmp, h5py.File(tmp, "w") as handle:
            fill(handle)
    except RuntimeError as exc:  # HDF5's failed flush or close (a full disk)
        raise library_os_error(exc, path) from None
