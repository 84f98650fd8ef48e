"""The reference blob: the reference image plus its landmarks, sent once per session.

Layout (little-endian)::

    b"FLRF" | version u8 (1) | format u8 (1 JPEG, 2 PNG) | width u16 | height u16
    | image_len u32 | image bytes | 468*3 float32 landmarks (x, y, z in image pixels)

The session header carries the blob's SHA-256, so a receiver can cache it by hash and
a late joiner can fetch it again.
"""

from __future__ import annotations

import hashlib
import io
import struct
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..errors import InvalidPacket

if TYPE_CHECKING:
    from ..face import EyeState

__all__ = ["Reference"]

_MAGIC = b"FLRF"
_HEAD = struct.Struct("<4sBBHHI")
_LM_BYTES = 468 * 3 * 4
#: largest reference image a blob may carry (pixels); load_image caps the long side at 2048
MAX_PIXELS = 4096 * 4096
FORMATS = {1: "JPEG", 2: "PNG"}


@dataclass(frozen=True, eq=False)
class Reference:
    """Reference image (RGB uint8) and its (468, 3) float32 landmarks, with the encoded bytes.

    ``eyes``: what the eyes do in the image (iris, lids, brows), measured on the decoded
    image by whoever made the reference; not part of the blob (a stream carries it in its
    session header's eye channels).
    """

    image: np.ndarray
    landmarks: np.ndarray
    blob: bytes
    eyes: "EyeState | None" = None

    def with_eyes(self, eyes: "EyeState | None") -> "Reference":
        """The same reference with its measured eye state."""
        return replace(self, eyes=eyes)

    @property
    def digest(self) -> bytes:
        return hashlib.sha256(self.blob).digest()

    @property
    def width(self) -> int:
        return int(self.image.shape[1])

    @property
    def height(self) -> int:
        return int(self.image.shape[0])

    @classmethod
    def create(cls, image: np.ndarray, landmarks: np.ndarray, fmt: str = "JPEG", quality: int = 92) -> "Reference":
        """Encode a reference.  The image is stored lossily (JPEG) by default; the returned
        object holds the *decoded* pixels so sender and receiver see identical references."""
        code = {v: k for k, v in FORMATS.items()}[fmt]
        buf = io.BytesIO()
        Image.fromarray(np.ascontiguousarray(image)).save(buf, format=fmt, **({"quality": quality} if fmt == "JPEG" else {}))
        img = buf.getvalue()
        lm = np.ascontiguousarray(landmarks, dtype="<f4").reshape(468, 3)
        blob = _HEAD.pack(_MAGIC, 1, code, image.shape[1], image.shape[0], len(img)) + img + lm.tobytes()
        return cls.parse(blob)

    def with_landmarks(self, landmarks: np.ndarray) -> "Reference":
        """The same image bytes with other landmarks."""
        lm = np.ascontiguousarray(landmarks, dtype="<f4").reshape(468, 3)
        return Reference.parse(self.blob[: len(self.blob) - _LM_BYTES] + lm.tobytes())

    @classmethod
    def parse(cls, blob: bytes) -> "Reference":
        """Decode a blob; anything malformed raises :class:`InvalidPacket`."""
        if len(blob) < _HEAD.size:
            raise InvalidPacket("reference blob truncated: header incomplete")
        magic, version, fmt, w, h, n = _HEAD.unpack_from(blob)
        if magic != _MAGIC:
            raise InvalidPacket("reference blob: bad magic")
        if version != 1:
            raise InvalidPacket(f"reference blob: unsupported version {version}")
        if fmt not in FORMATS:
            raise InvalidPacket(f"reference blob: unknown image format {fmt}")
        if not (0 < w and 0 < h and w * h <= MAX_PIXELS):
            raise InvalidPacket(f"reference blob: image size {w}x{h} out of range")
        if len(blob) != _HEAD.size + n + _LM_BYTES:
            raise InvalidPacket("reference blob: length does not match its header")
        try:
            with Image.open(io.BytesIO(blob[_HEAD.size : _HEAD.size + n]), formats=[FORMATS[fmt]]) as im:
                if im.format != FORMATS[fmt] or im.size != (w, h):
                    raise InvalidPacket("reference blob: image does not match its header")
                image = np.asarray(im.convert("RGB"), dtype=np.uint8).copy()
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError):
            raise InvalidPacket("reference blob: image cannot be decoded") from None
        lm = np.frombuffer(blob, dtype="<f4", count=468 * 3, offset=_HEAD.size + n).reshape(468, 3).astype(np.float32)
        if not np.all(np.isfinite(lm)):
            raise InvalidPacket("reference blob: landmarks are not finite")
        return cls(image, lm, bytes(blob))
