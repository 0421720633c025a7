"""Codecs between numpy arrays and Caffe's BlobProto / Datum messages (symmetric pairs).

Caffe facts reproduced here:
- a BlobProto's shape is `shape.dim` or, in old files, the legacy 4-D `num/channels/height/width`;
- values come from `double_data` when it is non-empty, else from `data` (float); `diff` likewise;
- a Datum holds uint8 `data` (C*H*W bytes, CHW order, BGR for colour images) or `float_data`
  (used only when `data` is empty), or with `encoded=true` the bytes of an image file.
"""
from __future__ import annotations

import math

import numpy as np

from dynsal.caffe.schema import pb
from dynsal.errors import FormatError

LEGACY_FIELDS = ("num", "channels", "height", "width")
MAX_BLOB_VALUES = 2 ** 31 - 1  # Blob::Reshape: CHECK_LE(count, INT_MAX)


def has_legacy_shape(blob) -> bool:
    """True when the blob uses the legacy 4-D num/channels/height/width fields."""
    return any(blob.HasField(f) for f in LEGACY_FIELDS)


def blob_shape(blob) -> tuple[int, ...]:
    """The blob's shape: `shape.dim`, else the legacy 4-D fields, else () for an empty blob."""
    if blob.HasField("shape"):
        return tuple(int(d) for d in blob.shape.dim)
    if has_legacy_shape(blob):
        return tuple(int(getattr(blob, f)) for f in LEGACY_FIELDS)
    return ()


def blob_problem(blob) -> str | None:
    """What makes a BlobProto unloadable in Caffe (Blob::FromProto), or None: a negative axis, more than
    INT_MAX values (Blob::Reshape's limit), or a `data`/`double_data` (and a non-empty `diff`) whose
    length is not the shape's count. Checked on the declared numbers, before anything is allocated."""
    shape = blob_shape(blob)
    if any(d < 0 for d in shape):
        return f"negative axis in shape {shape}"
    count = math.prod(shape) if shape else None
    if count is not None and count > MAX_BLOB_VALUES:
        return f"shape {shape} declares {count:,} values, more than Caffe's {MAX_BLOB_VALUES:,}"
    data = len(blob.double_data) or len(blob.data)
    diff = len(blob.double_diff) or len(blob.diff)
    if count is not None and data != count:
        return f"shape {shape} needs {count:,} values, the file holds {data:,}"
    if diff and diff != (data if count is None else count):
        return f"{diff:,} gradient values for {data:,} values"
    return None


def blob_to_array(blob, diff: bool = False) -> np.ndarray:
    """BlobProto -> array of the blob's shape (float32, or float64 when stored as double).

    Args:
        blob: a `pb.BlobProto`.
        diff: read the gradient (`diff`/`double_diff`) instead of the data.

    Raises:
        FormatError: the number of values does not match the shape.
    """
    doubles = blob.double_diff if diff else blob.double_data
    floats = blob.diff if diff else blob.data
    values = np.array(doubles, dtype=np.float64) if len(doubles) else np.array(floats, dtype=np.float32)
    shape = blob_shape(blob)
    count = math.prod(shape) if shape else values.size
    if values.size != count:
        raise FormatError(f"blob of shape {shape} holds {values.size} values, expected {count}")
    return values.reshape(shape if shape else (values.size,))


def array_to_blob(array: np.ndarray, blob=None, diff: np.ndarray | None = None,
                  legacy: bool = False, double: bool = False):
    """Array -> BlobProto, written the way Caffe's Blob::ToProto writes it.

    Args:
        array: values of any shape; stored as float32 `data` (or float64 `double_data`).
        blob: message to fill (cleared first); a new one when None.
        diff: optional gradient of the same shape, stored as `diff`/`double_diff`.
        legacy: write the legacy 4-D num/channels/height/width fields (as old tools such as
            compute_image_mean do) instead of `shape`; needs at most 4 axes.
        double: store as double_data/double_diff.
    """
    blob = pb.BlobProto() if blob is None else blob
    blob.Clear()
    array = np.asarray(array)
    if legacy:
        if array.ndim > 4:
            raise ValueError(f"legacy 4-D blob fields cannot hold shape {array.shape}")
        dims = (1,) * (4 - array.ndim) + tuple(array.shape)
        for field, dim in zip(LEGACY_FIELDS, dims):
            setattr(blob, field, int(dim))
    else:
        blob.shape.dim.extend(int(d) for d in array.shape)
    values = [(8 if double else 5, array)]
    if diff is not None:
        values.append((9 if double else 6, np.asarray(diff)))
    for number, data in values:
        blob.MergeFromString(packed_field(number, data, np.float64 if double else np.float32))
    return blob


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def packed_field(number: int, values: np.ndarray, dtype) -> bytes:
    """Wire bytes of a packed repeated float/double field: merging these is a memcpy, where
    appending values one by one through the protobuf API is ~100x slower (matters for 500 MB models)."""
    payload = np.ascontiguousarray(values, dtype=np.dtype(dtype).newbyteorder("<")).tobytes()
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def array_to_datum(array: np.ndarray, label: int = 0, encoded_bytes: bytes | None = None):
    """Array (C, H, W) -> Datum, like caffe.io.array_to_datum.

    Args:
        array: uint8 (C, H, W) -> `data` bytes; any float dtype -> `float_data`. Colour images in
            Caffe's convention are BGR.
        label: the integer label.
        encoded_bytes: when given, an already-encoded image file (PNG/JPEG) stored with
            `encoded=true`; `array` then only supplies the (C, H, W) header fields.
    """
    array = np.asarray(array)
    if array.ndim != 3:
        raise ValueError(f"a Datum holds a (C, H, W) array, got shape {array.shape}")
    datum = pb.Datum(channels=array.shape[0], height=array.shape[1], width=array.shape[2], label=int(label))
    if encoded_bytes is not None:
        datum.data = encoded_bytes
        datum.encoded = True
    elif array.dtype == np.uint8:
        datum.data = np.ascontiguousarray(array).tobytes()
    else:
        datum.float_data.extend(array.astype(np.float32).ravel().tolist())
    return datum


def datum_to_array(datum) -> np.ndarray:
    """Datum -> (C, H, W) array: uint8 from `data`, float32 from `float_data` (Caffe's precedence).

    Raises:
        FormatError: an encoded Datum (decode the image bytes instead) or a size mismatch.
    """
    if datum.encoded:
        raise FormatError("encoded Datum holds image file bytes; decode them with an image library")
    shape = (datum.channels, datum.height, datum.width)
    if datum.data:
        values = np.frombuffer(datum.data, dtype=np.uint8)
    else:
        values = np.array(datum.float_data, dtype=np.float32)
    if values.size != int(np.prod(shape)):
        raise FormatError(f"Datum of shape {shape} holds {values.size} values")
    return values.reshape(shape)
