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

Reading a file from anyone (`checked_dataset`): every dataset is checked before its data is read —
a dataset (not a group), of float or integer values (Caffe's `hdf5_load_nd_dataset` takes only the
H5T_FLOAT and H5T_INTEGER classes: strings, compounds, complex numbers and enums are refused), at
most INT_MAX values (Caffe's Blob limit), and holding the bytes its shape declares (a few-KB file
may declare a 50000×50000 dataset that was never written: reading it would allocate 9.3 GiB of
fill values). A compressed dataset may expand at most `MAX_EXPANSION` times.
"""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Union

import numpy as np

from dynsal.caffe.blobs import MAX_BLOB_VALUES, array_to_blob, blob_to_array
from dynsal.caffe.schema import pb
from dynsal.errors import FormatError
from dynsal.files import atomic_output, library_os_error

PathLike = Union[str, os.PathLike]
MAX_EXPANSION = 1000  # declared bytes per stored byte accepted from a compressed (filtered) dataset


def is_hdf5_path(path: PathLike) -> bool:
    """Caffe's test (`Solver::Restore`, `Net::CopyTrainedLayersFrom`): the name ends in `.h5`."""
    return str(path).endswith(".h5")


def require_h5py():
    try:
        import h5py
    except ImportError:
        raise FormatError("Caffe's HDF5 files need h5py: pip install h5py") from None
    return h5py


def open_file(path: PathLike, what: str, name: Optional[str] = None):
    """An HDF5 file opened for reading.

    Raises:
        FormatError: missing, or not a readable HDF5 file (truncated, corrupt); the message names the
            file as `name` (default: its path) and says it should be `what`.
    """
    h5py = require_h5py()
    name = name or str(path)
    if not Path(path).is_file():
        raise FormatError(f"{name}: no such file")
    try:
        return h5py.File(path, "r")
    except OSError as exc:
        raise FormatError(f"{name}: not a readable HDF5 {what} ({exc}); the file is truncated or corrupt, copy or "
                          "write it again") from None


def checked_dataset(node, path: PathLike, kinds: str = "fiu"):
    """`node` when it is a dataset whose declared values may be read (module docstring).

    Args:
        node: an h5py object from the file.
        path: the file, for messages.
        kinds: accepted numpy dtype kinds (default float, signed and unsigned integer).

    Raises:
        FormatError: one line naming the file and the object: a group, another value type, too many
            values, or fewer stored bytes than declared.
    """
    h5py = require_h5py()
    if not isinstance(node, h5py.Dataset):
        kind = "group" if isinstance(node, h5py.Group) else type(node).__name__.lower()
        raise FormatError(f"{path}: {node.name} is a {kind}, expected a dataset")
    if node.shape is None:
        raise FormatError(f"{path}: dataset {node.name} has an empty dataspace (no values)")
    dtype = node.dtype
    if dtype.kind not in kinds:
        raise FormatError(f"{path}: dataset {node.name} holds {_value_type(dtype, h5py)} values; Caffe reads "
                          f"{'numbers (float or integer)' if 'f' in kinds else 'text'} here")
    count = math.prod(node.shape)
    if count > MAX_BLOB_VALUES:
        raise FormatError(f"{path}: dataset {node.name} declares shape {node.shape}, {count:,} values; Caffe's blobs "
                          f"hold at most {MAX_BLOB_VALUES:,}")
    declared, stored = count * dtype.itemsize, node.id.get_storage_size()
    expansion = MAX_EXPANSION if node.id.get_create_plist().get_nfilters() else 1
    if stored * expansion < declared:
        raise FormatError(f"{path}: dataset {node.name} declares shape {node.shape} ({declared:,} bytes) but the file "
                          f"stores {stored:,} bytes of it; the file is truncated or forged")
    return node


def _value_type(dtype: np.dtype, h5py) -> str:
    if h5py.check_string_dtype(dtype) is not None or dtype.kind in "SUO":
        return "string"
    if dtype.kind == "c":
        return "complex"
    if dtype.kind == "b" or h5py.check_enum_dtype(dtype) is not None:
        return "boolean/enum"
    return "compound" if dtype.names else str(dtype)


def _indexed_arrays(group, path: PathLike) -> List[np.ndarray]:
    """Datasets `0`..`n-1` of a group, in index order, checked before they are read."""
    if not isinstance(group, require_h5py().Group):
        raise FormatError(f"{path}: {group.name} is a dataset, expected a group of datasets 0, 1, ...")
    names = sorted(group, key=lambda n: int(n) if n.isdigit() else -1)
    if names != [str(i) for i in range(len(names))]:
        raise FormatError(f"{path}: group {group.name} holds {sorted(group)}, expected datasets 0..{len(names) - 1} "
                          "(parameters shared from another layer are not supported in HDF5 weights)")
    return [np.asarray(checked_dataset(group[name], path)[()], dtype=np.float32) for name in names]


def read_weights(path: PathLike):
    """A `.caffemodel.h5` as a `pb.NetParameter` of (name, blobs) layers, in the file's order.

    Raises:
        FormatError: unreadable file, no `data` group, or parameter datasets not numbered 0..n-1.
    """
    net = pb.NetParameter()
    with open_file(path, "caffemodel") as handle:
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
    h5py = require_h5py()

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
    with open_file(path, "solverstate") as handle:
        missing = [key for key in ("iter", "current_step", "history") if key not in handle]
        if missing:
            raise FormatError(f"{path}: no {', '.join(missing)}; not a solver state written by Caffe's HDF5 snapshot")
        state.iter = _scalar(handle["iter"], path)
        state.current_step = _scalar(handle["current_step"], path)
        if "learned_net" in handle:
            raw = checked_dataset(handle["learned_net"], path, kinds="SO")[()]
            state.learned_net = _c_string(raw, path)
        for array in _indexed_arrays(handle["history"], path):
            array_to_blob(array, state.history.add())
    return state


def _scalar(node, path: PathLike) -> int:
    """The one integer of a dataset such as `iter` (Caffe's hdf5_load_int)."""
    values = np.asarray(checked_dataset(node, path, kinds="iu")[()]).ravel()
    if values.size != 1:
        raise FormatError(f"{path}: dataset {node.name} holds {values.size} values, expected one integer")
    return int(values[0])


def _c_string(raw, path: PathLike) -> str:
    """The text of a null-terminated string dataset (hdf5_load_string)."""
    data = raw.tobytes() if isinstance(raw, np.ndarray) else raw if isinstance(raw, bytes) else str(raw).encode()
    try:
        return data.split(b"\0")[0].decode()
    except UnicodeDecodeError:
        raise FormatError(f"{path}: learned_net is not text") from None


def write_solverstate(path: PathLike, state) -> None:
    """SnapshotSolverStateToHDF5 from a `pb.SolverState`, atomically."""
    h5py = require_h5py()

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
