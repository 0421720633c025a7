"""Reading and writing Caffe's files: prototxt (text), caffemodel/binaryproto (binary), solver
prototxt, solverstate and mean files.

Nets and solvers are upgraded on load exactly as Caffe upgrades them (`dynsal.caffe.upgrade`).
Binary files have no 64 MB cap: Caffe reads protos up to 2 GB, and so does dynsal (the C++
protobuf runtime of Debian bullseye needs `SetAllowOversizeProtos`, turned on here).
Writes are atomic (`dynsal.files.write_atomic`): a complete file or none, with the user's umask.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Union

import numpy as np
from google.protobuf import message as pb_message
from google.protobuf import text_format

from dynsal.caffe import hdf5, upgrade
from dynsal.caffe.blobs import array_to_blob, blob_problem, blob_to_array
from dynsal.caffe.caffemodel import attach_blobs
from dynsal.caffe.graph import build_graph
from dynsal.caffe.schema import pb
from dynsal.errors import DynsalError, FormatError
from dynsal.files import write_atomic

PathLike = Union[str, os.PathLike]
BINARY_SUFFIXES = (".caffemodel", ".binaryproto", ".solverstate", ".pb")

try:  # protobuf 3.x C++ runtime: lift its default 64 MB message limit (VGG-size models are 550 MB)
    from google.protobuf.pyext import _message as _cpp_message

    _cpp_message.SetAllowOversizeProtos(True)
except (ImportError, AttributeError):
    pass


def _read_bytes(path: PathLike) -> bytes:
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise FormatError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise FormatError(f"{path}: is a folder, expected a file") from None


def read_text(path: PathLike, message_class):
    """Parse a text-format file (prototxt) into a new `message_class` message.

    Raises:
        FormatError: "<path>:<line>:<col>: <what is wrong>" for malformed text.
    """
    data = _read_bytes(path)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise FormatError(f"{path}: not a text prototxt (binary content; is it a caffemodel?)") from None
    message = message_class()
    try:
        text_format.Parse(text, message)
    except text_format.ParseError as exc:
        raise FormatError(f"{path}:{_text_error_location(exc)}") from None
    return message


def _text_error_location(exc: text_format.ParseError) -> str:
    """'LINE:COL: message' from a protobuf ParseError (its text already starts with 'LINE:COL : ')."""
    text = str(exc)
    head, sep, rest = text.partition(" : ")
    return f"{head}: {rest}" if sep else text


def read_binary(path: PathLike, message_class, what: str = "binary protobuf"):
    """Parse a binary protobuf file into a new `message_class` message.

    Raises:
        FormatError: one line naming the file when it is truncated or not that kind of file.
    """
    data = _read_bytes(path)
    try:
        message = message_class.FromString(data)
    except (pb_message.DecodeError, RuntimeError, ValueError) as exc:
        raise FormatError(f"{path}: not a readable {what} (truncated or corrupt: {exc}); "
                          "download or copy it again") from None
    return message


def is_binary_file(path: PathLike) -> bool:
    """Guess whether a Caffe file is binary: by suffix, else by looking for non-text bytes."""
    suffix = Path(path).suffix.lower()
    if suffix in BINARY_SUFFIXES:
        return True
    if suffix in (".prototxt", ".pbtxt", ".txt"):
        return False
    head = _read_bytes(path)[:4096]
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return any(b < 9 or 13 < b < 32 for b in head)


def write_text(message, path: PathLike) -> None:
    """Write a message as text format (prototxt), atomically."""
    write_atomic(path, text_format.MessageToString(message).encode("utf-8"))


def write_binary(message, path: PathLike) -> None:
    """Write a message as binary protobuf (caffemodel, solverstate, binaryproto), atomically."""
    write_atomic(path, message.SerializeToString())


def read_net(path: PathLike, upgrade_net: bool = True):
    """Read a net definition (prototxt) or a caffemodel (binary, or HDF5 when the name ends in `.h5`),
    upgraded to the current format.

    Returns:
        `pb.NetParameter`; legacy inputs, V1 `layers` and old data-transform fields are upgraded
        as Caffe's `UpgradeNetAsNeeded` does. An HDF5 caffemodel gives layers of names and blobs only.
    """
    if hdf5.is_hdf5_path(path):
        return hdf5.read_weights(path)
    if is_binary_file(path):
        net = read_binary(path, pb.NetParameter, "caffemodel")
        for layer in list(net.layer) + list(net.layers):
            _check_blobs(layer.blobs, path, f"layer {layer.name!r} ")
    else:
        net = read_text(path, pb.NetParameter)
    return upgrade.upgrade_net(net, source=str(path)) if upgrade_net else net


def as_net_param(source, what: str):
    """`source` as a `pb.NetParameter`: a path is read (and upgraded) with `read_net`, a message or None is
    returned as it is; `what` "net" refuses a caffemodel given as the definition."""
    if source is None or not isinstance(source, (str, os.PathLike)):
        return source
    if what == "net" and is_binary_file(source):
        raise DynsalError(f"{source}: a net definition (prototxt) is needed here, not a caffemodel")
    return read_net(source)


#: suffixes Caffe's text files go by; a file with another suffix that is no prototxt is "not a Caffe file"
TEXT_SUFFIXES = ("", ".prototxt", ".pbtxt", ".pt", ".txt")
EXPECTED = ("a net or solver prototxt, a .caffemodel or .solverstate (binary or .h5), or a mean-file "
            ".binaryproto")


def file_kind(path: str) -> str:
    """'net', 'solver', 'caffemodel', 'solverstate' or 'mean' from suffix and content (`dynsal info`).

    Raises:
        FormatError: a file with a non-prototxt suffix that is not a Caffe file (one line saying which files
            are); a prototxt's own syntax errors are left to the net reader.
    """
    suffix = Path(path).suffix.lower()
    if suffix == ".solverstate" or str(path).endswith(".solverstate.h5"):
        return "solverstate"
    if str(path).endswith(".h5"):
        return "caffemodel"
    if suffix == ".binaryproto":
        return "mean"
    if is_binary_file(path):
        return "caffemodel"
    try:
        read_text(path, pb.SolverParameter)
        return "solver"
    except FormatError:
        pass
    if suffix not in TEXT_SUFFIXES:
        try:
            read_net(path)
        except FormatError:
            raise FormatError(f"{path}: not a Caffe file; dynsal info reads {EXPECTED}") from None
    return "net"


def write_caffemodel(net, weights, path: PathLike, phase: str = "TEST", diffs=None) -> None:
    """A caffemodel of `net` (a NetParameter) with `weights` ({layer: [array, ...]}) and optional `diffs`:
    binary (Net::ToProto), or HDF5 (Net::ToHDF5: a group per layer of the net constructed for `phase`,
    implicit Splits included) when the name ends in `.h5` — the suffix Caffe reads it by."""
    if hdf5.is_hdf5_path(path):
        names = [layer.name for layer in build_graph(net, phase=phase).layers]
        hdf5.write_weights(path, names, weights, diffs)
    else:
        write_binary(attach_blobs(net, weights, diffs), path)


def read_solver(path: PathLike, upgrade_solver: bool = True):
    """Read a solver prototxt; upgrade `solver_type` and fill the default `snapshot_prefix`."""
    solver = read_text(path, pb.SolverParameter)
    return upgrade.upgrade_solver(solver, source=str(path)) if upgrade_solver else solver


def read_solverstate(path: PathLike):
    """Read a `.solverstate` (SolverState: iter, learned_net, history, current_step): binary, or HDF5
    when the name ends in `.h5` (Solver::Restore's rule)."""
    if hdf5.is_hdf5_path(path):
        return hdf5.read_solverstate(path)
    state = read_binary(path, pb.SolverState, "solverstate")
    _check_blobs(state.history, path, "history ")
    return state


def _check_blobs(blobs, path: PathLike, owner: str) -> None:
    """Refuse a file whose BlobProtos Caffe could not load (`blobs.blob_problem`), naming the blob."""
    for index, blob in enumerate(blobs):
        problem = blob_problem(blob)
        if problem:
            raise FormatError(f"{path}: {owner}blob {index}: {problem}; the file is corrupt or forged")


def write_solverstate(state, path: PathLike) -> None:
    """Write a `pb.SolverState`: binary, or HDF5 (SnapshotSolverStateToHDF5) when the name ends in `.h5`."""
    if hdf5.is_hdf5_path(path):
        hdf5.write_solverstate(path, state)
    else:
        write_binary(state, path)


def read_mean_file(path: PathLike) -> np.ndarray:
    """Read a mean file (binary BlobProto, as compute_image_mean writes) -> float32 (C, H, W)."""
    blob = read_binary(path, pb.BlobProto, "mean file (binaryproto)")
    _check_blobs([blob], path, "")
    array = blob_to_array(blob).astype(np.float32)
    if array.ndim == 4 and array.shape[0] == 1:
        array = array[0]
    if array.ndim != 3:
        raise FormatError(f"{path}: a mean file holds a 1×C×H×W blob, found shape {array.shape}")
    return array


def write_mean_file(mean: np.ndarray, path: PathLike) -> None:
    """Write a (C, H, W) mean as a legacy 1×C×H×W BlobProto, the layout compute_image_mean writes."""
    write_binary(array_to_blob(np.asarray(mean)[None], legacy=True), path)
