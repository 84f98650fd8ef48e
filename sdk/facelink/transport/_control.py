"""Control messages a receiver sends back to its sender (the reverse direction of a link).

Not part of the bitstream and never stored in ``.flk`` files.  Each is one
ZeroMQ message frame::

    "FC" | version u8 (1) | type u8 | body

========  ======================  ==========================================================
type      name                    body
========  ======================  ==========================================================
``0x01``  ``SYNC_REQUEST``        empty: "send the session header again" (lost or never seen)
``0x02``  ``REFERENCE_REQUEST``   8 bytes: the reference digest prefix the receiver lacks
``0x03``  ``KEY_REQUEST``         empty: "send a key frame" (the receiver lost prediction)
========  ======================  ==========================================================

Parsing is strict (exact length, known type); anything else raises
:class:`~facelink.errors.InvalidPacket`.  Senders rate-limit what requests make them do.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from ..errors import InvalidPacket

__all__ = ["CONTROL_MAGIC", "ControlMessage", "ControlType"]

CONTROL_MAGIC = b"FC"
CONTROL_VERSION = 1


class ControlType(enum.IntEnum):
    """Control message type byte (wire values: never renumber)."""

    SYNC_REQUEST = 0x01
    REFERENCE_REQUEST = 0x02
    KEY_REQUEST = 0x03


_BODY = {ControlType.SYNC_REQUEST: 0, ControlType.REFERENCE_REQUEST: 8, ControlType.KEY_REQUEST: 0}


@dataclass(frozen=True)
class ControlMessage:
    """One receiver-to-sender request; ``digest_prefix`` only for REFERENCE_REQUEST."""

    kind: ControlType
    digest_prefix: bytes = b""

    def __post_init__(self) -> None:
        if not isinstance(self.kind, ControlType):
            raise TypeError(f"kind must be a ControlType, got {type(self.kind).__name__}")
        if not isinstance(self.digest_prefix, bytes):
            raise TypeError("digest_prefix must be bytes")
        if len(self.digest_prefix) != _BODY[self.kind]:
            raise ValueError(f"{self.kind.name} carries {_BODY[self.kind]} body bytes, got {len(self.digest_prefix)}")

    def __bytes__(self) -> bytes:
        return CONTROL_MAGIC + bytes((CONTROL_VERSION, self.kind)) + self.digest_prefix

    @classmethod
    def parse(cls, data: bytes) -> ControlMessage:
        """Parse one control message; InvalidPacket for anything malformed."""
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"data must be bytes, got {type(data).__name__}")
        b = bytes(data)
        if len(b) < 4:
            raise InvalidPacket(f"control message truncated: {len(b)} bytes")
        if b[:2] != CONTROL_MAGIC:
            raise InvalidPacket(f"bad control magic {b[:2].hex()} (expected 4643, 'FC')")
        if b[2] != CONTROL_VERSION:
            raise InvalidPacket(f"unsupported control version {b[2]}")
        try:
            kind = ControlType(b[3])
        except ValueError:
            raise InvalidPacket(f"unknown control type 0x{b[3]:02x}") from None
        body = b[4:]
        if len(body) != _BODY[kind]:
            raise InvalidPacket(f"{kind.name}: body is {len(body)} bytes, expected {_BODY[kind]}")
        return cls(kind, body)
