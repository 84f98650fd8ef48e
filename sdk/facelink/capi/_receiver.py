"""The C API's live receivers: ``facelink_receiver_*`` over :class:`facelink.pipeline.RendererSession`."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ..errors import NoFaceError, VerificationError
from ._core import (
    _BPP,
    _KIND_BY_NAME,
    _RECEIVER,
    PixelFormat,
    Status,
    _api,
    _backend,
    _buffer,
    _destroy,
    _Fail,
    _flag,
    _float,
    _image_rgb,
    _invalid,
    _Object,
    _opt_path,
    _pixel_format,
    _pixels_out,
    _pose_offset,
    _register,
    _using,
)

@dataclass(frozen=True)
class ReceivedFrame:
    """An output frame: pixels of ``format`` (tightly packed: ``stride = width * bpp``) and its timing."""

    index: int
    time: float
    kind: int
    held: bool
    width: int
    height: int
    stride: int
    format: int
    data: bytes


#: frames remembered per receiver to name the frames of a span in a verification message
_MAX_TRACKED_FRAMES = 8192


class _Receiver(_Object):
    kind = _RECEIVER

    def __init__(self, session: Any, fmt: PixelFormat, max_age: float | None = None) -> None:
        super().__init__()
        #: a facelink.pipeline.RendererSession
        self.session = session
        self.format = fmt
        #: the last frame's pixels: kept alive until the next push or destroy (the C ABI lends them)
        self.last: bytes | None = None
        self.max_age = max_age
        #: (arrival index, frame index) of the frames returned whose span is not closed yet
        self.unsealed: list[tuple[int, int]] = []
        #: why the session was refused (then every push fails with E_UNTRUSTED)
        self.refused: str | None = None

    def close(self) -> None:
        self.session = None
        self.last = None
        self.unsealed = []

    def frames_in(self, spans: Any) -> str:
        """" (frames A-B)" for the frames returned in ``spans`` (arrival ranges); forgets them."""
        got = [f for a, f in self.unsealed if any(s.first <= a <= s.last for s in spans)]
        end = max(s.last for s in spans)
        self.unsealed = [(a, f) for a, f in self.unsealed if a > end]
        if not got:
            return ""
        return f" (frame {got[0]})" if len(got) == 1 else f" (frames {min(got)}-{max(got)}, {len(got)} returned)"


def _verify(r: _Receiver, packet: bytes) -> tuple[int, Status, str]:
    """Feed ``packet`` to the receiver's verifier: (arrival index, status, message) for a seal
    verdict; raises E_UNTRUSTED on a refused session and E_VERIFICATION for a dropped header."""
    import time as _time

    from ..security import SealStatus, SpanStatus

    v = r.session.verifier
    try:
        verdict = r.session.verdict(packet, now=_time.time() if r.max_age is not None else None)
    except VerificationError as e:
        r.refused = str(e)
        raise _Fail(Status.E_UNTRUSTED, f"session refused: {e}") from None
    i = verdict.index
    if verdict.seal is None:
        if verdict.note:  # a second, different session header: never handed to the decoder
            raise _Fail(
                Status.E_VERIFICATION,
                f"packet {i}: {verdict.note}, dropped (a receiver shows one session; create a new receiver for another)",
            )
        return i, Status.OK, ""
    spans = verdict.spans
    if verdict.note:  # a seal in an unsigned stream (insecure): its signer extension was stripped?
        return i, Status.E_VERIFICATION, f"packet {i}: {verdict.note} (was the header's signer extension stripped?)"
    if verdict.seal is SealStatus.REPLAYED:
        from ..bitstream import parse_packet

        counter = parse_packet(packet).counter  # type: ignore[union-attr]
        return i, Status.E_VERIFICATION, (
            f"packet {i}: replayed seal (counter {counter}, already at {v.highest_counter}): ignored, "
            "its span stays open; a replay or reordering on the link"
        )
    bad = [sp for sp in spans if sp.status is SpanStatus.MISMATCH]
    if bad or verdict.seal is SealStatus.BAD_SIGNATURE:
        sp = bad[0] if bad else spans[0]
        return i, Status.E_VERIFICATION, (
            f"packets {sp.first}-{sp.last}{r.frames_in(spans)} failed verification ({sp.status.value}: {sp.reason}); "
            "treat those frames as not authentic"
        )
    lost = [sp for sp in spans if sp.status is not SpanStatus.VERIFIED]
    if lost:
        sp = lost[0]
        return i, Status.E_INCOMPLETE, (
            f"packets {sp.first}-{sp.last}{r.frames_in(spans)} cannot be verified ({sp.status.value}: {sp.reason})"
        )
    if spans:
        r.frames_in(spans)
    return i, Status.OK, ""


@_api("facelink_receiver_create", 0)
def receiver_create(
    fmt: object = PixelFormat.RGB24,
    *,
    yaw: object = 0.0,
    pitch: object = 0.0,
    roll: object = 0.0,
    backend: object = None,
    target: object = None,
    target_width: object = 0,
    target_height: object = 0,
    target_stride: object = 0,
    target_format: object = PixelFormat.RGB24,
    verify: object = False,
    trust_dir: object = None,
    insecure: object = False,
    max_age: object = 0.0,
) -> tuple[Status, int]:
    """A receiver producing frames in pixel format ``fmt``; returns ``(status, handle)``.

    ``yaw``/``pitch``/``roll`` re-pose the head (degrees, within ±30/±20/±20).  ``target``
    (an image buffer, or None for the stream's own reference) is another face to drive
    (motion transfer); it must show a detectable face.

    ``verify`` (ABI 1.1; ``facelink_receiver_create_ex``) checks every seal, like
    ``facelink receive``: the signer must be in ``trust_dir`` (None = the default trust
    directory, read now) unless ``insecure`` (which also accepts unsigned streams);
    ``max_age`` > 0 refuses seals signed longer ago than that many seconds (replayed
    recordings; needs synchronised clocks).  See :func:`receiver_push` for the statuses.
    Without ``verify`` seals are passed over (ABI 1.0 behaviour).
    """
    from ..backend import select_backend
    from ..pipeline import RendererSession

    pf = _pixel_format("format", fmt)
    offset = _pose_offset(yaw, pitch, roll)
    be = _backend(backend)
    check = _flag("verify", verify)
    trust = _opt_path("trust_dir", trust_dir)
    lax = _flag("insecure", insecure)
    age = _float("max_age", max_age, 0.0)
    store = None
    if check:
        from pathlib import Path

        from ..security import TrustStore, default_trust_dir

        tdir = Path(trust).expanduser() if trust is not None else default_trust_dir()
        store = TrustStore.load(tdir) if (tdir.exists() or not lax) else None  # as `facelink receive`
    elif trust is not None or lax or age:
        raise _invalid("trust_dir, insecure and max_age apply to verifying receivers only (verify is 0)")
    select_backend(be)  # fail here, not at the first frame, when the backend cannot run
    reference = None
    if target is not None:
        from ..face import create_models
        from ..face._reference import make_reference

        image = _image_rgb("target", target, target_width, target_height, target_stride, target_format)
        try:
            reference = make_reference(image, create_models(be))
        except NoFaceError:
            raise NoFaceError("target image: no face found; motion transfer needs a detectable (human-like) face") from None
    session = RendererSession(
        verify=check, trust=store, insecure=lax, max_age=age or None, target=reference, pose_offset=offset, backend=be
    )
    return Status.OK, _register(_Receiver(session, pf, age or None))


@_api("facelink_receiver_push", None)
def receiver_push(handle: object, packet: object) -> tuple[Status, ReceivedFrame | None]:
    """Feed one packet; returns ``(status, frame)`` with ``frame`` None for non-frame packets.

    A malformed packet is :attr:`Status.E_INVALID_PACKET`; the receiver stays usable.  The
    previous frame's pixels are released by this call.

    A verifying receiver checks every packet first (live-link policy, like ``facelink
    receive``): frames are returned as they arrive, *provisionally*, and the seal packet
    that closes their span returns the verdict: OK (verified: exactly the signer's packets,
    in order), :attr:`Status.E_VERIFICATION` (a mismatch, a bad or replayed seal: those
    frames are not authentic; the message names them) or :attr:`Status.E_INCOMPLETE`
    (packets of the span were lost; its frames cannot be verified).  The receiver stays
    usable after both.  A refused session (unsigned without ``insecure``, untrusted or
    revoked signer, ``max_age``) is :attr:`Status.E_UNTRUSTED` at its header and at every
    later push; none of its frames is rendered.
    """
    with _using(handle, _RECEIVER) as r:
        r.last = None
        pkt = bytes(_buffer("packet", packet))
        if not pkt:
            raise _invalid("packet size is 0")
        verdict: tuple[int, Status, str] | None = None
        if r.session.verifier is not None:
            verdict = _verify(r, pkt)
        out = r.session.render(pkt)
        if verdict is not None and verdict[1] is not Status.OK:
            raise _Fail(verdict[1], verdict[2])
        if out is None:
            return Status.OK, None
        if verdict is not None:
            r.unsealed.append((verdict[0], int(out.index)))
            del r.unsealed[:-_MAX_TRACKED_FRAMES]
        image = out.image
        data = _pixels_out(image, r.format)
        r.last = data
        h, w = image.shape[:2]
        return Status.OK, ReceivedFrame(
            index=int(out.index),
            time=float(out.time),
            kind=int(_KIND_BY_NAME[out.kind.value]),
            held=bool(out.held),
            width=int(w),
            height=int(h),
            stride=int(w) * _BPP[r.format],
            format=int(r.format),
            data=data,
        )


@_api("facelink_receiver_set_eye_contact")
def receiver_set_eye_contact(handle: object, on: object) -> Status:
    """(ABI 1.2) Redirect the rendered gaze at the camera (``on`` 1) or not (0), from the next
    frame: ``facelink receive --eye-contact``."""
    flag = _flag("on", on)
    with _using(handle, _RECEIVER) as r:
        r.session.set_eye_contact(flag)
        return Status.OK


@_api("facelink_receiver_verification", None)
def receiver_verification(handle: object) -> tuple[Status, str]:
    """(ABI 1.1) The verification summary so far, as JSON text: ``signed``, ``signer``,
    ``trusted``, ``seals_accepted``/``rejected``, ``spans_verified``/``incomplete``/``mismatch``,
    ``packets_pending`` (awaiting their seal), ``end_verified``, ``intact``, ``first_problem``
    and ``refused`` (the refusal message, or null).  Only for verifying receivers.
    """
    with _using(handle, _RECEIVER) as r:
        if r.session.verifier is None:
            raise _Fail(Status.E_STATE, "this receiver does not verify (created without verification); use facelink_receiver_create_ex")
        report = r.session.verifier.summary().as_dict()
        report["refused"] = r.refused
        return Status.OK, json.dumps(report, sort_keys=True)


@_api("facelink_receiver_destroy")
def receiver_destroy(handle: object) -> Status:
    """Release a receiver (and its last frame); ``None``/0 is a no-op."""
    _destroy(handle, _RECEIVER)
    return Status.OK
