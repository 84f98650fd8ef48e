"""FaceLink wire packets: frozen dataclasses with ``parse(data)`` and ``__bytes__``.

Every packet starts with the magic ``b"FL"``, the bitstream version byte and a
packet type byte (:class:`PacketType`), followed by a type-specific body with
little-endian integers.  Parsing is strict and canonical: anything malformed
raises :class:`~facelink.errors.InvalidPacket` with a one-line message, and
every accepted byte string re-serialises to exactly itself
(``bytes(parse_packet(data)) == data``).  Constructors validate their
arguments and raise ``TypeError``/``ValueError`` for programmer errors.

Frame packets (:class:`KeyFrame`, :class:`PredictedFrame`) carry their values
range-coded; the packet alone does not know how many values it holds or with
which models, so :meth:`KeyFrame.from_values` / :meth:`KeyFrame.decode_values`
take the scale indices from the :class:`SessionHeader`.

The byte layout is specified in ``docs/bitstream.md``.
"""

from __future__ import annotations

import math
import operator
import struct
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, Callable, ClassVar, Dict, TypeVar, Union

import numpy as np

from facelink.bitstream._varint import (
    VarintError,
    decode_uvarint,
    encode_uvarint,
    zigzag_decode,
    zigzag_encode,
)
from facelink.bitstream.rangecoder import NUM_SCALES, decode_ints, encode_ints
from facelink.errors import InvalidPacket

__all__ = [
    "AUDIO_CLOCK_HZ",
    "AUDIO_TAG",
    "AUDIO_VERSION",
    "AudioPacket",
    "AudioParams",
    "BITSTREAM_VERSION",
    "EYE_TAG",
    "EYE_VALUES",
    "End",
    "EyeChannels",
    "KeyFrame",
    "MAGIC",
    "MAX_AUDIO_PAYLOAD",
    "MAX_CHUNK_DATA",
    "MAX_COEFFS",
    "MAX_FRAME_PAYLOAD",
    "NoFace",
    "POSE_FIELDS",
    "Packet",
    "PacketType",
    "PredictedFrame",
    "ReferenceChunk",
    "RegionKind",
    "RegionReference",
    "SUPPORTED_VERSIONS",
    "Seal",
    "SessionHeader",
    "parse_packet",
]

#: first two bytes of every packet
MAGIC = b"FL"
#: the bitstream version this module writes for a session without audio or region
#: references; it reads every version in SUPPORTED_VERSIONS
BITSTREAM_VERSION = 2
#: the version of a session that carries audio or region references (AUDIO and
#: REGION_REFERENCE packets, seals with audio_through_seq)
AUDIO_VERSION = 3
#: version 1: pose + expression; version 2 adds the eye channels (session-header extension 3);
#: version 3 adds audio (AUDIO packets, session-header extension 4, seals that cover audio)
#: and region references (REGION_REFERENCE packets)
SUPPORTED_VERSIONS = (1, 2, 3)
#: pose fields before the expression coefficients: 3 rotations, 2 translations, log-scale
POSE_FIELDS = 6
#: largest number K of expression coefficients
MAX_COEFFS = 64
#: largest data field of a ReferenceChunk, bytes
MAX_CHUNK_DATA = 65000
#: values per frame of the eye channels (version 2): gaze x, gaze y, openness per eye
EYE_VALUES = 6
#: session-header extension tag of the eye channels (version 2)
EYE_TAG = 3
#: largest range-coded payload of a frame packet: 70 values (version 1) never need more than
#: 492 bytes, 76 (version 2: 6 + 64 + 6) never more than 534
MAX_FRAME_PAYLOAD = 512
_MAX_PAYLOAD = {1: 512, 2: 560, 3: 560}
#: largest image of a RegionReference, bytes, and largest number of its points
MAX_REGION_IMAGE = 24000
MAX_REGION_POINTS = 64
#: session-header extension tag of the audio parameters (version 3)
AUDIO_TAG = 4
#: largest Opus payload of an AUDIO packet (RFC 6716 allows 1275 bytes per frame; at 6-24 kbit/s
#: a 60 ms packet is under 200 bytes)
MAX_AUDIO_PAYLOAD = 1275

_HEADER_SIZE = 4
_U16 = 0xFFFF
_U32 = 0xFFFFFFFF
_U64 = 0xFFFFFFFFFFFFFFFF
_I32_MIN = -(1 << 31)
_I32_MAX = (1 << 31) - 1
_PTS_VARINT_BYTES = 5


class PacketType(IntEnum):
    """Packet type byte.  Values are part of the wire format: never renumber."""

    SESSION_HEADER = 0x01
    REFERENCE_CHUNK = 0x02
    KEY_FRAME = 0x03
    PREDICTED_FRAME = 0x04
    NO_FACE = 0x05
    SEAL = 0x06
    END = 0x07
    AUDIO = 0x08  # version 3 and later
    REGION_REFERENCE = 0x09  # version 3 and later


class RegionKind(IntEnum):
    """What a :class:`RegionReference` shows.  Values are wire format: never renumber."""

    MOUTH_OPEN = 1  # the sender's open mouth: teeth, tongue, cavity (points: LIPS_INNER)


#: the first bitstream version that has each packet type (all others exist since version 1)
_TYPE_SINCE = {0x08: 3, 0x09: 3}


# ---------------------------------------------------------------- helpers


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _int(name: str, value: object, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    v = operator.index(value)
    if not lo <= v <= hi:
        raise ValueError(f"{name} {v} out of range ({lo}..{hi})")
    return v


def _bytes(name: str, value: object, lo: int, hi: int) -> bytes:
    if not isinstance(value, (bytes, bytearray, memoryview)):
        raise TypeError(f"{name} must be bytes, got {type(value).__name__}")
    b = bytes(value)
    if not lo <= len(b) <= hi:
        expected = str(lo) if lo == hi else f"{lo}..{hi}"
        raise ValueError(f"{name} must be {expected} bytes, got {len(b)}")
    return b


def _scales(name: str, value: object, count: int | None = None) -> bytes:
    """Scale indices as bytes (from bytes or a sequence of ints), each < NUM_SCALES."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        b = bytes(value)
    elif isinstance(value, (Sequence, np.ndarray)) and not isinstance(value, str):
        b = bytes(_int(f"{name}[{i}]", s, 0, 0xFF) for i, s in enumerate(value))
    else:
        raise TypeError(f"{name} must be bytes or a sequence of ints, got {type(value).__name__}")
    if count is not None and len(b) != count:
        raise ValueError(f"{name} must be {count} bytes, got {len(b)}")
    for i, s in enumerate(b):
        if s >= NUM_SCALES:
            raise ValueError(f"{name}[{i}] = {s} is not a scale index (0..{NUM_SCALES - 1})")
    return b


def _float32(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a float, got {type(value).__name__}")
    try:
        f = struct.unpack("<f", struct.pack("<f", float(value)))[0]
    except OverflowError:
        f = math.inf
    if not (math.isfinite(f) and f > 0.0):
        raise ValueError(f"{name} must be finite and > 0 as float32, got {value!r}")
    return f


def _set(obj: object, name: str, value: object) -> None:
    object.__setattr__(obj, name, value)


def _data(data: object) -> bytes:
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"data must be bytes, got {type(data).__name__}")
    return bytes(data)


def _header(ptype: PacketType, version: int) -> bytes:
    return MAGIC + bytes((version, ptype))


def _version(value: object) -> int:
    v = _int("version", value, 0, 0xFF)
    if v not in SUPPORTED_VERSIONS:
        raise ValueError(f"bitstream version {v} is not supported (versions {', '.join(map(str, SUPPORTED_VERSIONS))})")
    return v


class _Reader:
    """Cursor over a packet body; every shortfall is an InvalidPacket."""

    __slots__ = ("data", "name", "pos")

    def __init__(self, data: bytes, name: str) -> None:
        self.data = data
        self.name = name
        self.pos = _HEADER_SIZE

    def need(self, n: int) -> None:
        missing = self.pos + n - len(self.data)
        if missing > 0:
            raise InvalidPacket(f"packet truncated: {self.name} needs {_plural(missing, 'more byte')}")

    def take(self, n: int) -> bytes:
        self.need(n)
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def unpack(self, fmt: struct.Struct) -> tuple[Any, ...]:
        self.need(fmt.size)
        out = fmt.unpack_from(self.data, self.pos)
        self.pos += fmt.size
        return out

    def uvarint(self, field: str, max_bytes: int = 5) -> int:
        """An unsigned LEB128 varint (minimal, at most ``max_bytes``); InvalidPacket otherwise."""
        try:
            value, self.pos = decode_uvarint(self.data, self.pos, max_bytes)
        except VarintError as exc:
            if exc.reason == "truncated":
                raise InvalidPacket(f"packet truncated: {self.name} needs 1 more byte") from None
            if exc.reason == "non-minimal":
                raise InvalidPacket(f"{self.name}: {field} varint is not minimally encoded") from None
            raise InvalidPacket(f"{self.name}: {field} varint is longer than {max_bytes} bytes") from None
        return value

    def pts_offset(self) -> int:
        value = self.uvarint("pts_offset", _PTS_VARINT_BYTES)
        if value > _U32:
            raise InvalidPacket(
                f"{self.name}: pts_offset {zigzag_decode(value)} out of range ({_I32_MIN}..{_I32_MAX})"
            )
        return zigzag_decode(value)

    def rest(self) -> bytes:
        out = self.data[self.pos :]
        self.pos = len(self.data)
        return out

    def done(self) -> None:
        extra = len(self.data) - self.pos
        if extra:
            raise InvalidPacket(f"packet has {_plural(extra, 'trailing byte')} after {self.name}")


_P = TypeVar("_P", bound="_PacketBase")


class _PacketBase(ABC):
    """Shared parse entry point; subclasses define TYPE, _MIN_BODY, _from_body and __bytes__."""

    __slots__ = ()
    TYPE: ClassVar[PacketType]
    _MIN_BODY: ClassVar[int]

    @classmethod
    def parse(cls: type[_P], data: bytes) -> _P:
        """Parse one packet of exactly this type; raises InvalidPacket otherwise."""
        raw = _data(data)
        ptype = _check_header(raw)
        if ptype is not cls.TYPE:
            raise InvalidPacket(f"expected a {cls.TYPE.name} packet, got {ptype.name}")
        return cls._parse_body(raw)

    @classmethod
    def _parse_body(cls: type[_P], data: bytes) -> _P:
        reader = _Reader(data, cls.TYPE.name)
        reader.need(cls._min_body(data[2]))
        kwargs = cls._from_body(reader)
        reader.done()
        kwargs["version"] = data[2]
        try:
            return cls(**kwargs)
        except ValueError as exc:
            raise InvalidPacket(f"{cls.TYPE.name}: {exc}") from None

    @classmethod
    def _min_body(cls, version: int) -> int:
        """The fixed minimum body size of this packet type in ``version``."""
        return cls._MIN_BODY

    @classmethod
    @abstractmethod
    def _from_body(cls, reader: _Reader) -> Dict[str, Any]:
        """Read the body fields after the header; returns constructor arguments."""

    @abstractmethod
    def __bytes__(self) -> bytes:
        """The packet's canonical wire bytes."""


# ---------------------------------------------------------------- packet types

_SESSION_FIXED = struct.Struct("<QHHIIHB")
_STEPS = struct.Struct("<4f")
_U8 = struct.Struct("<B")
_U16S = struct.Struct("<H")
_U32S = struct.Struct("<I")
_TLV = struct.Struct("<BH")


@dataclass(frozen=True, slots=True)
class SessionHeader(_PacketBase):
    """Once per session: frame geometry, rate, quantiser steps and entropy models.

    ``steps`` are (rotation step in degrees, translation step in pixels,
    log-scale step, coefficient step in coefficient standard deviations); they
    are stored rounded to float32.  ``key_scales``/``pred_scales`` hold one
    range-coder scale index per value (``6 + n_coeffs`` each).
    ``reference_digest`` is the SHA-256 of the reference blob (all zero and
    ``reference_size == 0`` when there is none).  ``extensions`` are
    ``(tag, value)`` pairs with strictly increasing tags; unknown tags are kept.
    """

    TYPE: ClassVar[PacketType] = PacketType.SESSION_HEADER
    _MIN_BODY: ClassVar[int] = 16 + _SESSION_FIXED.size + 8 + _STEPS.size + 2 * POSE_FIELDS + 32 + 4 + 1

    session_id: bytes
    created_us: int
    width: int
    height: int
    fps_num: int
    fps_den: int
    key_interval: int
    n_coeffs: int
    basis_id: bytes
    steps: tuple[float, float, float, float]
    key_scales: bytes
    pred_scales: bytes
    reference_digest: bytes = bytes(32)
    reference_size: int = 0
    extensions: tuple[tuple[int, bytes], ...] = ()
    version: int = field(default=BITSTREAM_VERSION, kw_only=True)

    def __post_init__(self) -> None:
        _set(self, "version", _version(self.version))
        _set(self, "session_id", _bytes("session_id", self.session_id, 16, 16))
        _set(self, "created_us", _int("created_us", self.created_us, 0, _U64))
        _set(self, "width", _int("width", self.width, 1, _U16))
        _set(self, "height", _int("height", self.height, 1, _U16))
        _set(self, "fps_num", _int("fps_num", self.fps_num, 1, _U32))
        _set(self, "fps_den", _int("fps_den", self.fps_den, 1, _U32))
        _set(self, "key_interval", _int("key_interval", self.key_interval, 1, _U16))
        n_coeffs = _int("n_coeffs", self.n_coeffs, 0, MAX_COEFFS)
        _set(self, "n_coeffs", n_coeffs)
        _set(self, "basis_id", _bytes("basis_id", self.basis_id, 8, 8))
        try:
            steps = tuple(self.steps)
        except TypeError:
            raise TypeError("steps must be a sequence of 4 floats") from None
        if len(steps) != 4:
            raise ValueError(f"steps must hold 4 floats, got {len(steps)}")
        _set(self, "steps", tuple(_float32(f"steps[{i}]", s) for i, s in enumerate(steps)))
        n_values = POSE_FIELDS + n_coeffs
        _set(self, "key_scales", _scales("key_scales", self.key_scales, n_values))
        _set(self, "pred_scales", _scales("pred_scales", self.pred_scales, n_values))
        digest = _bytes("reference_digest", self.reference_digest, 32, 32)
        _set(self, "reference_digest", digest)
        size = _int("reference_size", self.reference_size, 0, _U32)
        _set(self, "reference_size", size)
        if any(digest) and size == 0:
            raise ValueError("reference_size must be >= 1 when reference_digest is set")
        if not any(digest) and size != 0:
            raise ValueError("reference_size must be 0 when reference_digest is all zero")
        _set(self, "extensions", _extensions(self.extensions))
        if self.version >= 2:
            try:
                self.eye_channels  # validates extension 3
                self.audio  # and extension 4 (version 3)
            except InvalidPacket as exc:
                raise ValueError(str(exc)) from None

    @property
    def audio(self) -> "AudioParams | None":
        """The audio parameters (extension 4) of a version-3 header; ``None`` when the session
        carries no audio (and always before version 3, where tag 4 is an unassigned extension)."""
        if self.version < AUDIO_VERSION:
            return None
        for tag, value in self.extensions:
            if tag == AUDIO_TAG:
                return AudioParams.parse(value)
        return None

    @property
    def eye_channels(self) -> "EyeChannels | None":
        """The eye channels (extension 3) of a version-2 header; ``None`` when absent (and
        always in version 1, where tag 3 is an unassigned extension)."""
        if self.version < 2:
            return None
        for tag, value in self.extensions:
            if tag == EYE_TAG:
                return EyeChannels.parse(value)
        return None

    @property
    def n_values(self) -> int:
        """Values per frame: 6 pose fields + ``n_coeffs`` expression coefficients (+ the eye
        channels' values in a version-2 header that has them)."""
        eyes = self.eye_channels
        return POSE_FIELDS + self.n_coeffs + (eyes.count if eyes is not None else 0)

    @property
    def frame_scales(self) -> tuple[bytes, bytes]:
        """Scale indices of every frame value, (key frames, predicted frames)."""
        eyes = self.eye_channels
        if eyes is None:
            return self.key_scales, self.pred_scales
        return self.key_scales + eyes.key_scales, self.pred_scales + eyes.pred_scales

    def __bytes__(self) -> bytes:
        parts = [
            _header(self.TYPE, self.version),
            self.session_id,
            _SESSION_FIXED.pack(
                self.created_us,
                self.width,
                self.height,
                self.fps_num,
                self.fps_den,
                self.key_interval,
                self.n_coeffs,
            ),
            self.basis_id,
            _STEPS.pack(*self.steps),
            self.key_scales,
            self.pred_scales,
            self.reference_digest,
            _U32S.pack(self.reference_size),
            _U8.pack(len(self.extensions)),
        ]
        for tag, value in self.extensions:
            parts.append(_TLV.pack(tag, len(value)))
            parts.append(value)
        return b"".join(parts)

    @classmethod
    def _from_body(cls, reader: _Reader) -> Dict[str, Any]:
        session_id = reader.take(16)
        created_us, width, height, fps_num, fps_den, key_interval, n_coeffs = reader.unpack(_SESSION_FIXED)
        if n_coeffs > MAX_COEFFS:
            raise InvalidPacket(f"{cls.TYPE.name}: n_coeffs {n_coeffs} out of range (0..{MAX_COEFFS})")
        basis_id = reader.take(8)
        steps = reader.unpack(_STEPS)
        n_values = POSE_FIELDS + n_coeffs
        reader.need(2 * n_values + 32 + 4 + 1)
        key_scales = reader.take(n_values)
        pred_scales = reader.take(n_values)
        reference_digest = reader.take(32)
        (reference_size,) = reader.unpack(_U32S)
        (n_ext,) = reader.unpack(_U8)
        extensions = []
        for _ in range(n_ext):
            tag, length = reader.unpack(_TLV)
            extensions.append((tag, reader.take(length)))
        return {
            "session_id": session_id,
            "created_us": created_us,
            "width": width,
            "height": height,
            "fps_num": fps_num,
            "fps_den": fps_den,
            "key_interval": key_interval,
            "n_coeffs": n_coeffs,
            "basis_id": basis_id,
            "steps": steps,
            "key_scales": key_scales,
            "pred_scales": pred_scales,
            "reference_digest": reference_digest,
            "reference_size": reference_size,
            "extensions": tuple(extensions),
        }


def _extensions(value: object) -> tuple[tuple[int, bytes], ...]:
    if not isinstance(value, Iterable) or isinstance(value, (bytes, bytearray, str)):
        raise TypeError("extensions must be a sequence of (tag, value) pairs")
    out: list[tuple[int, bytes]] = []
    for item in value:
        if not isinstance(item, tuple) or len(item) != 2:
            raise TypeError("each extension must be a (tag, value) tuple")
        tag = _int("extension tag", item[0], 0, 0xFF)
        data = _bytes(f"extension {tag} value", item[1], 0, _U16)
        if out and tag <= out[-1][0]:
            raise ValueError(f"extension tags must be strictly increasing, got {tag} after {out[-1][0]}")
        out.append((tag, data))
    if len(out) > 0xFF:
        raise ValueError(f"at most 255 extensions, got {len(out)}")
    return tuple(out)


_EYE_STEPS = struct.Struct("<2f")
_EYE_REF = struct.Struct(f"<{EYE_VALUES}f2f")
#: largest magnitude of a reference eye value (gaze and brow are a fraction of a face unit)
_EYE_REF_LIMIT = 10.0


@dataclass(frozen=True, slots=True)
class EyeChannels:
    """Session-header extension 3 (version 2): how the eye values of each frame are coded.

    ``steps``: quantiser steps of (gaze, lid opening), both in eye widths;
    ``key_scales``/``pred_scales``: one scale index per eye value; ``reference``: the 6 eye
    values measured on the reference image (each frame's
    values are quantised relative to them); ``iris_radius``: the reference's iris radius per
    eye in eye widths (0 = no iris found).  ``parse`` raises :class:`InvalidPacket`.
    """

    steps: tuple[float, float]
    key_scales: bytes
    pred_scales: bytes
    reference: tuple[float, ...]
    iris_radius: tuple[float, float]
    count: int = EYE_VALUES

    def __post_init__(self) -> None:
        if self.count != EYE_VALUES:
            raise ValueError(f"eye channels: count must be {EYE_VALUES}, got {self.count}")
        _set(self, "steps", tuple(_float32(f"eye steps[{i}]", v) for i, v in enumerate(self.steps)))
        if len(self.steps) != 2:
            raise ValueError(f"eye channels: 2 steps, got {len(self.steps)}")
        _set(self, "key_scales", _scales("eye key_scales", self.key_scales, EYE_VALUES))
        _set(self, "pred_scales", _scales("eye pred_scales", self.pred_scales, EYE_VALUES))
        ref = tuple(float(np.float32(v)) for v in self.reference)
        if len(ref) != EYE_VALUES or not all(math.isfinite(v) and abs(v) <= _EYE_REF_LIMIT for v in ref):
            raise ValueError(f"eye channels: reference must be {EYE_VALUES} finite values within ±{_EYE_REF_LIMIT:g}")
        _set(self, "reference", ref)
        radius = tuple(float(np.float32(v)) for v in self.iris_radius)
        if len(radius) != 2 or not all(math.isfinite(v) and 0.0 <= v <= 1.0 for v in radius):
            raise ValueError("eye channels: iris_radius must be 2 values in [0, 1]")
        _set(self, "iris_radius", radius)

    def __bytes__(self) -> bytes:
        return b"".join(
            (_U8.pack(self.count), _EYE_STEPS.pack(*self.steps), self.key_scales, self.pred_scales, _EYE_REF.pack(*self.reference, *self.iris_radius))
        )

    @classmethod
    def parse(cls, value: bytes) -> "EyeChannels":
        size = 1 + _EYE_STEPS.size + 2 * EYE_VALUES + _EYE_REF.size
        if len(value) != size:
            raise InvalidPacket(f"eye channels extension is {len(value)} bytes (expected {size})")
        count = value[0]
        steps = _EYE_STEPS.unpack_from(value, 1)
        o = 1 + _EYE_STEPS.size
        ref = _EYE_REF.unpack_from(value, o + 2 * EYE_VALUES)
        try:
            return cls(steps, value[o : o + EYE_VALUES], value[o + EYE_VALUES : o + 2 * EYE_VALUES], ref[:EYE_VALUES], ref[EYE_VALUES:], count)
        except ValueError as exc:
            raise InvalidPacket(str(exc)) from None


#: codec ids of the audio extension
AUDIO_CODEC_OPUS = 1
#: the audio clock: AUDIO timestamps, frame sizes and pre-skip count samples at 48 kHz
AUDIO_CLOCK_HZ = 48000
#: samples (at 48 kHz) per Opus frame that a packet may hold: 2.5, 5, 10, 20, 40, 60 ms
_OPUS_FRAME_SAMPLES = (120, 240, 480, 960, 1920, 2880)
_AUDIO_EXT = struct.Struct("<BIBIHH")


@dataclass(frozen=True, slots=True)
class AudioParams:
    """Session-header extension 4 (version 3): how the session's AUDIO packets are coded.

    ``codec`` 1 = Opus (the only one); ``sample_rate`` the clock of AUDIO timestamps and of
    ``frame_samples``/``pre_skip`` (48000, as in RTP's Opus payload format); ``channels`` 1 or 2;
    ``bitrate`` the encoder's target in bit/s (informative, 6000..510000);
    ``frame_samples`` samples per packet (120..2880: 2.5 to 60 ms); ``pre_skip`` the
    decoder delay in samples: decoded sample ``j`` of the packet with timestamp ``ts`` is
    stream sample ``ts + j - pre_skip`` (as Ogg Opus's pre-skip).  ``parse`` raises
    :class:`InvalidPacket`.
    """

    bitrate: int
    frame_samples: int = 960
    pre_skip: int = 312
    channels: int = 1
    sample_rate: int = AUDIO_CLOCK_HZ
    codec: int = AUDIO_CODEC_OPUS

    def __post_init__(self) -> None:
        if _int("audio codec", self.codec, 0, 0xFF) != AUDIO_CODEC_OPUS:
            raise ValueError(f"audio: codec {self.codec} is not known (1 = Opus)")
        if _int("audio sample_rate", self.sample_rate, 0, _U32) != AUDIO_CLOCK_HZ:
            raise ValueError(f"audio: sample_rate must be {AUDIO_CLOCK_HZ}, got {self.sample_rate}")
        _int("audio channels", self.channels, 1, 2)
        _int("audio bitrate", self.bitrate, 6000, 510000)
        if _int("audio frame_samples", self.frame_samples, 0, _U16) not in _OPUS_FRAME_SAMPLES:
            raise ValueError(
                f"audio: frame_samples {self.frame_samples} is not an Opus frame size ({', '.join(map(str, _OPUS_FRAME_SAMPLES))})"
            )
        _int("audio pre_skip", self.pre_skip, 0, _U16)

    @property
    def frame_seconds(self) -> float:
        return self.frame_samples / self.sample_rate

    def __bytes__(self) -> bytes:
        return _AUDIO_EXT.pack(self.codec, self.sample_rate, self.channels, self.bitrate, self.frame_samples, self.pre_skip)

    def extension(self) -> tuple[int, bytes]:
        """The ``(AUDIO_TAG, bytes)`` session-header extension."""
        return AUDIO_TAG, bytes(self)

    @classmethod
    def parse(cls, value: bytes) -> "AudioParams":
        if len(value) != _AUDIO_EXT.size:
            raise InvalidPacket(f"audio extension is {len(value)} bytes (expected {_AUDIO_EXT.size})")
        codec, rate, channels, bitrate, frame_samples, pre_skip = _AUDIO_EXT.unpack(value)
        try:
            return cls(bitrate, frame_samples, pre_skip, channels, rate, codec)
        except ValueError as exc:
            msg = str(exc)
            raise InvalidPacket(msg if msg.startswith("audio") else f"audio: {msg}") from None


_AUDIO_HEAD = struct.Struct("<HI")


@dataclass(frozen=True, slots=True)
class AudioPacket(_PacketBase):
    """One Opus packet (version 3): audio ``seq`` (+1 per AUDIO packet, wraps at 65536) and
    ``timestamp``, the stream time of its first input sample in 48 kHz samples (wraps at 2^32;
    0 = the nominal time of the session's frame 0, so audio and frames share one clock)."""

    TYPE: ClassVar[PacketType] = PacketType.AUDIO
    _MIN_BODY: ClassVar[int] = _AUDIO_HEAD.size + 1

    seq: int
    timestamp: int
    payload: bytes
    version: int = field(default=AUDIO_VERSION, kw_only=True)

    def __post_init__(self) -> None:
        _set(self, "version", _version(self.version))
        if self.version < _TYPE_SINCE[PacketType.AUDIO]:
            raise ValueError(f"AUDIO packets need bitstream version {_TYPE_SINCE[PacketType.AUDIO]}, got {self.version}")
        _set(self, "seq", _int("seq", self.seq, 0, _U16))
        _set(self, "timestamp", _int("timestamp", self.timestamp, 0, _U32))
        _set(self, "payload", _bytes("payload", self.payload, 1, MAX_AUDIO_PAYLOAD))

    def __bytes__(self) -> bytes:
        return _header(self.TYPE, self.version) + _AUDIO_HEAD.pack(self.seq, self.timestamp) + self.payload

    @classmethod
    def _from_body(cls, reader: _Reader) -> Dict[str, Any]:
        seq, timestamp = reader.unpack(_AUDIO_HEAD)
        payload = reader.rest()
        if len(payload) > MAX_AUDIO_PAYLOAD:
            raise InvalidPacket(f"{cls.TYPE.name}: payload is {len(payload)} bytes (max {MAX_AUDIO_PAYLOAD})")
        return {"seq": seq, "timestamp": timestamp, "payload": payload}


@dataclass(frozen=True, slots=True)
class ReferenceChunk(_PacketBase):
    """One piece of the reference blob, identified by the first 8 bytes of its SHA-256."""

    TYPE: ClassVar[PacketType] = PacketType.REFERENCE_CHUNK
    _MIN_BODY: ClassVar[int] = 8 + 2 + 2 + 1

    digest_prefix: bytes
    index: int
    count: int
    data: bytes
    version: int = field(default=BITSTREAM_VERSION, kw_only=True)

    def __post_init__(self) -> None:
        _set(self, "version", _version(self.version))
        _set(self, "digest_prefix", _bytes("digest_prefix", self.digest_prefix, 8, 8))
        count = _int("count", self.count, 1, _U16)
        _set(self, "count", count)
        index = _int("index", self.index, 0, _U16)
        if index >= count:
            raise ValueError(f"index {index} out of range for count {count}")
        _set(self, "index", index)
        _set(self, "data", _bytes("data", self.data, 1, MAX_CHUNK_DATA))

    def __bytes__(self) -> bytes:
        return b"".join(
            (_header(self.TYPE, self.version), self.digest_prefix, _CHUNK.pack(self.index, self.count), self.data)
        )

    @classmethod
    def _from_body(cls, reader: _Reader) -> Dict[str, Any]:
        digest_prefix = reader.take(8)
        index, count = reader.unpack(_CHUNK)
        return {"digest_prefix": digest_prefix, "index": index, "count": count, "data": reader.rest()}


_CHUNK = struct.Struct("<HH")
_F = TypeVar("_F", bound="_CodedFrame")


@dataclass(frozen=True, slots=True)
class _CodedFrame(_PacketBase):
    """A frame of ``6 + K`` quantised values, range-coded into ``payload``."""

    _MIN_BODY: ClassVar[int] = 2 + 1

    seq: int
    pts_offset: int
    payload: bytes
    version: int = field(default=BITSTREAM_VERSION, kw_only=True)

    def __post_init__(self) -> None:
        _set(self, "version", _version(self.version))
        _set(self, "seq", _int("seq", self.seq, 0, _U16))
        _set(self, "pts_offset", _int("pts_offset", self.pts_offset, _I32_MIN, _I32_MAX))
        _set(self, "payload", _bytes("payload", self.payload, 0, _MAX_PAYLOAD[self.version]))

    @classmethod
    def from_values(
        cls: type[_F],
        seq: int,
        pts_offset: int,
        values: Sequence[int] | np.ndarray,
        scales: bytes | Sequence[int],
        *,
        version: int = BITSTREAM_VERSION,
    ) -> _F:
        """Range-code ``values`` (one per entry of ``scales``) into a new packet."""
        scale_bytes = _frame_scales(scales)
        if len(values) != len(scale_bytes):
            raise ValueError(f"got {len(values)} values for {len(scale_bytes)} scale indices")
        return cls(seq, pts_offset, encode_ints(values, scale_bytes), version=version)

    def decode_values(self, scales: bytes | Sequence[int]) -> np.ndarray:
        """Decode the payload into ``len(scales)`` int32 values; InvalidPacket if corrupt."""
        scale_bytes = _frame_scales(scales)
        try:
            return decode_ints(self.payload, scale_bytes, len(scale_bytes))
        except InvalidPacket as exc:
            raise InvalidPacket(f"{self.TYPE.name}: {exc}") from None

    def __bytes__(self) -> bytes:
        return b"".join(
            (
                _header(self.TYPE, self.version),
                _U16S.pack(self.seq),
                encode_uvarint(zigzag_encode(self.pts_offset)),
                self.payload,
            )
        )

    @classmethod
    def _from_body(cls, reader: _Reader) -> Dict[str, Any]:
        (seq,) = reader.unpack(_U16S)
        pts_offset = reader.pts_offset()
        payload = reader.rest()
        limit = _MAX_PAYLOAD.get(reader.data[2], MAX_FRAME_PAYLOAD)
        if len(payload) > limit:
            raise InvalidPacket(f"{cls.TYPE.name}: payload is {len(payload)} bytes (max {limit})")
        return {"seq": seq, "pts_offset": pts_offset, "payload": payload}


def _frame_scales(scales: bytes | Sequence[int]) -> bytes:
    b = _scales("scales", scales)
    lo, hi = POSE_FIELDS, POSE_FIELDS + MAX_COEFFS + EYE_VALUES
    if not lo <= len(b) <= hi:
        raise ValueError(f"a frame has {lo}..{hi} values, got {len(b)} scale indices")
    return b


@dataclass(frozen=True, slots=True)
class KeyFrame(_CodedFrame):
    """Absolute quantised values, coded with the session's ``key_scales``."""

    TYPE: ClassVar[PacketType] = PacketType.KEY_FRAME


@dataclass(frozen=True, slots=True)
class PredictedFrame(_CodedFrame):
    """Residuals against the previous decoded frame, coded with ``pred_scales``."""

    TYPE: ClassVar[PacketType] = PacketType.PREDICTED_FRAME


@dataclass(frozen=True, slots=True)
class NoFace(_PacketBase):
    """A frame without a face: the receiver holds the last good frame."""

    TYPE: ClassVar[PacketType] = PacketType.NO_FACE
    _MIN_BODY: ClassVar[int] = 2 + 1

    seq: int
    pts_offset: int = 0
    version: int = field(default=BITSTREAM_VERSION, kw_only=True)

    def __post_init__(self) -> None:
        _set(self, "version", _version(self.version))
        _set(self, "seq", _int("seq", self.seq, 0, _U16))
        _set(self, "pts_offset", _int("pts_offset", self.pts_offset, _I32_MIN, _I32_MAX))

    def __bytes__(self) -> bytes:
        return _header(self.TYPE, self.version) + _U16S.pack(self.seq) + encode_uvarint(zigzag_encode(self.pts_offset))

    @classmethod
    def _from_body(cls, reader: _Reader) -> Dict[str, Any]:
        (seq,) = reader.unpack(_U16S)
        return {"seq": seq, "pts_offset": reader.pts_offset()}


#: a seal's ``counter`` and ``time_ms`` are unsigned LEB128 varints of at most 5 bytes, <= 2^32 - 1
_SEAL_VARINT_BYTES = 5


@dataclass(frozen=True, slots=True)
class Seal(_PacketBase):
    """Closes a span: an Ed25519 signature over the span's hash, the seal's counter and its time.

    ``covered_through_seq`` is the ``seq`` of the last frame sent so far (``0xFFFF``
    before any frame); in version 3, ``audio_through_seq`` is the ``seq`` of the last AUDIO
    packet sent so far (``0xFFFF`` before any; ``None`` before version 3, where the field
    does not exist); ``counter`` is the seal's index within the session (0, 1, 2, ...);
    ``time_ms`` is the sender's clock in milliseconds since the header's ``created_us``.
    The chain hash is not carried: the receiver recomputes it from the packets it got.
    What is hashed and signed is specified in ``docs/security.md``.
    """

    TYPE: ClassVar[PacketType] = PacketType.SEAL
    _MIN_BODY: ClassVar[int] = 2 + 1 + 1 + 64

    covered_through_seq: int
    counter: int
    time_ms: int
    signature: bytes
    audio_through_seq: int | None = None
    version: int = field(default=BITSTREAM_VERSION, kw_only=True)

    def __post_init__(self) -> None:
        _set(self, "version", _version(self.version))
        _set(self, "covered_through_seq", _int("covered_through_seq", self.covered_through_seq, 0, _U16))
        if self.version >= AUDIO_VERSION:
            if self.audio_through_seq is None:
                raise ValueError(f"a version {self.version} seal needs audio_through_seq (0xFFFF: no audio yet)")
            _set(self, "audio_through_seq", _int("audio_through_seq", self.audio_through_seq, 0, _U16))
        elif self.audio_through_seq is not None:
            raise ValueError(f"audio_through_seq needs bitstream version {AUDIO_VERSION}, got {self.version}")
        _set(self, "counter", _int("counter", self.counter, 0, _U32))
        _set(self, "time_ms", _int("time_ms", self.time_ms, 0, _U32))
        _set(self, "signature", _bytes("signature", self.signature, 64, 64))

    @classmethod
    def _min_body(cls, version: int) -> int:
        return cls._MIN_BODY + (2 if version >= AUDIO_VERSION else 0)

    def __bytes__(self) -> bytes:
        audio = b"" if self.audio_through_seq is None else _U16S.pack(self.audio_through_seq)
        return b"".join(
            (
                _header(self.TYPE, self.version),
                _U16S.pack(self.covered_through_seq),
                audio,
                encode_uvarint(self.counter),
                encode_uvarint(self.time_ms),
                self.signature,
            )
        )

    @classmethod
    def _from_body(cls, reader: _Reader) -> Dict[str, Any]:
        (seq,) = reader.unpack(_U16S)
        audio = None
        if reader.data[2] >= AUDIO_VERSION:
            (audio,) = reader.unpack(_U16S)
        counter = _seal_varint(reader, "counter")
        time_ms = _seal_varint(reader, "time_ms")
        return {
            "covered_through_seq": seq,
            "counter": counter,
            "time_ms": time_ms,
            "signature": reader.take(64),
            "audio_through_seq": audio,
        }


def _seal_varint(reader: _Reader, field: str) -> int:
    value = reader.uvarint(field, _SEAL_VARINT_BYTES)
    if value > _U32:
        raise InvalidPacket(f"{reader.name}: {field} {value} out of range (0..{_U32})")
    return value


_END = struct.Struct("<HI")


@dataclass(frozen=True, slots=True)
class End(_PacketBase):
    """Clean end of stream: ``seq`` of the last frame and the number of frames sent."""

    TYPE: ClassVar[PacketType] = PacketType.END
    _MIN_BODY: ClassVar[int] = _END.size

    seq: int
    total_frames: int
    version: int = field(default=BITSTREAM_VERSION, kw_only=True)

    def __post_init__(self) -> None:
        _set(self, "version", _version(self.version))
        _set(self, "seq", _int("seq", self.seq, 0, _U16))
        _set(self, "total_frames", _int("total_frames", self.total_frames, 0, _U32))

    def __bytes__(self) -> bytes:
        return _header(self.TYPE, self.version) + _END.pack(self.seq, self.total_frames)

    @classmethod
    def _from_body(cls, reader: _Reader) -> Dict[str, Any]:
        seq, total_frames = reader.unpack(_END)
        return {"seq": seq, "total_frames": total_frames}


_REGION = struct.Struct("<8sBHB")
_REGION_POINT = struct.Struct("<4h")
#: RegionReference point precision: crop pixels in 1/8, canonical units in 1/4096
REGION_PX_STEP = 1.0 / 8
REGION_CANON_STEP = 1.0 / 4096
#: image formats of a RegionReference
REGION_JPEG = 1


@dataclass(frozen=True, slots=True)
class RegionReference(_PacketBase):
    """A small image of the sender's face in a state the reference lacks (version 3).

    ``digest_prefix``: the first 8 bytes of the session's reference digest (the region
    belongs to that reference's session); ``kind``: :class:`RegionKind` value (unknown
    kinds parse and are ignored by decoders); ``frame_seq``: the frame it was taken from;
    ``points``: (N, 4) int16 rows ``(x, y)`` in the crop in 1/8 pixel and ``(x, y)`` in
    canonical face units in 1/4096, in the landmark order the kind defines; ``image``: the
    crop, ``image_format`` 1 = baseline JPEG.
    """

    TYPE: ClassVar[PacketType] = PacketType.REGION_REFERENCE
    _MIN_BODY: ClassVar[int] = _REGION.size + 1 + 1

    digest_prefix: bytes
    kind: int
    frame_seq: int
    points: tuple[tuple[int, int, int, int], ...]
    image: bytes
    image_format: int = REGION_JPEG
    version: int = field(default=AUDIO_VERSION, kw_only=True)

    def __post_init__(self) -> None:
        v = _version(self.version)
        if v < _TYPE_SINCE[PacketType.REGION_REFERENCE]:
            raise ValueError(f"region references need bitstream version {_TYPE_SINCE[PacketType.REGION_REFERENCE]}, not {v}")
        _set(self, "version", v)
        _set(self, "digest_prefix", _bytes("digest_prefix", self.digest_prefix, 8, 8))
        _set(self, "kind", _int("kind", self.kind, 1, 0xFF))
        _set(self, "frame_seq", _int("frame_seq", self.frame_seq, 0, _U16))
        _set(self, "image_format", _int("image_format", self.image_format, REGION_JPEG, REGION_JPEG))
        pts = np.asarray(self.points)
        if pts.ndim != 2 or pts.shape[1] != 4 or not 1 <= len(pts) <= MAX_REGION_POINTS:
            raise ValueError(f"points must be 1..{MAX_REGION_POINTS} rows of 4 ints, got shape {pts.shape}")
        if not np.issubdtype(pts.dtype, np.integer) or pts.min() < -32768 or pts.max() > 32767:
            raise ValueError("points must be int16 values")
        _set(self, "points", tuple(tuple(int(x) for x in row) for row in pts))
        _set(self, "image", _bytes("image", self.image, 1, MAX_REGION_IMAGE))

    def __bytes__(self) -> bytes:
        return b"".join(
            (
                _header(self.TYPE, self.version),
                _REGION.pack(self.digest_prefix, self.kind, self.frame_seq, len(self.points)),
                b"".join(_REGION_POINT.pack(*row) for row in self.points),
                _U8.pack(self.image_format),
                self.image,
            )
        )

    @classmethod
    def _from_body(cls, reader: _Reader) -> Dict[str, Any]:
        prefix, kind, frame_seq, n = reader.unpack(_REGION)
        if not 1 <= n <= MAX_REGION_POINTS:
            raise InvalidPacket(f"{reader.name}: {n} points (1..{MAX_REGION_POINTS})")
        points = tuple(reader.unpack(_REGION_POINT) for _ in range(n))
        (fmt,) = reader.unpack(_U8)
        if fmt != REGION_JPEG:
            raise InvalidPacket(f"{reader.name}: unknown image format {fmt}")
        image = reader.rest()
        if not 1 <= len(image) <= MAX_REGION_IMAGE:
            raise InvalidPacket(f"{reader.name}: image of {len(image)} bytes (1..{MAX_REGION_IMAGE})")
        return {"digest_prefix": prefix, "kind": kind, "frame_seq": frame_seq, "points": points, "image": image, "image_format": fmt}

    @property
    def pixel_points(self) -> np.ndarray:
        """(N, 2) point positions in the crop, pixels."""
        return np.array(self.points, np.float64)[:, :2] * REGION_PX_STEP

    @property
    def canonical_points(self) -> np.ndarray:
        """(N, 2) point positions in canonical face units."""
        return np.array(self.points, np.float64)[:, 2:] * REGION_CANON_STEP


# ---------------------------------------------------------------- dispatch

#: any packet
Packet = Union[SessionHeader, ReferenceChunk, KeyFrame, PredictedFrame, NoFace, Seal, End, AudioPacket, RegionReference]

_PARSERS: Dict[PacketType, Callable[[bytes], Packet]] = {
    PacketType.SESSION_HEADER: SessionHeader._parse_body,
    PacketType.REFERENCE_CHUNK: ReferenceChunk._parse_body,
    PacketType.KEY_FRAME: KeyFrame._parse_body,
    PacketType.PREDICTED_FRAME: PredictedFrame._parse_body,
    PacketType.NO_FACE: NoFace._parse_body,
    PacketType.SEAL: Seal._parse_body,
    PacketType.END: End._parse_body,
    PacketType.AUDIO: AudioPacket._parse_body,
    PacketType.REGION_REFERENCE: RegionReference._parse_body,
}

_TYPES_BY_BYTE: Dict[int, PacketType] = {int(t): t for t in PacketType}


def _check_header(data: bytes) -> PacketType:
    """Check length, magic, version and type byte, in that order."""
    if len(data) < _HEADER_SIZE:
        raise InvalidPacket(f"packet truncated: header needs {_plural(_HEADER_SIZE - len(data), 'more byte')}")
    if data[:2] != MAGIC:
        raise InvalidPacket(f"bad packet magic {data[:2].hex()} (expected 464c, 'FL')")
    if data[2] not in SUPPORTED_VERSIONS:
        raise InvalidPacket(
            f"unsupported bitstream version {data[2]} (this parser reads versions "
            f"{', '.join(map(str, SUPPORTED_VERSIONS))}; a newer FaceLink wrote it: upgrade)"
        )
    ptype = _TYPES_BY_BYTE.get(data[3])
    if ptype is None or data[2] < _TYPE_SINCE.get(data[3], 1):
        raise InvalidPacket(f"unknown packet type 0x{data[3]:02x}")
    return ptype


def parse_packet(data: bytes) -> Packet:
    """Parse any packet; raises InvalidPacket (only) for malformed input."""
    raw = _data(data)
    return _PARSERS[_check_header(raw)](raw)
