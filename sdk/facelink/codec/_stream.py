"""Keypoint streams: landmarks -> packets on the sender, packets -> keypoint frames on the receiver.

Pure and stateful: no sockets, clocks or files.  The encoder runs the quantiser in the
loop (its prediction state is exactly what the decoder reconstructs), so predicted frames
never drift; a lost packet makes the decoder report ``LOST`` frames until the next key
frame.
"""

from __future__ import annotations

import enum
import math
import os
import time as _time
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from .. import bitstream as bs
from ..errors import InvalidPacket
from ..keypoints import ExpressionBasis, KeypointFitter, Pose, default_basis
from ._params import N_POSE, CodecParams
from ._reference import Reference
from ._regions import Region, parse_region

__all__ = ["FrameKind", "KeypointFrame", "StreamDecoder", "StreamEncoder", "PTS_HZ", "eye_reference"]

#: timestamps in packets are in 1/90000 s (as RTP video clocks)
PTS_HZ = 90_000
#: reference chunks carry at most this many bytes
CHUNK = 16_000
#: typical deviation of each pose field from the reference (degrees, face units, log):
#: the key-frame entropy models; coefficients use the basis' own std
_KEY_POSE_SPREAD = np.array([8.0, 6.0, 4.0, 0.15, 0.15, 0.08])
#: eye channels (common gaze x, y; half the eyes' gaze difference x, y; openness right, left):
#: typical deviation from the reference (key frames) and mean absolute change per frame
#: (predicted frames)
_EYE_KEY_SPREAD = np.array([0.06, 0.05, 0.02, 0.02, 0.06, 0.06])
_EYE_PRED_MOTION = np.array([0.01, 0.008, 0.004, 0.004, 0.02, 0.02])
#: without a measurement the coded eyes move this fraction of the way back to the reference's
#: per frame (90 % in ~0.5 s at 30 fps): a face whose eyes vanish mid-blink does not stay shut
EYE_RELAX = 0.15
#: eye values assumed for a reference whose eyes could not be measured
_NOMINAL_EYES = np.array([0.0, 0.0, 0.0, 0.0, 0.18, 0.18])


class FrameKind(enum.Enum):
    KEY = "key"
    PREDICTED = "predicted"
    NO_FACE = "no_face"
    LOST = "lost"  # a predicted frame whose basis was lost; shown as the last good frame


@dataclass(frozen=True, eq=False)
class KeypointFrame:
    """One decoded frame of a stream: its index, time (s) and, when a face was coded, pose + expression."""

    index: int
    time: float
    kind: FrameKind
    pose: Pose | None = None
    coeffs: np.ndarray | None = None
    #: the 6 eye values (:meth:`~facelink.face.EyeState.as_array`) of a stream
    #: with eye channels (see :class:`~facelink.face.EyeState`), else ``None``
    eyes: np.ndarray | None = None

    @property
    def has_face(self) -> bool:
        return self.pose is not None

    @property
    def decodable(self) -> bool:
        """False for a frame that arrived before its session's header and reference (a late
        join): it has an index but no time (NaN) and nothing to show."""
        return not math.isnan(self.time)


def _steps(params: CodecParams, face_px: float) -> np.ndarray:
    return np.array(
        [params.rot_step] * 3 + [params.trans_step * face_px] * 2 + [params.scale_step] + [params.coeff_step] * params.k
    )


def _eye_steps(steps: tuple[float, float]) -> np.ndarray:
    """Per eye value: the common gaze at the gaze step, the half-difference at twice it."""
    gaze, opening = steps
    return np.array([gaze, gaze, 2 * gaze, 2 * gaze, opening, opening])


def _fields(pose: Pose, coeffs: np.ndarray, eyes: np.ndarray | None = None) -> np.ndarray:
    parts = [np.degrees([pose.yaw, pose.pitch, pose.roll]), [pose.tx, pose.ty, math.log(pose.scale)], coeffs]
    if eyes is not None:
        parts.append(eyes)
    return np.concatenate(parts)


def _from_fields(v: np.ndarray, k: int | None = None) -> tuple[Pose, np.ndarray, np.ndarray | None]:
    yaw, pitch, roll = np.radians(v[:3])
    pose = Pose(float(yaw), float(pitch), float(roll), float(v[3]), float(v[4]), float(math.exp(v[5])))
    end = len(v) if k is None else N_POSE + k
    eyes = v[end:].copy() if end < len(v) else None
    return pose, v[N_POSE:end].copy(), eyes


def _scale_index(b: np.ndarray) -> bytes:
    table = np.log(np.asarray(bs.SCALES))
    idx = np.abs(np.log(np.maximum(b, 1e-6))[:, None] - table[None, :]).argmin(1)
    return bytes(int(i) for i in idx)


@dataclass(frozen=True)
class _Session:
    """What both ends derive from the header and the reference."""

    header: "bs.SessionHeader"
    fitter: KeypointFitter
    ref_fields: np.ndarray
    steps: np.ndarray
    nominal: Fraction  # seconds per frame
    key_scales: bytes
    pred_scales: bytes

    def pts_ticks(self, index: int) -> int:
        return round(index * self.nominal * PTS_HZ)


#: sane ranges for header fields (anything outside is a corrupt or hostile header)
_STEP_LIMITS = ((1e-4, 10.0), (1e-4, 1000.0), (1e-5, 1.0), (1e-5, 10.0))


def _check_header(h: "bs.SessionHeader") -> None:
    for v, (lo, hi), name in zip(h.steps, _STEP_LIMITS, ("rotation", "translation", "scale", "coefficient")):
        if not (math.isfinite(v) and lo <= v <= hi):
            raise InvalidPacket(f"session header: {name} step {v!r} out of range")
    if h.fps_num <= 0 or h.fps_den <= 0 or not 1 / 1000 <= h.fps_num / h.fps_den <= 1000:
        raise InvalidPacket("session header: frame rate out of range")
    if h.width <= 0 or h.height <= 0:
        raise InvalidPacket("session header: frame size is zero")


def _decoded_pose(s: "_Session", q: np.ndarray) -> tuple[Pose, np.ndarray, np.ndarray | None]:
    v = s.ref_fields + q * s.steps
    if not (np.all(np.isfinite(v)) and np.all(np.abs(v[:3]) <= 720) and abs(v[5]) <= 30 and np.all(np.abs(v[3:5]) <= 1e7)):
        raise InvalidPacket("decoded pose out of range")
    pose, coeffs, eyes = _from_fields(v, s.header.n_coeffs)
    if eyes is not None and not np.all(np.abs(eyes) <= 10.0):
        raise InvalidPacket("decoded eye values out of range")
    return pose, coeffs, eyes


def _session(header: "bs.SessionHeader", reference: Reference, basis: ExpressionBasis) -> _Session:
    fitter, ref_pose = KeypointFitter.from_reference(basis, reference.landmarks, header.n_coeffs)
    steps = np.array([header.steps[0]] * 3 + [header.steps[1]] * 2 + [header.steps[2]] + [header.steps[3]] * header.n_coeffs)
    ref_fields = _fields(ref_pose, np.zeros(header.n_coeffs))
    eyes = header.eye_channels
    if eyes is not None:
        steps = np.concatenate([steps, _eye_steps(eyes.steps)])
        ref_fields = np.concatenate([ref_fields, np.asarray(eyes.reference, np.float64)])
    key_scales, pred_scales = header.frame_scales
    return _Session(header, fitter, ref_fields, steps, Fraction(header.fps_den, header.fps_num), key_scales, pred_scales)


def eye_reference(header: "bs.SessionHeader") -> tuple[np.ndarray, np.ndarray] | None:
    """The reference image's 6 eye values and its iris radii (eye widths; 0 = none found)
    from a session header with eye channels, else ``None``."""
    eyes = header.eye_channels
    if eyes is None:
        return None
    return np.asarray(eyes.reference, np.float64), np.asarray(eyes.iris_radius, np.float64)


class StreamEncoder:
    """Codes one session.  Call :meth:`start` once, :meth:`encode` per frame, :meth:`end` last."""

    def __init__(
        self,
        reference: Reference,
        params: CodecParams,
        *,
        width: int,
        height: int,
        fps: Fraction | float,
        basis: ExpressionBasis | None = None,
        session_id: bytes | None = None,
        created_us: int | None = None,
        extensions: tuple[tuple[int, bytes], ...] = (),
        audio: "bs.AudioParams | None" = None,
    ) -> None:
        """``audio``: the session carries AUDIO packets coded with these parameters (see
        :mod:`facelink.audio`); its header is then bitstream version 3 with extension 4, and so
        are all its packets.  A session that may send region references
        (``params.region_bytes`` > 0, :mod:`._regions`) is version 3 too.  Without either the
        stream is version 2, as before."""
        self.basis = basis or default_basis()
        if params.k > self.basis.max_k:
            raise ValueError(f"k={params.k} exceeds the basis' {self.basis.max_k} modes")
        self.params = params
        self.reference = reference
        fps = Fraction(fps).limit_denominator(1001) if fps else Fraction(30)
        fitter, ref_pose = KeypointFitter.from_reference(self.basis, reference.landmarks, params.k)
        steps = _steps(params, ref_pose.scale)
        motion = self.basis.motion
        pred_b = np.concatenate([motion[:N_POSE], motion[N_POSE : N_POSE + params.k]])
        pred_b = pred_b * np.array([1, 1, 1, ref_pose.scale, ref_pose.scale, 1] + [1] * params.k) / steps
        key_b = np.concatenate([_KEY_POSE_SPREAD * np.array([1, 1, 1, ref_pose.scale, ref_pose.scale, 1]), self.basis.std[: params.k]]) / steps
        if params.eyes:
            extensions = tuple(sorted(tuple(e for e in extensions if e[0] != bs.EYE_TAG) + ((bs.EYE_TAG, bytes(self._eye_channels(params, reference))),)))
        if audio is not None:
            if not isinstance(audio, bs.AudioParams):
                raise TypeError(f"audio must be AudioParams, got {type(audio).__name__}")
            extensions = tuple(sorted(tuple(e for e in extensions if e[0] != bs.AUDIO_TAG) + (audio.extension(),)))
        #: the version of every packet of this session
        self.version = bs.AUDIO_VERSION if audio is not None or params.region_bytes > 0 else bs.BITSTREAM_VERSION
        self.header = bs.SessionHeader(
            session_id=session_id if session_id is not None else os.urandom(16),
            created_us=created_us if created_us is not None else int(_time.time() * 1e6),
            width=width,
            height=height,
            fps_num=fps.numerator,
            fps_den=fps.denominator,
            key_interval=params.key_interval,
            n_coeffs=params.k,
            basis_id=self.basis.basis_id,
            steps=(float(np.float32(params.rot_step)), float(np.float32(steps[3])), float(np.float32(params.scale_step)), float(np.float32(params.coeff_step))),
            key_scales=_scale_index(key_b),
            pred_scales=_scale_index(np.maximum(pred_b, 1e-3)),
            reference_digest=reference.digest,
            reference_size=len(reference.blob),
            extensions=extensions,
            version=self.version,
        )
        # both ends must use the float32-rounded steps that the header carries
        self._s = _session(self.header, reference, self.basis)
        self._prev: np.ndarray | None = None
        self._since_key = 0
        self._frames = 0
        self._last_index = -1
        self._t0: float | None = None

    @staticmethod
    def _eye_channels(params: CodecParams, reference: Reference) -> "bs.EyeChannels":
        steps = (params.gaze_step, params.open_step)
        ref_eyes = reference.eyes
        if ref_eyes is not None and bool(np.all(ref_eyes.visible)):
            values = np.clip(ref_eyes.as_array(), -1.0, 1.0)
            radius = np.clip(ref_eyes.iris_radius, 0.0, 1.0)
        else:  # eyes not measured (or hidden) in the reference: nominal values, no iris
            values, radius = _NOMINAL_EYES, np.zeros(2)
        es = _eye_steps(steps)
        return bs.EyeChannels(
            steps,
            _scale_index(_EYE_KEY_SPREAD / es),
            _scale_index(np.maximum(_EYE_PRED_MOTION / es, 1e-3)),
            tuple(float(v) for v in values),
            tuple(float(v) for v in radius),
        )

    @property
    def fitter(self) -> KeypointFitter:
        return self._s.fitter

    def start(self) -> list[bytes]:
        """The session header and the reference chunks, in sending order."""
        return [bytes(self.header)] + self.reference_chunks()

    def reference_chunks(self) -> list[bytes]:
        blob = self.reference.blob
        n = max(1, -(-len(blob) // CHUNK))
        if n > 65535:
            raise ValueError("reference blob too large to chunk")
        prefix = self.reference.digest[:8]
        return [bytes(bs.ReferenceChunk(prefix, i, n, blob[i * CHUNK : (i + 1) * CHUNK], version=self.version)) for i in range(n)]

    @property
    def stream_start(self) -> float | None:
        """The capture time (seconds, the caller's clock) of frame 0: stream time 0, which AUDIO
        timestamps count from.  ``None`` before the first :meth:`encode`."""
        return self._t0

    def _pts_offset(self, index: int, t: float) -> int:
        if self._t0 is None:
            self._t0 = t
        return round((t - self._t0) * PTS_HZ) - self._s.pts_ticks(index)

    def encode(
        self, index: int, t: float, landmarks: np.ndarray | None, force_key: bool = False, eyes: object = None
    ) -> tuple[bytes, KeypointFrame]:
        """Code frame ``index`` taken at ``t`` seconds (``landmarks`` None = no face).

        ``eyes``: the frame's :class:`~facelink.face.EyeState` (or its 6 values) for a session
        with eye channels; ``None`` or a state with no eye visible eases the coded eyes back to
        the reference's (``EYE_RELAX`` of the way per frame).  Returns the packet and the frame exactly as the
        decoder will reconstruct it.
        """
        if index <= self._last_index:
            raise ValueError("frame indices must increase")
        self._last_index = index
        seq = index & 0xFFFF
        off = self._pts_offset(index, t)
        time = (self._s.pts_ticks(index) + off) / PTS_HZ
        self._frames += 1
        if landmarks is None:
            self._prev = None
            return bytes(bs.NoFace(seq, off, version=self.version)), KeypointFrame(index, time, FrameKind.NO_FACE)
        pose, coeffs = self._s.fitter.fit(landmarks)
        ev = None
        if self._s.header.eye_channels is not None:
            ev = self._eye_values(eyes)
        x = (_fields(pose, coeffs, ev) - self._s.ref_fields) / self._s.steps
        q = np.round(x).astype(np.int64)
        key = force_key or self._prev is None or self._since_key >= self.params.key_interval - 1
        if not key:
            hold = np.abs(x - self._prev) < 0.5 + self.params.hysteresis
            q = np.where(hold, self._prev, q)
        q = np.clip(q, -(1 << 20), 1 << 20)
        if key:
            pkt = bs.KeyFrame.from_values(seq, off, q.tolist(), self._s.key_scales, version=self.version)
            self._since_key = 0
        else:
            pkt = bs.PredictedFrame.from_values(seq, off, (q - self._prev).tolist(), self._s.pred_scales, version=self.version)
            self._since_key += 1
        self._prev = q
        pose_q, coeffs_q, eyes_q = _from_fields(self._s.ref_fields + q * self._s.steps, self.params.k)
        return bytes(pkt), KeypointFrame(index, time, FrameKind.KEY if key else FrameKind.PREDICTED, pose_q, coeffs_q, eyes_q)

    def _eye_values(self, eyes: object) -> np.ndarray:
        n = N_POSE + self.params.k
        ref = self._s.ref_fields[n:]
        hidden = eyes is None or (hasattr(eyes, "visible") and not np.any(eyes.visible))
        if hidden:  # no measurement (eyes hidden, profile, no Iris model): ease back to the reference's eyes
            if self._prev is None:
                return ref.copy()
            steps = self._s.steps[n:]
            last = ref + self._prev[n:] * steps
            d = ref - last  # at least one quantiser step a frame, so the hysteresis cannot stall it
            return last + np.sign(d) * np.minimum(np.abs(d), np.maximum(EYE_RELAX * np.abs(d), steps))
        v = np.asarray(eyes.as_array() if hasattr(eyes, "as_array") else eyes, np.float64).reshape(-1)
        if v.shape != (bs.EYE_VALUES,) or not np.all(np.isfinite(v)):
            raise ValueError(f"eyes must be an EyeState or {bs.EYE_VALUES} finite values")
        return np.clip(v, -1.0, 1.0)

    def end(self) -> bytes:
        return bytes(bs.End(max(self._last_index, 0) & 0xFFFF, self._frames, version=self.version))


class StreamDecoder:
    """Turns packets (in arrival order, possibly with losses) back into keypoint frames.

    :meth:`feed` returns a :class:`KeypointFrame` for every frame packet and ``None`` for
    the header, reference chunks and other control packets.  Malformed packets raise
    :class:`InvalidPacket`; callers that must survive a hostile link catch it and go on.
    """

    def __init__(self, basis: ExpressionBasis | None = None, reference: Reference | None = None) -> None:
        self.basis = basis or default_basis()
        self.header: bs.SessionHeader | None = None
        self.reference: Reference | None = reference
        self._external_reference = reference is not None
        self._chunks: dict[int, bytes] = {}
        self._s: _Session | None = None
        self._prev: np.ndarray | None = None
        self._index = -1
        self.ended = False
        #: the session's region references by kind (:mod:`._regions`); ``region_serial``
        #: counts the changes, so a renderer can tell when to apply them
        self.regions: dict[int, Region] = {}
        self.region_serial = 0
        self._region_packets: dict[int, bs.RegionReference] = {}

    @property
    def ready(self) -> bool:
        """True once header and reference are known (frames can be decoded)."""
        return self._s is not None

    def _try_start(self) -> None:
        if self.header is not None and self.reference is not None and self._s is None:
            if self.header.n_coeffs > self.basis.max_k:
                raise InvalidPacket(f"stream uses {self.header.n_coeffs} expression modes, this basis has {self.basis.max_k}")
            self._s = _session(self.header, self.reference, self.basis)

    def _on_header(self, h: "bs.SessionHeader") -> None:
        if h.basis_id != self.basis.basis_id:
            raise InvalidPacket(f"stream was coded with expression basis {h.basis_id.hex()}, this SDK has {self.basis.basis_id.hex()}")
        if self.header is not None and h.session_id == self.header.session_id:
            return  # repeated header (sent periodically for late joiners)
        _check_header(h)
        self.header, self._s, self._prev, self._index = h, None, None, -1
        if not self._external_reference:
            self.reference = None
            self._chunks = {}
        if self.regions:
            self.regions, self._region_packets = {}, {}
            self.region_serial += 1
        self._try_start()

    def _on_chunk(self, c: "bs.ReferenceChunk") -> None:
        h = self.header
        if h is None or self.reference is not None or c.digest_prefix != h.reference_digest[:8]:
            return
        self._chunks[c.index] = c.data
        if len(self._chunks) == c.count and all(i in self._chunks for i in range(c.count)):
            blob = b"".join(self._chunks[i] for i in range(c.count))
            import hashlib

            if len(blob) != h.reference_size or hashlib.sha256(blob).digest() != h.reference_digest:
                self._chunks = {}
                raise InvalidPacket("reference chunks do not match the session header's digest")
            self.reference = Reference.parse(blob)
            self._chunks = {}
            self._try_start()

    def _on_region(self, pkt: "bs.RegionReference") -> None:
        h = self.header
        if h is None:
            raise InvalidPacket("region reference before the session header")
        if pkt.digest_prefix != h.reference_digest[:8]:
            raise InvalidPacket("region reference of another session (its reference digest does not match)")
        if self._region_packets.get(pkt.kind) == pkt:
            return  # repeated for late joiners
        region = parse_region(pkt)
        if region is not None:
            self.regions[pkt.kind] = region
            self._region_packets[pkt.kind] = pkt
            self.region_serial += 1

    def _unwrap(self, seq: int) -> int:
        if self._index < 0:
            return seq
        return self._index + ((seq - self._index) & 0xFFFF or 0x10000)

    def feed(self, data: bytes) -> KeypointFrame | None:
        pkt = bs.parse_packet(data)
        if self.header is not None and pkt.version != self.header.version and not isinstance(pkt, bs.SessionHeader):
            raise InvalidPacket(f"a version {pkt.version} packet in a version {self.header.version} session")
        if isinstance(pkt, bs.SessionHeader):
            self._on_header(pkt)
            return None
        if isinstance(pkt, bs.ReferenceChunk):
            self._on_chunk(pkt)
            return None
        if isinstance(pkt, bs.End):
            self.ended = True
            return None
        if isinstance(pkt, bs.RegionReference):
            self._on_region(pkt)
            return None
        if not isinstance(pkt, (bs.KeyFrame, bs.PredictedFrame, bs.NoFace)):
            return None  # seals and other control packets are handled by the layers above
        if self._s is None:
            # no header/reference yet (late join): nothing can be shown
            idx = self._unwrap(pkt.seq)
            self._index = idx
            return KeypointFrame(idx, float("nan"), FrameKind.LOST)
        s = self._s
        idx = self._unwrap(pkt.seq)
        contiguous = idx == self._index + 1
        self._index = idx
        time = (s.pts_ticks(idx) + pkt.pts_offset) / PTS_HZ
        if isinstance(pkt, bs.NoFace):
            self._prev = None
            return KeypointFrame(idx, time, FrameKind.NO_FACE)
        if isinstance(pkt, bs.KeyFrame):
            q = pkt.decode_values(s.key_scales).astype(np.int64)
            kind = FrameKind.KEY
        else:
            if self._prev is None or not contiguous:
                self._prev = None
                return KeypointFrame(idx, time, FrameKind.LOST)
            q = self._prev + pkt.decode_values(s.pred_scales).astype(np.int64)
            kind = FrameKind.PREDICTED
        pose, coeffs, eyes = _decoded_pose(s, q)
        self._prev = q
        return KeypointFrame(idx, time, kind, pose, coeffs, eyes)

    def landmarks(self, frame: KeypointFrame) -> np.ndarray:
        """Image-space (468, 3) landmarks of a decoded frame with a face."""
        if self._s is None or frame.pose is None or frame.coeffs is None:
            raise ValueError("frame carries no face")
        return self._s.fitter.reconstruct(frame.pose, frame.coeffs)

    @property
    def fitter(self) -> KeypointFitter | None:
        return self._s.fitter if self._s else None
