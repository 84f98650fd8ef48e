"""LEB128 varints and zigzag mapping, shared by packets and the ``.flk`` container.

Decoding is strict: a varint must be minimally encoded (no redundant trailing
``0x80 0x00`` continuation), so every accepted byte string re-encodes to
itself.  Errors are reported as :class:`VarintError` with a machine-readable
``reason``; callers turn them into :class:`~facelink.errors.InvalidPacket`
messages that name the field.
"""

from __future__ import annotations

from typing import Literal

__all__ = [
    "VarintError",
    "decode_uvarint",
    "encode_uvarint",
    "zigzag_decode",
    "zigzag_encode",
]

Reason = Literal["truncated", "non-minimal", "too-long"]


class VarintError(Exception):
    """A varint could not be decoded; ``reason`` says why."""

    def __init__(self, reason: Reason) -> None:
        super().__init__(reason)
        self.reason: Reason = reason


def encode_uvarint(value: int) -> bytes:
    """Unsigned LEB128: 7 bits per byte, least significant group first."""
    if value < 0:
        raise ValueError(f"uvarint must be >= 0, got {value}")
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def decode_uvarint(data: bytes, pos: int, max_bytes: int) -> tuple[int, int]:
    """Decode one unsigned LEB128 varint of at most ``max_bytes`` bytes at ``pos``.

    Returns ``(value, next_pos)``.  Raises :class:`VarintError` when the data
    ends inside the varint (``truncated``), when it has a redundant final zero
    group (``non-minimal``) or when it would need more than ``max_bytes`` bytes
    (``too-long``).
    """
    value = 0
    shift = 0
    end = len(data)
    for i in range(max_bytes):
        if pos + i >= end:
            raise VarintError("truncated")
        byte = data[pos + i]
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            if byte == 0 and i > 0:
                raise VarintError("non-minimal")
            return value, pos + i + 1
        shift += 7
    raise VarintError("too-long")


def zigzag_encode(value: int) -> int:
    """Map a signed int to unsigned: 0, -1, 1, -2, 2, ... -> 0, 1, 2, 3, 4, ..."""
    return value + value if value >= 0 else -value - value - 1


def zigzag_decode(value: int) -> int:
    """Inverse of :func:`zigzag_encode`."""
    return (value >> 1) ^ -(value & 1)
