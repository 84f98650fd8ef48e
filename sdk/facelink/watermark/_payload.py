"""The 64-bit watermark payload: session tag, receiver fingerprint, coarse frame counter."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

__all__ = ["WatermarkPayload", "receiver_fingerprint", "session_tag"]

SESSION_BYTES = 4
RECEIVER_BYTES = 3


def session_tag(session_header: bytes) -> bytes:
    """First 4 bytes of SHA-256 over the signed session header packet bytes."""
    if not isinstance(session_header, (bytes, bytearray, memoryview)):
        raise TypeError(f"session header must be bytes, got {type(session_header).__name__}")
    return hashlib.sha256(bytes(session_header)).digest()[:SESSION_BYTES]


def receiver_fingerprint(public_key: bytes) -> bytes:
    """First 3 bytes of SHA-256 over the receiver's raw Ed25519 public key (32 bytes)."""
    if not isinstance(public_key, (bytes, bytearray, memoryview)):
        raise TypeError(f"public key must be bytes, got {type(public_key).__name__}")
    if len(public_key) != 32:
        raise ValueError(f"an Ed25519 public key has 32 bytes, got {len(public_key)}")
    return hashlib.sha256(bytes(public_key)).digest()[:RECEIVER_BYTES]


@dataclass(frozen=True)
class WatermarkPayload:
    """What every marked frame says about its origin (the counter comes from the frame index).

    ``session``: 4-byte tag of the signed session header (:func:`session_tag`);
    ``receiver``: 3-byte fingerprint of the receiver's public key (:func:`receiver_fingerprint`).
    """

    session: bytes
    receiver: bytes

    def __post_init__(self) -> None:
        for name, n in (("session", SESSION_BYTES), ("receiver", RECEIVER_BYTES)):
            v = getattr(self, name)
            if not isinstance(v, (bytes, bytearray)):
                raise TypeError(f"{name} must be bytes, got {type(v).__name__}")
            if len(v) != n:
                raise ValueError(f"{name} must be {n} bytes, got {len(v)}")
            object.__setattr__(self, name, bytes(v))

    @classmethod
    def for_session(cls, session_header: bytes, receiver_public_key: bytes) -> WatermarkPayload:
        """The payload binding frames to a signed session header and a receiver key."""
        return cls(session_tag(session_header), receiver_fingerprint(receiver_public_key))

    def message(self, counter: int) -> bytes:
        """The 8 bytes that are CRC-protected and coded: session || receiver || counter."""
        return self.session + self.receiver + bytes([counter & 0xFF])

    @classmethod
    def from_message(cls, message: bytes) -> tuple[WatermarkPayload, int]:
        """Inverse of :meth:`message`: (payload, counter)."""
        if len(message) != SESSION_BYTES + RECEIVER_BYTES + 1:
            raise ValueError(f"a payload message has 8 bytes, got {len(message)}")
        return cls(message[:SESSION_BYTES], message[SESSION_BYTES:-1]), message[-1]
