"""The receiver pipeline: keypoint frames -> driving landmarks (re-posed / re-targeted) -> images.

Driving landmarks are computed *relative to an anchor pose* that the sender puts in the
session header: the pose, in the sender's frame coordinates, at which the face looks
like the reference.  When the reference was a frame of the same video the anchor is the
reference's own pose and the mapping is the identity (self-reenactment reproduces the
original positions); with another reference (a photo, another person, a cartoon) the
head motion and expression are applied to that image's own face:

    R = R_offset @ R_t @ R_anchor^T @ R_target
    s = s_target * s_t / s_anchor
    t = t_target + (t_t - t_anchor) * s_target / s_anchor
    shape = identity_target + sum_k c_k mode_k
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Iterator

import numpy as np

from .bitstream import RegionKind
from .codec import FrameKind, KeypointFrame, Reference, StreamDecoder
from .codec._extensions import ANCHOR_TAG, decode_anchor, encode_anchor  # noqa: F401 - re-exported
from .codec._stream import eye_reference
from .generator import EyeControls
from .errors import InputError
from .face import EyeState
from .watermark import MIN_SIDE, PUBLIC_MARK_KEY, Watermarker, WatermarkPayload
from .keypoints import ExpressionBasis, KeypointFitter, Pose, euler_from_matrix, matrix_from_euler
from .provenance._manifest import RecordingLog

__all__ = [
    "ANCHOR_TAG",
    "FrameRenderer",
    "RenderedFrame",
    "Retargeter",
    "SessionRenderer",
    "decode_anchor",
    "encode_anchor",
    "parse_pose",
]

#: free-view limits (degrees): yaw, pitch, roll
POSE_LIMITS = (30.0, 20.0, 20.0)


def parse_pose(text: str) -> tuple[float, float, float]:
    """``"YAW,PITCH,ROLL"`` in degrees, checked against the free-view limits."""
    parts = text.split(",")
    if len(parts) != 3:
        raise ValueError(f"--pose wants YAW,PITCH,ROLL in degrees, got {text!r}")
    try:
        vals = tuple(float(p) for p in parts)
    except ValueError:
        raise ValueError(f"--pose wants three numbers, got {text!r}") from None
    for v, lim, name in zip(vals, POSE_LIMITS, ("yaw", "pitch", "roll")):
        if not math.isfinite(v) or abs(v) > lim:
            raise ValueError(f"--pose {name} must be within ±{lim:g} degrees, got {v:g}")
    return vals  # type: ignore[return-value]


#: eye contact: iris shift (eye widths) per unit of the camera direction's sideways component
#: in head coordinates (eyeball radius ~12 mm over an eye width of ~28 mm)
EYE_CONTACT_GAIN = 0.43
#: eye contact: frames over which the sender's usual gaze (at its screen) is taken
EYE_CONTACT_WINDOW = 90
#: lids: an eye whose opening is below EYE_SHUT of its usual opening is rendered shut, above
#: EYE_OPEN it follows the measurement; the usual opening is the running maximum, decaying by
#: EYE_OPEN_DECAY per frame (half-life ~2.3 s at 30 fps)
EYE_SHUT = 0.62
EYE_OPEN = 0.85
EYE_OPEN_DECAY = 0.99
#: an eye below this fraction of its usual opening closes with its partner when that one is shut
EYE_PARTNER = 0.9
#: looking down narrows the eye like a blink does: with the gaze this far (eye widths) below its
#: recent median the shut/open thresholds drop by EYE_DOWN_SHIFT (linearly from 0.01 below)
EYE_DOWN_GAZE = 0.05
EYE_DOWN_SHIFT = 0.2


def _per_eye(values: np.ndarray) -> np.ndarray:
    """(2, 3) rows of (gaze x, gaze y, openness) per eye from the 6 coded eye values."""
    st = EyeState.from_array(values)
    return np.column_stack([st.gaze, st.openness])


class Retargeter:
    """Maps decoded (pose, expression, eyes) onto a target face (the stream's reference or another image).

    ``sender_eyes``: the stream reference's 6 eye values (its session header's eye channels),
    the origin of every frame's eye values; ``None`` for a stream without eye channels (then
    :meth:`eyes` returns ``None`` and the generator shapes blinks from the landmarks alone).
    ``eye_contact``: redirect the rendered gaze at the camera (see :meth:`eyes`).
    """

    def __init__(
        self,
        basis: ExpressionBasis,
        k: int,
        target_landmarks: np.ndarray,
        anchor: Pose | None,
        pose_offset_deg: tuple[float, float, float] = (0.0, 0.0, 0.0),
        *,
        sender_eyes: np.ndarray | None = None,
        eye_contact: bool = False,
    ) -> None:
        self.fitter, self.target_pose = KeypointFitter.from_reference(basis, target_landmarks, k)
        self.anchor = anchor or self.target_pose
        yaw, pitch, roll = (math.radians(v) for v in pose_offset_deg)
        self._r_off = matrix_from_euler(yaw, pitch, roll)
        self._r_anchor_t = self.anchor.rotation.T
        self.sender_eyes = None if sender_eyes is None else _per_eye(sender_eyes)
        self.eye_contact = eye_contact
        self._open_level = np.zeros(2) if self.sender_eyes is None else self.sender_eyes[:, 2].copy()
        self._gaze_history: deque[np.ndarray] = deque(maxlen=EYE_CONTACT_WINDOW)
        self._gaze_y_history: deque[float] = deque(maxlen=EYE_CONTACT_WINDOW)
        self._camera_ref = self.target_pose.rotation.T @ np.array([0.0, 0.0, -1.0])

    def pose(self, p: Pose) -> Pose:
        tgt = self.target_pose
        r = self._r_off @ p.rotation @ self._r_anchor_t @ tgt.rotation
        yaw, pitch, roll = euler_from_matrix(r)
        k = tgt.scale / self.anchor.scale
        return Pose(yaw, pitch, roll, tgt.tx + (p.tx - self.anchor.tx) * k, tgt.ty + (p.ty - self.anchor.ty) * k, tgt.scale * p.scale / self.anchor.scale)

    def landmarks(self, frame: KeypointFrame) -> np.ndarray:
        if frame.pose is None or frame.coeffs is None:
            raise ValueError("frame carries no face")
        return self.fitter.reconstruct(self.pose(frame.pose), frame.coeffs)

    def eyes(self, frame: KeypointFrame) -> EyeControls | None:
        """The generator's eye controls for a decoded frame (``None`` without eye channels).

        Relative to the stream's reference, so they transfer to any target face: the lid gap
        as a ratio to the reference's (to the larger of it and 60 % of the usual opening, so a
        reference caught mid-blink does not make every frame wide-eyed), brought to 0 as the
        eye's opening falls from ``EYE_OPEN`` to ``EYE_SHUT`` of its usual value (a blink; both
        lower by up to ``EYE_DOWN_SHIFT`` while the gaze points down, which narrows the eye too);
        the gaze as a difference.  With ``eye_contact`` the gaze is
        redirected at the camera: the sender's usual gaze over the last 3 s (where its screen
        is) is taken out, its glances away from it are kept, and the eyes counter-rotate
        against the rendered head's rotation relative to the target image (which is assumed to
        look at the camera) — so they meet the viewer's eyes at any ``--pose``.  Blinks and
        lids are untouched.
        """
        if self.sender_eyes is None or frame.eyes is None or frame.pose is None:
            return None
        v = _per_eye(frame.eyes)
        ref = self.sender_eyes
        self._open_level = np.maximum(self._open_level * EYE_OPEN_DECAY, v[:, 2])
        # closure is judged against the usual opening (the Iris model reads ~45-75 % of it on a
        # shut eye: the lash band has thickness), the rendered gap against the reference's
        usual = v[:, 2] / np.maximum(self._open_level, 1e-3)
        # blinks are bilateral: an eye that is clearly shut pulls a half-shut partner with it
        # (a wink leaves the other eye open, above EYE_PARTNER of its usual opening)
        for e in range(2):
            if usual[1 - e] < EYE_SHUT and usual[e] < EYE_PARTNER:
                usual[e] = min(usual[e], usual[1 - e] + 0.05)
        # a downward look lowers the lids without shutting them: judge it against lower thresholds
        gy = float(v[:, 1].mean())
        self._gaze_y_history.append(gy)
        below = gy - float(np.median(self._gaze_y_history))
        down = EYE_DOWN_SHIFT * min(max((below - 0.01) / (EYE_DOWN_GAZE - 0.01), 0.0), 1.0)
        t = np.clip((usual - (EYE_SHUT - down)) / (EYE_OPEN - EYE_SHUT), 0.0, 1.0)
        lids = v[:, 2] / np.maximum(np.maximum(ref[:, 2], 0.6 * self._open_level), 0.05) * t * t * (3 - 2 * t)
        gaze = v[:, :2] - ref[:, :2]
        if self.eye_contact:
            self._gaze_history.append(v[:, :2].copy())
            usual = np.median(np.stack(self._gaze_history), axis=0)
            camera = self.pose(frame.pose).rotation.T @ np.array([0.0, 0.0, -1.0])
            gaze = (v[:, :2] - usual) + EYE_CONTACT_GAIN * (camera - self._camera_ref)[None, :2]
        return EyeControls(lids, gaze)


@dataclass(frozen=True)
class RenderedFrame:
    """An output frame: its index and time, the image, and whether it is a held (repeated) frame."""

    index: int
    time: float
    image: np.ndarray
    held: bool
    kind: FrameKind


class SessionRenderer:
    """Decoded keypoint frames of the decoder's current session -> watermarked images.

    Retargeting (``target``: motion transfer; ``pose_offset``: free view), generation and
    the provenance watermark (``docs/provenance.md``): every frame that leaves is marked
    with the public FaceLink mark key and a payload binding it to the signed session
    header and to ``receiver_key`` (this receiver's Ed25519 public key; default: this
    machine's local key).  There is no switch to turn the mark off.  Frames without a
    decodable face repeat the last good image (before the first one: the reference).

    ``log`` (:class:`~facelink.provenance.RecordingLog`) records the sessions and frames
    rendered, for the signed provenance manifest; the caller adds the verified seals.
    """

    def __init__(
        self,
        *,
        target: Reference | None = None,
        pose_offset: tuple[float, float, float] = (0.0, 0.0, 0.0),
        backend: str = "auto",
        receiver_key: bytes | None = None,
        refiner: str | None = "off",
        eye_contact: bool = False,
    ) -> None:
        self.target = target
        self.pose_offset = pose_offset
        self.backend = backend
        self.refiner = refiner
        self.eye_contact = eye_contact
        self._receiver_key = receiver_key
        self._session: bytes | None = None
        self._retarget: Retargeter | None = None
        self._gen = None
        self._wm: Watermarker | None = None
        self._last: np.ndarray | None = None
        self.generated = 0
        self.generate_seconds = 0.0
        self.mark_seconds = 0.0
        self.log = RecordingLog()

    @property
    def receiver_key(self) -> bytes | None:
        """The Ed25519 key in the watermark payload (known once a session is prepared)."""
        return self._receiver_key

    def prepare(self, decoder: StreamDecoder) -> None:
        """(Re)build for the decoder's session; the decoder must be ``ready``."""
        from .generator import Generator

        h = decoder.header
        if h is None or decoder.reference is None:
            raise ValueError("the decoder has no session yet")
        if self._session == h.session_id:
            return
        ref = self.target or decoder.reference
        if min(ref.image.shape[:2]) < MIN_SIDE:
            raise InputError(f"reference is {ref.width}x{ref.height}: too small to carry the provenance mark (min {MIN_SIDE} px)")
        anchor = decode_anchor(h.extensions)
        if anchor is None:  # a stream without an anchor: its reference is a frame of the video
            anchor = KeypointFitter.from_reference(decoder.basis, decoder.reference.landmarks, h.n_coeffs)[1]
        sender_eyes = eye_reference(h)
        self._retarget = Retargeter(
            decoder.basis, h.n_coeffs, ref.landmarks, anchor, self.pose_offset,
            sender_eyes=None if sender_eyes is None else sender_eyes[0], eye_contact=self.eye_contact,
        )  # fmt: skip
        if self._gen is not None:
            self._gen.close()
        # where the target's irises are: measured on a motion-transfer target, else the stream's
        target_eyes = self.target.eyes if self.target is not None else None
        if self.target is None and sender_eyes is not None:
            target_eyes = EyeState.from_array(*sender_eyes)
        self._gen = Generator(ref.image, ref.landmarks, backend=self.backend, refiner=self.refiner, reference_eyes=target_eyes)
        if self._receiver_key is None:
            from .security._local import local_identity

            self._receiver_key = local_identity().public.ed25519
        self._wm = Watermarker(PUBLIC_MARK_KEY, WatermarkPayload.for_session(bytes(h), self._receiver_key))
        self.log.start(bytes(h), target_sha256=self.target.digest if self.target is not None else None, pose_offset=self.pose_offset)
        self._session = h.session_id
        self._last = ref.image
        self._region_serial = -1

    def _apply_regions(self, decoder: StreamDecoder) -> None:
        """Hand the session's region references to the generator (the sender's own face only:
        a motion-transfer target keeps its own mouth)."""
        self._region_serial = decoder.region_serial
        mouth = decoder.regions.get(RegionKind.MOUTH_OPEN)
        if mouth is not None and self.target is None:
            self._gen.set_mouth_interior(mouth.image, mouth.pixels, mouth.canonical)  # type: ignore[union-attr]

    def set_eye_contact(self, on: bool) -> None:
        """Turn eye contact on or off from the next frame (see :meth:`Retargeter.eyes`)."""
        self.eye_contact = bool(on)
        if self._retarget is not None:
            self._retarget.eye_contact = self.eye_contact

    @property
    def generator(self):
        """The session's :class:`~facelink.generator.Generator` (``None`` before :meth:`prepare`)."""
        return self._gen

    def driving_landmarks(self, kf: KeypointFrame) -> np.ndarray:
        """The landmarks the generator is driven with for a decoded frame with a face
        (retargeted to the target, re-posed); requires :meth:`prepare`."""
        if self._retarget is None:
            raise ValueError("no session yet: call prepare() first")
        return self._retarget.landmarks(kf)

    def render(self, decoder: StreamDecoder, kf: KeypointFrame) -> RenderedFrame:
        """The watermarked output image for one decoded frame of the decoder's session."""
        import time

        self.prepare(decoder)
        held = kf.pose is None
        if decoder.region_serial != self._region_serial:
            self._apply_regions(decoder)
        if not held:
            lm = self.driving_landmarks(kf)
            eyes = self._retarget.eyes(kf)  # type: ignore[union-attr]
            t0 = time.perf_counter()
            self._last = self._gen.render(lm, eyes)  # type: ignore[union-attr]
            self.generate_seconds += time.perf_counter() - t0
            self.generated += 1
        t0 = time.perf_counter()
        marked = self._wm.embed(self._last, kf.index)  # type: ignore[union-attr,arg-type]
        self.mark_seconds += time.perf_counter() - t0
        self.log.frame(time.time(), self._session, image=marked)  # fingerprinted for the manifest
        return RenderedFrame(kf.index, kf.time, marked, held, kf.kind)


class FrameRenderer:
    """Decoder + :class:`SessionRenderer`: feed packets, get watermarked frames.

    ``target`` replaces the stream's reference (motion transfer); ``pose_offset`` re-poses
    the head (free view); ``receiver_key`` goes into every frame's watermark payload.
    """

    def __init__(
        self,
        *,
        target: Reference | None = None,
        pose_offset: tuple[float, float, float] = (0.0, 0.0, 0.0),
        backend: str = "auto",
        basis: ExpressionBasis | None = None,
        receiver_key: bytes | None = None,
        refiner: str | None = "off",
        eye_contact: bool = False,
    ) -> None:
        self.decoder = StreamDecoder(basis=basis)
        self.session = SessionRenderer(
            target=target, pose_offset=pose_offset, backend=backend, receiver_key=receiver_key, refiner=refiner,
            eye_contact=eye_contact,
        )  # fmt: skip

    @property
    def reference(self) -> Reference | None:
        return self.session.target or self.decoder.reference

    @property
    def generated(self) -> int:
        return self.session.generated

    @property
    def generate_seconds(self) -> float:
        return self.session.generate_seconds

    def push(self, packet: bytes) -> RenderedFrame | None:
        """Feed one packet; returns the output frame for frame packets, else ``None``.

        Raises :class:`~facelink.errors.InvalidPacket` for malformed packets.
        """
        kf = self.decoder.feed(packet)
        if kf is None or not self.decoder.ready:
            return None  # control packets, or nothing to show before header and reference
        return self.session.render(self.decoder, kf)

    def render_all(self, packets) -> Iterator[RenderedFrame]:
        for p in packets:
            out = self.push(p)
            if out is not None:
                yield out
