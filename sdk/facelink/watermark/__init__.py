"""Invisible provenance watermark for generated frames: embed on every frame, detect from any clip.

Usage (``header`` = the signed session header packet bytes, ``pub`` = the receiver's
Ed25519 public key)::

    wm = Watermarker(PUBLIC_MARK_KEY, WatermarkPayload.for_session(header, pub))
    marked = wm.embed(frame, frame_index)      # every generated frame, in order
    detect(frames).synthetic                   # any clip, any size, 2 s or more

The scheme, its statistics and its threat model are described in ``docs/provenance.md``.
Pure core: arrays in, arrays/dataclasses out; video I/O lives in ``facelink verify``.
"""

from ._detect import (
    CROP_SCALES,
    CROPS,
    MAX_FRAMES,
    MIN_FRAMES,
    P_THRESHOLD,
    RATES,
    STRIDES,
    TIME_HYPOTHESES,
    Detection,
    WatermarkDetector,
    cell_vectors,
    detect,
    mark_lattice,
)
from ._embed import DEFAULT_PSNR, MIN_SIDE, Watermarker
from ._pattern import EPOCH_FRAMES, GRID, PAYLOAD_GRID, PUBLIC_MARK_KEY, SLOTS, MarkKey
from ._payload import WatermarkPayload, receiver_fingerprint, session_tag

__all__ = [
    "CROPS",
    "CROP_SCALES",
    "DEFAULT_PSNR",
    "EPOCH_FRAMES",
    "GRID",
    "MAX_FRAMES",
    "MIN_FRAMES",
    "MIN_SIDE",
    "PAYLOAD_GRID",
    "PUBLIC_MARK_KEY",
    "P_THRESHOLD",
    "RATES",
    "SLOTS",
    "STRIDES",
    "TIME_HYPOTHESES",
    "Detection",
    "MarkKey",
    "WatermarkDetector",
    "WatermarkPayload",
    "Watermarker",
    "cell_vectors",
    "detect",
    "mark_lattice",
    "receiver_fingerprint",
    "session_tag",
]
