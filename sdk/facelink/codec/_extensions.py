"""Session-header extensions: the tag table, and the anchor pose's encoding.

A session header carries ``(tag, value)`` extensions (``docs/bitstream.md``).  The tags are
part of the wire format: never renumber.  The anchor pose is the codec's (the pose, in the
sender's frame coordinates, at which the face looks like the reference); the signer key is
written by :func:`facelink.security.signer_extension`; the eye channels by the stream encoder.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterable

from ..bitstream import EYE_TAG
from ..keypoints import Pose, canonicalize, default_basis

__all__ = ["ANCHOR_TAG", "EYE_TAG", "SIGNER_TAG", "decode_anchor", "encode_anchor", "header_extensions", "with_extension"]

#: the anchor pose: 6 float32 (yaw, pitch, roll, tx, ty, scale)
ANCHOR_TAG = 1
#: the signer's Ed25519 public key (32 bytes)
SIGNER_TAG = 2
# 3: the eye channels (bitstream.EYE_TAG), 4: the audio parameters (bitstream.AUDIO_TAG),
# 5: where the motion came from (facelink.animate._stream.SOURCE_TAG; b"audio": made from speech)
_ANCHOR = struct.Struct("<6f")


def encode_anchor(pose: Pose) -> tuple[int, bytes]:
    """The ``(ANCHOR_TAG, value)`` extension for ``pose``."""
    return ANCHOR_TAG, _ANCHOR.pack(*pose.as_array())


def decode_anchor(extensions: Iterable[tuple[int, bytes]]) -> Pose | None:
    """The anchor pose of a header's extensions; ``None`` when absent or malformed."""
    for tag, value in extensions:
        if tag == ANCHOR_TAG and len(value) == _ANCHOR.size:
            vals = _ANCHOR.unpack(value)
            if all(math.isfinite(v) for v in vals) and vals[5] > 0:
                return Pose(*vals)
    return None


def with_extension(extensions: Iterable[tuple[int, bytes]], ext: tuple[int, bytes]) -> tuple[tuple[int, bytes], ...]:
    """``extensions`` with ``ext`` replacing any of the same tag, sorted by tag (the header's order)."""
    return tuple(sorted((ext,) + tuple(e for e in extensions if e[0] != ext[0])))


def header_extensions(
    reference_landmarks, anchor: Pose | None, extensions: Iterable[tuple[int, bytes]] = ()
) -> tuple[tuple[int, bytes], ...]:
    """A sender's session-header extensions: ``extensions`` (e.g. the signer) plus the anchor
    pose -- ``anchor``, or the reference's own pose when the reference is a frame of the source."""
    if anchor is None:
        anchor = canonicalize(default_basis(), reference_landmarks)[1]
    return with_extension(extensions, encode_anchor(anchor))
