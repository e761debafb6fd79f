"""An ONNX file's ``metadata_props`` read from its bytes, without the ``onnx`` package and without loading the
weights an external-data file holds: so that ``weights.bin`` can be checked against what the export recorded
before ONNX Runtime reads it (a truncated file would otherwise be reported as an unreadable graph).

The protobuf wire format: each field is a varint key ``(number << 3) | wire type`` then its value; ModelProto's
``metadata_props`` is field 14, a length-delimited StringStringEntryProto (key 1, value 2).
"""

from __future__ import annotations

from pathlib import Path

_METADATA_PROPS = 14
_VARINT, _FIXED64, _DELIMITED, _FIXED32 = 0, 1, 2, 5


def read_props(path: Path) -> dict[str, str]:
    """The ``metadata_props`` of the ONNX model at ``path``; ValueError if its bytes are not a protobuf message."""
    data = path.read_bytes()
    props = {}
    for number, value in _fields(data, 0, len(data)):
        if number == _METADATA_PROPS:
            entry = {n: v for n, v in _fields(data, *value)}
            if 1 in entry and 2 in entry:
                props[data[slice(*entry[1])].decode()] = data[slice(*entry[2])].decode()
    return props


def _fields(data: bytes, start: int, end: int):
    """(field number, value) of the fields in ``data[start:end]``: a varint's value, or a delimited field's
    (start, end) in ``data``."""
    at = start
    while at < end:
        key, at = _varint(data, at)
        number, wire = key >> 3, key & 7
        if wire == _VARINT:
            value, at = _varint(data, at)
        elif wire == _DELIMITED:
            length, at = _varint(data, at)
            value, at = (at, at + length), at + length
        elif wire in (_FIXED64, _FIXED32):
            value, at = None, at + (8 if wire == _FIXED64 else 4)
        else:
            raise ValueError(f"unknown protobuf wire type {wire}")
        if at > end or number == 0:
            raise ValueError("not a protobuf message")
        yield number, value


def _varint(data: bytes, at: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        if at >= len(data) or shift > 63:
            raise ValueError("truncated protobuf varint")
        byte = data[at]
        value |= (byte & 0x7F) << shift
        at, shift = at + 1, shift + 7
        if not byte & 0x80:
            return value, at
