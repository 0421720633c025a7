"""Read-only plain-Python copies of protobuf messages.

Code that `torch.compile` traces cannot read protobuf's C objects (a method call such as `HasField`, or
an index into a repeated field, breaks the compiled graph). Layers whose forward applies a Caffe rule
to the actual input shapes (Crop, Slice, Reshape, Flatten, the losses' ignore_label) read their
parameters from a `PlainMessage` instead: the same attribute names and `HasField`, plain values.
"""
from __future__ import annotations


def _repeated(field) -> bool:
    is_repeated = getattr(field, "is_repeated", None)  # protobuf ≥ 5; `label` before
    return bool(is_repeated) if is_repeated is not None else field.label == field.LABEL_REPEATED


class PlainMessage:
    """A snapshot of `message`: each field an attribute (repeated fields as tuples, sub-messages as
    PlainMessage), and `HasField(name)` true for the fields set in it, as protobuf's."""

    def __init__(self, message):
        for field in message.DESCRIPTOR.fields:
            value = getattr(message, field.name)
            if _repeated(field):
                value = tuple(PlainMessage(v) if field.message_type is not None else v for v in value)
            elif field.message_type is not None:
                value = PlainMessage(value)
            setattr(self, field.name, value)
        self._present = frozenset(field.name for field, _ in message.ListFields())

    def HasField(self, name: str) -> bool:  # noqa: N802 (protobuf's name)
        return name in self._present
