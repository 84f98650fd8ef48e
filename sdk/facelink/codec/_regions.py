"""Region references: small crops of the sender's own face in states its reference lacks.

The reference is one photo, usually with the mouth closed, so the receiver has never seen
the sender's teeth, tongue or mouth cavity.  The sender watches its own frames and, the
first time the mouth opens wide while the head faces the camera, sends a crop of it once
(a :class:`~facelink.bitstream.RegionReference` packet, bitstream version 3): a JPEG of the
mouth and, for each inner-lip landmark, its position in the crop and in the canonical face.
The generator then draws the interior of every open mouth from it, warped to the current
lips (see ``docs/generator.md``).  A wider opening later may replace it while the session's
byte budget (:attr:`CodecParams.region_bytes`) lasts.

* :class:`RegionPicker` (sender): ``packet = picker.offer(seq, image, landmarks)``.
* :func:`parse_region` (receiver): a verified packet -> :class:`Region`, or
  :class:`~facelink.errors.InvalidPacket` with a one-line reason.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image

from .. import bitstream as bs
from ..errors import InvalidPacket
from ..face._topology import LIPS_INNER
from ..keypoints import ExpressionBasis, canonicalize

__all__ = [
    "MIN_MOUTH_OPENING",
    "Region",
    "RegionPicker",
    "mouth_opening",
    "parse_region",
]

#: canonical lip gap (inter-ocular distance 1) from which an open mouth is worth sending:
#: teeth and cavity both show (a relaxed talking mouth is ~0.08, a wide "a" ~0.2-0.3)
MIN_MOUTH_OPENING = 0.15
#: a crop is sent only if its mouth opens this much wider than the reference's, and a later
#: crop replaces it only if it opens this much wider again
WIDER = 1.25
#: head turned no more than this (degrees, yaw and pitch): a frontal view of the interior
MAX_TURN_DEG = 14.0
#: the crop: inner-lip box grown by these fractions of the mouth width (sides) and height
#: (top, bottom), so that the lips around the gap are in it (colour matching)
CROP_MARGIN_X = 0.25
CROP_MARGIN_Y = 0.6
#: longest side of a sent crop, pixels (a 256 face's mouth is ~60 px wide)
MAX_CROP_SIDE = 144
#: JPEG qualities tried in order until the crop fits the remaining budget
JPEG_QUALITIES = (82, 70, 55)
#: frames the picker waits past a candidate for a wider opening before it sends it
SETTLE_FRAMES = 5
#: largest decoded crop the receiver accepts (pixels per side)
MAX_REGION_SIDE = 512


def mouth_opening(canon: np.ndarray) -> float:
    """Lip gap at the mouth's centre in canonical units (landmarks 13 and 14)."""
    return float(canon[14, 1] - canon[13, 1])


@dataclass(frozen=True)
class Region:
    """A decoded region reference: the crop (RGB uint8) and its points (crop pixels, canonical)."""

    kind: int
    image: np.ndarray
    pixels: np.ndarray
    canonical: np.ndarray
    frame_seq: int

    @property
    def opening(self) -> float:
        """For a mouth: the lip gap at its centre, canonical units."""
        upper, lower = LIPS_INNER.index(13), LIPS_INNER.index(14)
        return float(self.canonical[lower, 1] - self.canonical[upper, 1])


@dataclass
class _Candidate:
    seq: int
    opening: float
    crop: np.ndarray
    pixels: np.ndarray
    canonical: np.ndarray
    age: int = 0


class RegionPicker:
    """Chooses, crops and packs the sender's region references (see the module docstring).

    ``budget`` bytes of region packets for the whole session (0: never send one);
    ``reference_opening``: the reference's own lip gap (canonical), which a crop must beat.
    """

    def __init__(self, digest: bytes, basis: ExpressionBasis, budget: int, reference_opening: float = 0.0) -> None:
        self._prefix = bytes(digest[:8])
        self._basis = basis
        self.budget = int(budget)
        self.spent = 0
        self.sent = 0
        self._best = max(float(reference_opening), 0.0)
        self._cand: _Candidate | None = None
        self.packets: list[bytes] = []  # every region packet sent, for late joiners

    def _wanted(self, opening: float) -> bool:
        return opening >= MIN_MOUTH_OPENING and opening >= WIDER * self._best and self.spent < self.budget

    def offer(self, seq: int, image: np.ndarray, landmarks: np.ndarray | None) -> bytes | None:
        """One frame (its seq, RGB image and Face Mesh landmarks or ``None``); returns a
        region packet to send now, if one is due."""
        if self.budget <= 0 or (self.spent >= self.budget and self._cand is None):
            return None  # nothing more will be sent: no per-frame fit on the sender's hot path
        if landmarks is not None:
            canon, pose = canonicalize(self._basis, landmarks)
            o = mouth_opening(canon)
            frontal = max(abs(np.degrees(pose.yaw)), abs(np.degrees(pose.pitch))) <= MAX_TURN_DEG
            if frontal and self._wanted(o) and (self._cand is None or o > self._cand.opening):
                self._cand = _crop_mouth(seq, image, np.asarray(landmarks, np.float64), canon, o)
                return None
        c = self._cand
        if c is None:
            return None
        c.age += 1
        if c.age < SETTLE_FRAMES:
            return None
        self._cand = None
        return self._pack(c)

    def flush(self) -> bytes | None:
        """The pending candidate, if any (at the end of a stream)."""
        c, self._cand = self._cand, None
        return None if c is None else self._pack(c)

    def _pack(self, c: _Candidate) -> bytes | None:
        points = np.concatenate(
            [np.round(c.pixels / bs.packets.REGION_PX_STEP), np.round(c.canonical / bs.packets.REGION_CANON_STEP)], axis=1
        )
        points = np.clip(points, -32768, 32767).astype(np.int64)
        left = self.budget - self.spent
        for q in JPEG_QUALITIES:
            buf = io.BytesIO()
            Image.fromarray(c.crop).save(buf, format="JPEG", quality=q, optimize=True)
            jpeg = buf.getvalue()
            if len(jpeg) > bs.packets.MAX_REGION_IMAGE:
                continue
            pkt = bytes(bs.RegionReference(self._prefix, bs.RegionKind.MOUTH_OPEN, c.seq & 0xFFFF, points, jpeg))
            if len(pkt) <= left:
                self.spent += len(pkt)
                self.sent += 1
                self._best = c.opening
                self.packets = [pkt]  # the newest crop replaces the older one for late joiners
                return pkt
        self.budget = self.spent  # the next crop would not fit either: stop looking
        return None


def _crop_mouth(seq: int, image: np.ndarray, landmarks: np.ndarray, canon: np.ndarray, opening: float) -> _Candidate:
    h, w = image.shape[:2]
    pts = landmarks[list(LIPS_INNER), :2]
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    mw = max(hi[0] - lo[0], 4.0)
    mh = max(hi[1] - lo[1], 2.0)
    x0 = int(np.clip(np.floor(lo[0] - CROP_MARGIN_X * mw), 0, w - 1))
    x1 = int(np.clip(np.ceil(hi[0] + CROP_MARGIN_X * mw), x0 + 1, w))
    y0 = int(np.clip(np.floor(lo[1] - CROP_MARGIN_Y * mh), 0, h - 1))
    y1 = int(np.clip(np.ceil(hi[1] + CROP_MARGIN_Y * mh), y0 + 1, h))
    crop = np.ascontiguousarray(image[y0:y1, x0:x1, :3])
    px = pts - np.array([x0, y0], np.float64)
    side = max(crop.shape[:2])
    if side > MAX_CROP_SIDE:
        f = MAX_CROP_SIDE / side
        size = (max(1, round(crop.shape[1] * f)), max(1, round(crop.shape[0] * f)))
        sx, sy = size[0] / crop.shape[1], size[1] / crop.shape[0]
        crop = np.asarray(Image.fromarray(crop).resize(size, Image.BILINEAR))
        px = (px + 0.5) * np.array([sx, sy]) - 0.5
    return _Candidate(seq, opening, crop, px, canon[list(LIPS_INNER), :2].copy())


def parse_region(pkt: bs.RegionReference) -> Region | None:
    """A region packet's content; ``None`` for kinds this SDK does not know (ignored).

    Raises :class:`InvalidPacket` (one line) for a crop that does not decode, is too big, or
    whose points do not fit its kind or its image.
    """
    if pkt.kind != bs.RegionKind.MOUTH_OPEN:
        return None
    if len(pkt.points) != len(LIPS_INNER):
        raise InvalidPacket(f"mouth region reference has {len(pkt.points)} points (expected {len(LIPS_INNER)})")
    try:
        with Image.open(io.BytesIO(pkt.image)) as im:
            if im.format != "JPEG":
                raise InvalidPacket(f"region reference image is {im.format}, not JPEG")
            if max(im.size) > MAX_REGION_SIDE:
                raise InvalidPacket(f"region reference image is {im.size[0]}x{im.size[1]} (at most {MAX_REGION_SIDE} per side)")
            rgb = np.asarray(im.convert("RGB"))
    except InvalidPacket:
        raise
    except Exception as exc:  # PIL raises many types for corrupt data
        raise InvalidPacket(f"region reference image does not decode ({type(exc).__name__})") from None
    px = pkt.pixel_points
    canon = pkt.canonical_points
    h, w = rgb.shape[:2]
    if min(h, w) < 4 or (px < -1).any() or (px[:, 0] > w).any() or (px[:, 1] > h).any():
        raise InvalidPacket("region reference points fall outside its image")
    if not np.isfinite(canon).all() or np.abs(canon).max() > 4.0:
        raise InvalidPacket("region reference canonical points out of range")
    region = Region(pkt.kind, rgb, px, canon, pkt.frame_seq)
    if not 0.05 <= region.opening <= 2.0:
        raise InvalidPacket(f"mouth region reference opening {region.opening:.2f} out of range (0.05..2)")
    return region
