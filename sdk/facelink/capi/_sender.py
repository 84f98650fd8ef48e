"""The C API's live senders: ``facelink_sender_*`` over :class:`facelink.pipeline.EncoderSession`."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from ._core import (
    _KIND_BY_NAME,
    _SENDER,
    SESSION_ID_SIZE,
    Status,
    _api,
    _backend,
    _buffer,
    _codec_params,
    _destroy,
    _Fail,
    _float,
    _image_rgb,
    _int,
    _invalid,
    _Object,
    _path,
    _register,
    _using,
)

@dataclass(frozen=True)
class SenderStats:
    """Counts since the sender was created (packets bytes exclude the one-time reference chunks)."""

    frames: int
    face_frames: int
    key_frames: int
    bytes: int
    reference_bytes: int


class _Sender(_Object):
    kind = _SENDER

    def __init__(self, session: Any, width: int, height: int) -> None:
        super().__init__()
        #: a facelink.pipeline.EncoderSession
        self.session = session
        self.width = width
        self.height = height
        self.started = False
        self.ended = False
        self.last_index = -1

    def close(self) -> None:
        self.session = None


def _load_identity(key: object) -> Any:
    """The identity named by ``key`` (a ``.key`` path, or a name in the default key directory)."""
    from ..security import load_identity, resolve_key_path

    return load_identity(resolve_key_path(_path("key", key)))


def _seal_interval(value: object) -> float:
    from ..security import DEFAULT_SEAL_INTERVAL

    v = _float("seal_interval", value)
    if v == 0:
        return DEFAULT_SEAL_INTERVAL
    if not 0 < v <= 60:
        raise _invalid(f"seal_interval must be in (0, 60] seconds (0 = {DEFAULT_SEAL_INTERVAL:g}), got {v:g}")
    return v


@_api("facelink_sender_create", 0)
def sender_create(
    reference: object,
    reference_width: object,
    reference_height: object,
    reference_stride: object,
    reference_format: object,
    *,
    width: object,
    height: object,
    fps_num: object = 30,
    fps_den: object = 1,
    quality: object = None,
    kbps: object = 0.0,
    key_interval: object = 0,
    backend: object = None,
    session_id: object = None,
    created_us: object = -1,
    key: object = None,
    seal_interval: object = 0.0,
) -> tuple[Status, int]:
    """A sender for frames of ``width`` x ``height``; returns ``(status, handle)`` (handle 0 on failure).

    ``reference`` is an image of the face (a frame of the same camera: the receiver shows
    the face as it looks there).  ``quality`` "low"|"medium"|"high" (None = "medium");
    ``kbps`` > 0 picks the finest operating point that fits instead; ``key_interval`` 0 =
    the preset's.  ``session_id`` (16 bytes) and ``created_us`` (>= 0) fix the session
    header for reproducible streams; None / -1 = random / now.

    ``key`` (ABI 1.1) signs the stream: a ``.key`` file of ``facelink keys generate`` (or a
    key name in the default key directory).  The header then names the signer (extension
    tag 2) and seal packets follow every ``seal_interval`` seconds of stream (0 = 0.5 s),
    and the header, the reference and ``End`` each get a span of their own: exactly the
    packets :func:`facelink.security.seal_packets` makes of the unsigned stream.  Without a
    key the stream is unsigned (as in ABI 1.0); verifying receivers refuse it unless insecure.
    """
    from ..face import create_models, create_tracker
    from ..face._reference import make_reference
    from ..pipeline import EncoderSession

    ref = _image_rgb("reference", reference, reference_width, reference_height, reference_stride, reference_format)
    w = _int("width", width, 1, 65535)
    h = _int("height", height, 1, 65535)
    num = _int("fps_num", fps_num, 1, 1 << 31)
    den = _int("fps_den", fps_den, 1, 1 << 31)
    fps = Fraction(num, den)
    if not Fraction(1, 1000) <= fps <= 1000:
        raise _invalid(f"frame rate {num}/{den} must be within 1/1000..1000 fps")
    params = _codec_params(quality, kbps, key_interval)
    be = _backend(backend)
    sid: bytes | None = None
    if session_id is not None:
        sid = bytes(_buffer("session_id", session_id))
        if len(sid) != SESSION_ID_SIZE:
            raise _invalid(f"session_id must be {SESSION_ID_SIZE} bytes, got {len(sid)}")
    created = _int("created_us", created_us, -1, (1 << 63) - 1)
    interval = _seal_interval(seal_interval)
    if key is None and _float("seal_interval", seal_interval) != 0:
        raise _invalid("seal_interval is set but key is NULL: an unsigned stream has no seals; give a key")
    identity = _load_identity(key) if key is not None else None  # before the models: fail fast
    reference_obj = make_reference(ref, create_models(be))
    session = EncoderSession(
        reference_obj, params, width=w, height=h, fps=fps, identity=identity, seal_interval=interval,
        tracker=create_tracker(be), session_id=sid, created_us=created if created >= 0 else None,
    )  # fmt: skip
    return Status.OK, _register(_Sender(session, w, h))


@_api("facelink_sender_start", None)
def sender_start(handle: object) -> tuple[Status, list[bytes]]:
    """The session header and the reference chunks, in sending order (once, before any push)."""
    with _using(handle, _SENDER) as s:
        if s.started:
            raise _Fail(Status.E_STATE, "the session was already started")
        packets = s.session.start()
        s.started = True
        return Status.OK, packets


@_api("facelink_sender_push", None, 0)
def sender_push(
    handle: object, data: object, width: object, height: object, stride: object, fmt: object, index: object, time: object
) -> tuple[Status, list[bytes], int]:
    """Track and code one frame; returns ``(status, packets, kind)`` with ``kind`` a :class:`FrameKind`.

    ``index`` must increase from call to call; ``time`` is the capture time in seconds.
    """
    from ..io import Frame

    with _using(handle, _SENDER) as s:
        if not s.started:
            raise _Fail(Status.E_STATE, "call facelink_sender_start first and send its packets")
        if s.ended:
            raise _Fail(Status.E_STATE, "the session has ended")
        image = _image_rgb("frame", data, width, height, stride, fmt)
        if image.shape[:2] != (s.height, s.width):
            raise _invalid(f"frame is {image.shape[1]}x{image.shape[0]}, the sender was created for {s.width}x{s.height}")
        i = _int("index", index, 0, (1 << 63) - 1)
        if i <= s.last_index:
            raise _invalid(f"index {i} must be greater than the previous frame's {s.last_index}")
        t = _float("time", time)
        packets, kf = s.session.push(Frame(image, t, i))
        s.last_index = i
        return Status.OK, packets, int(_KIND_BY_NAME[kf.kind.value])


@_api("facelink_sender_end", None)
def sender_end(handle: object) -> tuple[Status, list[bytes]]:
    """The end-of-stream packet(s); the sender accepts no frames afterwards."""
    with _using(handle, _SENDER) as s:
        if not s.started:
            raise _Fail(Status.E_STATE, "the session was never started")
        if s.ended:
            raise _Fail(Status.E_STATE, "the session has already ended")
        packets = s.session.end()
        s.ended = True
        return Status.OK, packets


@_api("facelink_sender_seal", None)
def sender_seal(handle: object) -> tuple[Status, list[bytes]]:
    """(ABI 1.1) Close the current span now: ``[seal]``, or ``[]`` if no packet awaits a seal.

    For a source that stalls or runs below its nominal frame rate: seals otherwise come
    every ``floor(seal_interval * fps)`` frames.  Only for signed senders.
    """
    with _using(handle, _SENDER) as s:
        if not s.session.signed:
            raise _Fail(Status.E_STATE, "this sender does not sign (created without a key): it sends no seals")
        if not s.started:
            raise _Fail(Status.E_STATE, "call facelink_sender_start first and send its packets")
        if s.ended:
            raise _Fail(Status.E_STATE, "the session has ended (its last seal was sent)")
        return Status.OK, s.session.seal()


@_api("facelink_sender_stats_get", None)
def sender_stats(handle: object) -> tuple[Status, SenderStats]:
    with _using(handle, _SENDER) as s:
        st = s.session.stats
        return Status.OK, SenderStats(st.frames, st.face_frames, st.key_frames, st.bytes, st.reference_bytes)


@_api("facelink_sender_destroy")
def sender_destroy(handle: object) -> Status:
    """Release a sender; ``None``/0 is a no-op.  Waits for a call in flight on the handle."""
    _destroy(handle, _SENDER)
    return Status.OK
