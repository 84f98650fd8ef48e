"""A flat, C-friendly FaceLink API: integer handles, plain types, status codes, a per-thread last error.

This module is the Python model of the C ABI in ``native/include/facelink.h``: the shared
library ``libfacelink.so`` embeds CPython and calls these functions one for one, so C and
Python callers get the same validation, the same status codes and the same messages.

Conventions (the same as the C header's):

* Every function returns a :class:`Status` first.  Functions with outputs return a tuple
  ``(status, out1, out2, ...)``; on failure the outputs are ``None`` (or ``0``/empty, as
  documented per function).  Functions without outputs return the bare :class:`Status`.
  Nothing here raises for bad input or runtime failures; only ``KeyboardInterrupt``-like
  ``BaseException`` subclasses pass through.
* :func:`last_error` is per thread: after a call it holds ``""`` on success and a one-line
  message on failure, prefixed with the C function's name (``"facelink_sender_push: ..."``).
  Messages use C words: a ``None`` argument is reported as ``NULL``.
* Handles are plain ``int``s, never 0, never reused within a process, typed (a sender handle
  given to a receiver function is :attr:`Status.E_BAD_HANDLE`) and explicitly destroyed.
  Destroying ``None``/``0`` is a no-op that succeeds (like ``free(NULL)``).
* Images are plain buffers: ``data`` (any contiguous bytes-like object), ``width``,
  ``height``, ``stride`` (bytes between row starts, ``>= width * bytes_per_pixel``) and a
  :class:`PixelFormat`.  ``data`` must hold at least ``stride * (height - 1) + width *
  bytes_per_pixel`` bytes (``stride * height`` always suffices).  Input pixels are copied
  before the call returns; no reference to caller memory outlives a call.
* Thread safety: every function may be called from any thread.  Calls on one handle are
  serialised by that handle's lock (a second caller waits; waiting releases the GIL);
  calls on different handles run concurrently wherever the work releases the GIL (ONNX
  Runtime inference, large numpy operations, PyAV encoding and file I/O do).
"""

from __future__ import annotations

import contextlib
import enum
import functools
import json
import math
import os
import sys
import threading
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, TypeVar

import numpy as np

from ._version import __version__
from .errors import (
    BackendUnavailable,
    FaceLinkError,
    InputError,
    InvalidPacket,
    ModelFetchError,
    NoFaceError,
    VerificationError,
)

__all__ = [
    "ABI_VERSION",
    "ABI_VERSION_MAJOR",
    "ABI_VERSION_MINOR",
    "MAX_SIDE",
    "SESSION_ID_SIZE",
    "FrameKind",
    "PixelFormat",
    "ReceivedFrame",
    "SenderStats",
    "Status",
    "bytes_per_pixel",
    "decode_file",
    "encode_file",
    "features",
    "image_load",
    "keys_generate",
    "keys_trust",
    "last_error",
    "receiver_create",
    "receiver_destroy",
    "receiver_push",
    "receiver_verification",
    "sender_create",
    "sender_destroy",
    "sender_end",
    "sender_push",
    "sender_seal",
    "sender_start",
    "sender_stats",
    "status_name",
    "verify_file",
    "version",
]

#: must equal FACELINK_ABI_VERSION_MAJOR/MINOR in native/include/facelink.h; the library
#: refuses to start (FACELINK_E_PYTHON) when the majors differ or this minor is older.
#: 1.1 added signed senders, verifying receivers, E_UNTRUSTED and E_INCOMPLETE.
ABI_VERSION_MAJOR = 1
ABI_VERSION_MINOR = 2
ABI_VERSION = (ABI_VERSION_MAJOR << 16) | ABI_VERSION_MINOR

#: session ids are exactly this many bytes
SESSION_ID_SIZE = 16
#: largest image side accepted anywhere (pixels)
MAX_SIDE = 16384
_BACKENDS_DEFAULT = "auto"


class Status(enum.IntEnum):
    """Result of every call; the numbers are the C enum ``facelink_status``."""

    OK = 0
    #: NULL/None where a value is required, a value out of range, a buffer too small
    E_INVALID_ARGUMENT = 1
    #: NULL, unknown, destroyed or wrong-kind handle
    E_BAD_HANDLE = 2
    #: call out of order (push before start, anything after end, start twice)
    E_STATE = 3
    #: malformed, truncated or inconsistent packet or stream
    E_INVALID_PACKET = 4
    #: an image that must show a face (a reference, a motion-transfer target) shows none
    E_NO_FACE = 5
    #: an input file or URI cannot be used (missing, unreadable, not a video/image)
    E_INPUT = 6
    #: an operating-system error reading or writing a file
    E_IO = 7
    #: a signature, seal or watermark check failed; from a verifying receiver: a seal does not
    #: verify over the packets it covers although none was seen missing (altered, injected,
    #: reordered, spliced or forged), a replayed seal, or a foreign/altered session header
    E_VERIFICATION = 8
    #: the inference backend cannot run here
    E_BACKEND = 9
    #: models could not be fetched, verified or converted
    E_MODEL_FETCH = 10
    #: the feature is not available in this facelink build (the message says which)
    E_UNSUPPORTED = 11
    #: any other FaceLink runtime failure
    E_RUNTIME = 12
    #: out of memory (or out of handle numbers)
    E_NO_MEMORY = 13
    #: C only: the embedded Python runtime or the facelink package could not be started
    E_PYTHON = 14
    #: a bug: an unexpected exception inside FaceLink (set FACELINK_DEBUG=1 for a traceback)
    E_INTERNAL = 15
    #: (ABI 1.1) a verifying receiver refused the session: unsigned stream, signer not in the
    #: trust directory or revoked, malformed signer key, or seals older than max_age; final
    #: for that receiver (every later push returns it too)
    E_UNTRUSTED = 16
    #: (ABI 1.1) a seal closed a span from which packets were lost (or that the receiver
    #: joined mid-way): its frames cannot be verified; not evidence of tampering, the receiver
    #: stays usable
    E_INCOMPLETE = 17


class PixelFormat(enum.IntEnum):
    """Memory layout of one pixel, bytes in address order (the C enum ``facelink_pixel_format``)."""

    RGB24 = 1
    BGR24 = 2
    RGBA32 = 3
    BGRA32 = 4
    #: 8-bit luma; on output: BT.601 ``(77 R + 150 G + 29 B + 128) >> 8``; on input replicated to R=G=B
    GRAY8 = 5


class FrameKind(enum.IntEnum):
    """How a frame was coded (the C enum ``facelink_frame_kind``)."""

    KEY = 1
    PREDICTED = 2
    NO_FACE = 3
    LOST = 4


_BPP = {PixelFormat.RGB24: 3, PixelFormat.BGR24: 3, PixelFormat.RGBA32: 4, PixelFormat.BGRA32: 4, PixelFormat.GRAY8: 1}
_KIND_BY_NAME = {"key": FrameKind.KEY, "predicted": FrameKind.PREDICTED, "no_face": FrameKind.NO_FACE, "lost": FrameKind.LOST}


def bytes_per_pixel(fmt: int) -> int:
    """Bytes per pixel of ``fmt``; 0 for an unknown format."""
    try:
        return _BPP[PixelFormat(fmt)]
    except ValueError:
        return 0


def status_name(status: int) -> str:
    """``"FACELINK_OK"``, ``"FACELINK_E_BAD_HANDLE"``, ...; ``"FACELINK_E_UNKNOWN"`` for other numbers."""
    try:
        return f"FACELINK_{Status(status).name}"
    except ValueError:
        return "FACELINK_E_UNKNOWN"


def version() -> str:
    """The facelink package version."""
    return __version__


# --- errors ----------------------------------------------------------------------------

_tls = threading.local()


def last_error() -> str:
    """The message of this thread's most recent call: ``""`` if it succeeded."""
    return getattr(_tls, "error", "")


class _Fail(Exception):
    """Internal: a call fails with ``status`` and ``message``; ``outputs`` replace the failure defaults."""

    def __init__(self, status: Status, message: str, outputs: tuple[Any, ...] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.outputs = outputs


def _one_line(text: str) -> str:
    return " ".join(text.split()) or "(no message)"


def _classify(exc: Exception) -> tuple[Status, str]:
    if isinstance(exc, _Fail):
        return exc.status, exc.message
    if isinstance(exc, NoFaceError):
        return Status.E_NO_FACE, str(exc)
    if isinstance(exc, InvalidPacket):
        return Status.E_INVALID_PACKET, str(exc)
    if isinstance(exc, VerificationError):
        return Status.E_VERIFICATION, str(exc) or "verification failed"
    if isinstance(exc, BackendUnavailable):
        return Status.E_BACKEND, str(exc)
    if isinstance(exc, ModelFetchError):
        return Status.E_MODEL_FETCH, str(exc)
    if isinstance(exc, InputError):
        return Status.E_INPUT, str(exc)
    if isinstance(exc, FaceLinkError):
        return Status.E_RUNTIME, str(exc)
    if isinstance(exc, MemoryError):
        return Status.E_NO_MEMORY, "out of memory"
    if isinstance(exc, OSError):
        where = f"{exc.filename}: " if exc.filename else ""
        return Status.E_IO, f"{where}{exc.strerror or exc}"
    if isinstance(exc, (ValueError, TypeError)):
        return Status.E_INVALID_ARGUMENT, str(exc)
    if os.environ.get("FACELINK_DEBUG"):
        traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
    return Status.E_INTERNAL, f"internal error ({type(exc).__name__}: {exc}); set FACELINK_DEBUG=1 for a traceback and report it"


_F = TypeVar("_F", bound=Callable[..., Any])


def _api(cname: str, *fail_outputs: Any) -> Callable[[_F], _F]:
    """Turn a function that returns ``(Status.OK, *outputs)`` (or ``Status.OK``) and raises on
    failure into one that never raises: ``(status, *fail_outputs)`` and a per-thread message."""

    def deco(fn: _F) -> _F:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                result = fn(*args, **kwargs)
            except Exception as exc:  # noqa: BLE001 - the boundary: every failure becomes a status
                status, message = _classify(exc)
                _tls.error = f"{cname}: {_one_line(message)}"
                outputs = exc.outputs if isinstance(exc, _Fail) and exc.outputs is not None else fail_outputs
                return (status, *outputs) if fail_outputs else status
            _tls.error = ""
            return result

        return wrapper  # type: ignore[return-value]

    return deco


def _invalid(message: str) -> _Fail:
    return _Fail(Status.E_INVALID_ARGUMENT, message)


# --- argument checks -------------------------------------------------------------------


def _int(what: str, value: object, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise _invalid(f"{what} must be an integer, got {type(value).__name__}")
    v = int(value)
    if not lo <= v <= hi:
        raise _invalid(f"{what} must be in {lo}..{hi}, got {v}")
    return v


def _float(what: str, value: object, lo: float = -math.inf, hi: float = math.inf) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise _invalid(f"{what} must be a number, got {type(value).__name__}")
    v = float(value)
    if not math.isfinite(v):
        raise _invalid(f"{what} must be finite, got {v}")
    if not lo <= v <= hi:
        raise _invalid(f"{what} must be in {lo:g}..{hi:g}, got {v:g}")
    return v


def _opt_str(what: str, value: object) -> str | None:
    """A non-empty string argument (bytes are UTF-8 decoded), or None for NULL."""
    if value is None:
        return None
    return _str(what, value)


def _str(what: str, value: object) -> str:
    """A required non-empty string argument (bytes are UTF-8 decoded)."""
    if value is None:
        raise _invalid(f"{what} is NULL")
    if isinstance(value, (bytes, bytearray)):
        try:
            value = bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            raise _invalid(f"{what} is not valid UTF-8") from None
    if not isinstance(value, str):
        raise _invalid(f"{what} must be a string, got {type(value).__name__}")
    if not value:
        raise _invalid(f"{what} is empty")
    if "\x00" in value:
        raise _invalid(f"{what} contains a NUL character")
    return value


def _path(what: str, value: object) -> str:
    """A required file-system path (bytes are decoded like the OS does: ``os.fsdecode``)."""
    if isinstance(value, (bytes, bytearray)):
        if b"\x00" in value:
            raise _invalid(f"{what} contains a NUL character")
        value = os.fsdecode(bytes(value))
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    return _str(what, value)


def _opt_path(what: str, value: object) -> str | None:
    return None if value is None else _path(what, value)


def _buffer(what: str, data: object) -> memoryview:
    if data is None:
        raise _invalid(f"{what} is NULL")
    try:
        mv = memoryview(data)  # type: ignore[arg-type]
    except TypeError:
        raise _invalid(f"{what} must be a bytes-like object, got {type(data).__name__}") from None
    if not mv.c_contiguous:
        raise _invalid(f"{what} must be a contiguous buffer")
    return mv.cast("B") if mv.format != "B" or mv.ndim != 1 else mv


def _pixel_format(what: str, fmt: object) -> PixelFormat:
    if isinstance(fmt, bool) or not isinstance(fmt, (int, np.integer)):
        raise _invalid(f"{what} must be an integer pixel format, got {type(fmt).__name__}")
    try:
        return PixelFormat(int(fmt))
    except ValueError:
        raise _invalid(f"{what} {int(fmt)} is not a pixel format (1 RGB24, 2 BGR24, 3 RGBA32, 4 BGRA32, 5 GRAY8)") from None


def _image_rgb(what: str, data: object, width: object, height: object, stride: object, fmt: object) -> np.ndarray:
    """A new (height, width, 3) RGB uint8 array from a caller's image buffer (always a copy)."""
    if data is None:
        raise _invalid(f"{what} data is NULL")
    w = _int(f"{what} width", width, 1, MAX_SIDE)
    h = _int(f"{what} height", height, 1, MAX_SIDE)
    pf = _pixel_format(f"{what} format", fmt)
    bpp = _BPP[pf]
    s = _int(f"{what} stride", stride, 0, 1 << 40)
    if s < w * bpp:
        raise _invalid(f"{what} stride {s} is less than width * bytes_per_pixel = {w * bpp}")
    mv = _buffer(f"{what} data", data)
    need = s * (h - 1) + w * bpp
    if mv.nbytes < need:
        raise _invalid(f"{what} size {mv.nbytes} is less than stride * (height - 1) + width * bytes_per_pixel = {need}")
    flat = np.frombuffer(mv, dtype=np.uint8, count=need)
    view = np.ndarray((h, w, bpp), dtype=np.uint8, buffer=flat, strides=(s, bpp, 1))
    if pf is PixelFormat.RGB24:
        rgb = view
    elif pf is PixelFormat.BGR24:
        rgb = view[:, :, ::-1]
    elif pf is PixelFormat.RGBA32:
        rgb = view[:, :, :3]
    elif pf is PixelFormat.BGRA32:
        rgb = view[:, :, 2::-1]
    else:
        rgb = np.repeat(view, 3, axis=2)
    out = np.array(rgb, dtype=np.uint8, order="C", copy=True)
    del view, flat, rgb
    mv.release()
    return out


def _pixels_out(rgb: np.ndarray, fmt: PixelFormat) -> bytes:
    """Tightly packed pixels of ``fmt`` from an (H, W, 3) RGB uint8 image."""
    if fmt is PixelFormat.RGB24:
        return np.ascontiguousarray(rgb).tobytes()
    if fmt is PixelFormat.BGR24:
        return np.ascontiguousarray(rgb[:, :, ::-1]).tobytes()
    if fmt is PixelFormat.GRAY8:
        r, g, b = (rgb[:, :, i].astype(np.uint16) for i in range(3))
        return ((77 * r + 150 * g + 29 * b + 128) >> 8).astype(np.uint8).tobytes()
    out = np.empty(rgb.shape[:2] + (4,), np.uint8)
    out[:, :, :3] = rgb if fmt is PixelFormat.RGBA32 else rgb[:, :, ::-1]
    out[:, :, 3] = 255
    return out.tobytes()


def _backend(value: object) -> str:
    return _opt_str("backend", value) or _BACKENDS_DEFAULT


def _codec_params(quality: object, kbps: object, key_interval: object):
    from .codec import QUALITY_PRESETS, params_for_kbps

    q = _opt_str("quality", quality) or "medium"
    if q not in QUALITY_PRESETS:
        raise _invalid(f"quality must be one of {', '.join(QUALITY_PRESETS)}, got {q!r}")
    rate = _float("kbps", kbps, 0.0)
    params = params_for_kbps(rate) if rate > 0 else QUALITY_PRESETS[q]
    ki = _int("key_interval", key_interval, 0, 65535)
    return params.with_(key_interval=ki) if ki else params


def _pose_offset(yaw: object, pitch: object, roll: object) -> tuple[float, float, float]:
    from .receiver import POSE_LIMITS

    lim_yaw, lim_pitch, lim_roll = POSE_LIMITS
    return _float("yaw", yaw, -lim_yaw, lim_yaw), _float("pitch", pitch, -lim_pitch, lim_pitch), _float("roll", roll, -lim_roll, lim_roll)


# --- handles ---------------------------------------------------------------------------

_TAG_BITS = 4
_TAG_MASK = (1 << _TAG_BITS) - 1
_SENDER, _RECEIVER = 1, 2
_KIND_NAMES = {_SENDER: "sender", _RECEIVER: "receiver"}
#: handles stay below 2**32 so they fit a pointer on every platform the C library targets
_MAX_SERIAL = (1 << (32 - _TAG_BITS)) - 1


class _Object:
    """A live handle's state; ``lock`` serialises calls, ``closed`` is set by destroy."""

    kind = 0

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.closed = False

    def close(self) -> None:
        """Drop resources (called once, under ``lock``)."""


_registry: dict[int, _Object] = {}
_registry_lock = threading.Lock()
_next_serial = 1


def _register(obj: _Object) -> int:
    global _next_serial
    with _registry_lock:
        if _next_serial > _MAX_SERIAL:
            raise _Fail(Status.E_NO_MEMORY, "handle numbers exhausted in this process")
        handle = (_next_serial << _TAG_BITS) | obj.kind
        _next_serial += 1
        _registry[handle] = obj
    return handle


def _is_null(handle: object) -> bool:
    return handle is None or (isinstance(handle, (int, np.integer)) and not isinstance(handle, bool) and int(handle) == 0)


def _lookup(handle: object, kind: int) -> tuple[int, _Object]:
    """The handle number and its live object; E_BAD_HANDLE (NULL, unknown, wrong kind, destroyed) otherwise."""
    name = _KIND_NAMES[kind]
    if _is_null(handle):
        raise _Fail(Status.E_BAD_HANDLE, f"{name} handle is NULL")
    if isinstance(handle, bool) or not isinstance(handle, (int, np.integer)):
        raise _Fail(Status.E_BAD_HANDLE, f"{name} handle must be an integer, got {type(handle).__name__}")
    h = int(handle)
    tag, serial = h & _TAG_MASK, h >> _TAG_BITS
    with _registry_lock:
        known = h > 0 and tag in _KIND_NAMES and 0 < serial < _next_serial
        obj = _registry.get(h)
    if not known:
        raise _Fail(Status.E_BAD_HANDLE, f"{h:#x} is not a FaceLink handle")
    if tag != kind:
        raise _Fail(Status.E_BAD_HANDLE, f"{h:#x} is a {_KIND_NAMES[tag]} handle, not a {name} handle")
    if obj is None:
        raise _destroyed(kind, h)
    return h, obj


def _destroyed(kind: int, h: int) -> _Fail:
    return _Fail(Status.E_BAD_HANDLE, f"{_KIND_NAMES[kind]} handle {h:#x} was destroyed")


@contextlib.contextmanager
def _using(handle: object, kind: int) -> Iterator[Any]:
    """The handle's object, with its lock held for the duration of the call."""
    h, obj = _lookup(handle, kind)
    with obj.lock:
        if obj.closed:  # destroyed while this call waited for the lock
            raise _destroyed(kind, h)
        yield obj


def _destroy(handle: object, kind: int) -> None:
    if _is_null(handle):
        return
    h, obj = _lookup(handle, kind)
    with _registry_lock:
        if _registry.pop(h, None) is None:  # another thread destroyed it meanwhile
            raise _destroyed(kind, h)
    with obj.lock:  # waits for a call in flight on another thread
        obj.closed = True
        obj.close()


def _live_handles() -> int:
    """Number of live handles (for tests and leak checks)."""
    with _registry_lock:
        return len(_registry)


# --- sender ----------------------------------------------------------------------------


@dataclass(frozen=True)
class SenderStats:
    """Counts since the sender was created (packets bytes exclude the one-time reference chunks)."""

    frames: int
    face_frames: int
    key_frames: int
    bytes: int
    reference_bytes: int


class _Sealer:
    """:func:`facelink.security.seal_packets`, one call at a time: the same packets, byte for byte.

    The header and ``End`` get spans of their own, the reference chunks one span (sealed
    at start), and frames are sealed every ``floor(interval * fps)`` frames; seal times are
    stream times (a frame's nominal time plus its ``pts_offset``), counted from the header.
    """

    def __init__(self, identity: Any, header: bytes, interval: float) -> None:
        from .bitstream import SessionHeader
        from .security import SealWriter

        hdr = SessionHeader.parse(header)
        self.writer = SealWriter(identity, header, interval=interval, start=0.0)
        self.period = Fraction(hdr.fps_den, hdr.fps_num)
        self.t = 0.0
        self.n = -1
        self.last_seq: int | None = None

    def start(self, packets: list[bytes]) -> list[bytes]:
        header, *chunks = packets
        w = self.writer
        out = w.push_isolated([header], 0.0)
        for chunk in chunks:
            out += w.push(chunk, self.t)
        if w.pending:
            out.append(w.seal(self.t))
        return out

    def frame(self, packet: bytes) -> list[bytes]:
        from .bitstream import parse_packet

        pkt = parse_packet(packet)
        seq = pkt.seq  # type: ignore[union-attr]
        self.n = 0 if self.last_seq is None else self.n + ((seq - self.last_seq) & 0xFFFF)
        self.last_seq = seq
        self.t = max(self.t, float(self.n * self.period) + pkt.pts_offset / 90000)  # type: ignore[union-attr]
        return self.writer.push(packet, self.t)

    def end(self, packet: bytes) -> list[bytes]:
        out = self.writer.push_isolated([packet], self.t)
        if self.writer.pending:
            out.append(self.writer.seal(self.t))
        return out

    def seal(self) -> list[bytes]:
        return [self.writer.seal()] if self.writer.pending else []


class _Sender(_Object):
    kind = _SENDER

    def __init__(self, encoder: Any, width: int, height: int, identity: Any = None, seal_interval: float = 0.5) -> None:
        super().__init__()
        self.encoder = encoder
        self.width = width
        self.height = height
        self.started = False
        self.ended = False
        self.last_index = -1
        self.identity = identity
        self.seal_interval = seal_interval
        self.sealer: _Sealer | None = None

    def close(self) -> None:
        self.encoder = None
        self.sealer = None
        self.identity = None


def _load_identity(key: object) -> Any:
    """The identity named by ``key`` (a ``.key`` path, or a name in the default key directory)."""
    spec = _path("key", key)
    sec = _security_module()
    if sec is None:
        raise _Fail(Status.E_UNSUPPORTED, "signing is not available in this facelink build (no facelink.security); update the facelink package")
    return sec.load_identity(sec.resolve_key_path(spec))


def _seal_interval(value: object) -> float:
    from .security import DEFAULT_SEAL_INTERVAL

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
    from .face import create_models, create_tracker
    from .sender import FrameEncoder, make_reference

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
    extensions: tuple[tuple[int, bytes], ...] = ()
    if identity is not None:
        from .security import signer_extension

        extensions = (signer_extension(identity),)
    reference_obj = make_reference(ref, create_models(be))
    encoder = FrameEncoder(
        reference_obj, params, width=w, height=h, fps=fps, tracker=create_tracker(be), session_id=sid,
        created_us=created if created >= 0 else None, extensions=extensions,
    )  # fmt: skip
    return Status.OK, _register(_Sender(encoder, w, h, identity, interval))


@_api("facelink_sender_start", None)
def sender_start(handle: object) -> tuple[Status, list[bytes]]:
    """The session header and the reference chunks, in sending order (once, before any push)."""
    with _using(handle, _SENDER) as s:
        if s.started:
            raise _Fail(Status.E_STATE, "the session was already started")
        packets = [bytes(p) for p in s.encoder.start()]
        if s.identity is not None:
            s.sealer = _Sealer(s.identity, packets[0], s.seal_interval)
            packets = s.sealer.start(packets)
        s.started = True
        return Status.OK, packets


@_api("facelink_sender_push", None, 0)
def sender_push(
    handle: object, data: object, width: object, height: object, stride: object, fmt: object, index: object, time: object
) -> tuple[Status, list[bytes], int]:
    """Track and code one frame; returns ``(status, packets, kind)`` with ``kind`` a :class:`FrameKind`.

    ``index`` must increase from call to call; ``time`` is the capture time in seconds.
    """
    from .io import Frame

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
        packet, kf = s.encoder.push(Frame(image, t, i))
        s.last_index = i
        packets = s.sealer.frame(bytes(packet)) if s.sealer is not None else [bytes(packet)]
        return Status.OK, packets, int(_KIND_BY_NAME[kf.kind.value])


@_api("facelink_sender_end", None)
def sender_end(handle: object) -> tuple[Status, list[bytes]]:
    """The end-of-stream packet(s); the sender accepts no frames afterwards."""
    with _using(handle, _SENDER) as s:
        if not s.started:
            raise _Fail(Status.E_STATE, "the session was never started")
        if s.ended:
            raise _Fail(Status.E_STATE, "the session has already ended")
        packet = bytes(s.encoder.end())
        s.ended = True
        return Status.OK, s.sealer.end(packet) if s.sealer is not None else [packet]


@_api("facelink_sender_seal", None)
def sender_seal(handle: object) -> tuple[Status, list[bytes]]:
    """(ABI 1.1) Close the current span now: ``[seal]``, or ``[]`` if no packet awaits a seal.

    For a source that stalls or runs below its nominal frame rate: seals otherwise come
    every ``floor(seal_interval * fps)`` frames.  Only for signed senders.
    """
    with _using(handle, _SENDER) as s:
        if s.identity is None:
            raise _Fail(Status.E_STATE, "this sender does not sign (created without a key): it sends no seals")
        if not s.started:
            raise _Fail(Status.E_STATE, "call facelink_sender_start first and send its packets")
        if s.ended:
            raise _Fail(Status.E_STATE, "the session has ended (its last seal was sent)")
        return Status.OK, s.sealer.seal()  # type: ignore[union-attr]


@_api("facelink_sender_stats_get", None)
def sender_stats(handle: object) -> tuple[Status, SenderStats]:
    with _using(handle, _SENDER) as s:
        st = s.encoder.stats
        return Status.OK, SenderStats(st.frames, st.face_frames, st.key_frames, st.bytes, st.reference_bytes)


@_api("facelink_sender_destroy")
def sender_destroy(handle: object) -> Status:
    """Release a sender; ``None``/0 is a no-op.  Waits for a call in flight on the handle."""
    _destroy(handle, _SENDER)
    return Status.OK


# --- receiver --------------------------------------------------------------------------


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

    def __init__(self, renderer: Any, fmt: PixelFormat, verifier: Any = None, max_age: float | None = None) -> None:
        super().__init__()
        self.renderer = renderer
        self.format = fmt
        #: the last frame's pixels: kept alive until the next push or destroy (the C ABI lends them)
        self.last: bytes | None = None
        #: a StreamVerifier (ABI 1.1 verifying receivers), else None: seals are passed over
        self.verifier = verifier
        self.max_age = max_age
        #: (arrival index, frame index) of the frames returned whose span is not closed yet
        self.unsealed: list[tuple[int, int]] = []
        #: why the session was refused (then every push fails with E_UNTRUSTED)
        self.refused: str | None = None

    def close(self) -> None:
        self.renderer = None
        self.last = None
        self.verifier = None
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

    from .security import SealStatus, SpanStatus

    v = r.verifier
    try:
        verdict = v.feed(packet, now=_time.time() if r.max_age is not None else None)
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
        from .bitstream import parse_packet

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
    from .backend import select_backend
    from .receiver import FrameRenderer

    pf = _pixel_format("format", fmt)
    offset = _pose_offset(yaw, pitch, roll)
    be = _backend(backend)
    check = _flag("verify", verify)
    trust = _opt_path("trust_dir", trust_dir)
    lax = _flag("insecure", insecure)
    age = _float("max_age", max_age, 0.0)
    verifier = None
    if check:
        from pathlib import Path

        from .security import StreamVerifier, TrustStore, default_trust_dir

        tdir = Path(trust).expanduser() if trust is not None else default_trust_dir()
        store = TrustStore.load(tdir) if (tdir.exists() or not lax) else None  # as `facelink receive`
        verifier = StreamVerifier(store, insecure=lax, max_age=age or None)
    elif trust is not None or lax or age:
        raise _invalid("trust_dir, insecure and max_age apply to verifying receivers only (verify is 0)")
    select_backend(be)  # fail here, not at the first frame, when the backend cannot run
    reference = None
    if target is not None:
        from .face import create_models
        from .sender import make_reference

        image = _image_rgb("target", target, target_width, target_height, target_stride, target_format)
        try:
            reference = make_reference(image, create_models(be))
        except NoFaceError:
            raise NoFaceError("target image: no face found; motion transfer needs a detectable (human-like) face") from None
    renderer = FrameRenderer(target=reference, pose_offset=offset, backend=be)
    return Status.OK, _register(_Receiver(renderer, pf, verifier, age or None))


def _flag(what: str, value: object) -> bool:
    if isinstance(value, (bool, int, np.integer)) and int(value) in (0, 1):
        return bool(value)
    raise _invalid(f"{what} must be 0 or 1, got {value!r}")


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
        if r.verifier is not None:
            verdict = _verify(r, pkt)
        out = r.renderer.push(pkt)
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
        r.renderer.session.set_eye_contact(flag)
        return Status.OK


@_api("facelink_receiver_verification", None)
def receiver_verification(handle: object) -> tuple[Status, str]:
    """(ABI 1.1) The verification summary so far, as JSON text: ``signed``, ``signer``,
    ``trusted``, ``seals_accepted``/``rejected``, ``spans_verified``/``incomplete``/``mismatch``,
    ``packets_pending`` (awaiting their seal), ``end_verified``, ``intact``, ``first_problem``
    and ``refused`` (the refusal message, or null).  Only for verifying receivers.
    """
    with _using(handle, _RECEIVER) as r:
        if r.verifier is None:
            raise _Fail(Status.E_STATE, "this receiver does not verify (created without verification); use facelink_receiver_create_ex")
        report = r.verifier.summary().as_dict()
        report["refused"] = r.refused
        return Status.OK, json.dumps(report, sort_keys=True)


@_api("facelink_receiver_destroy")
def receiver_destroy(handle: object) -> Status:
    """Release a receiver (and its last frame); ``None``/0 is a no-op."""
    _destroy(handle, _RECEIVER)
    return Status.OK


# --- files -----------------------------------------------------------------------------


@contextlib.contextmanager
def _atomic_output(path: str) -> Iterator[str]:
    """A temporary path beside ``path``, renamed into place only on success."""
    import tempfile

    if os.path.isdir(path):
        raise InputError(f"{path}: is a directory")
    parent = os.path.dirname(path) or "."
    if not os.path.isdir(parent):
        raise InputError(f"{parent}: output directory does not exist")
    name = os.path.basename(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=os.path.splitext(name)[1], dir=parent)
    os.close(fd)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


@_api("facelink_encode_file", None)
def encode_file(
    input: object,
    output: object,
    *,
    quality: object = None,
    kbps: object = 0.0,
    key_interval: object = 0,
    reference_path: object = None,
    backend: object = None,
) -> tuple[Status, str]:
    """``facelink encode INPUT -o OUTPUT``: returns ``(status, report)``, the CLI's ``--json`` object as text."""
    from .bitstream import FlkWriter
    from .sender import encode_file as _encode

    src = _path("input", input)
    dst = _path("output", output)
    ref = _opt_path("reference_path", reference_path)
    params = _codec_params(quality, kbps, key_interval)
    be = _backend(backend)
    with _atomic_output(dst) as tmp, FlkWriter(tmp) as w:

        def sink(packet: bytes) -> None:
            w.write(packet)

        stats = _encode(src, sink, params=params, reference_image=ref, backend=be)
    report = stats.as_dict()
    report.update(output=dst, k=params.k, key_interval=params.key_interval)
    return Status.OK, json.dumps(report, sort_keys=True)


@_api("facelink_decode_file", None)
def decode_file(
    input: object,
    output: object,
    *,
    reference_path: object = None,
    yaw: object = 0.0,
    pitch: object = 0.0,
    roll: object = 0.0,
    backend: object = None,
    trust_dir: object = None,
    insecure: object = False,
) -> tuple[Status, str]:
    """``facelink decode INPUT -o OUTPUT [--trust DIR] [--insecure]``: returns ``(status, report)``.

    Streams are verified against their seals first where the installed package does that
    (``trust_dir`` None = its default trust directory; ``insecure`` accepts unsigned streams
    and untrusted signers, whose seals must still verify): an integrity failure is
    :attr:`Status.E_VERIFICATION`.  Damaged packets are skipped (the video is still
    written); the status is then :attr:`Status.E_INVALID_PACKET` and the report is still
    returned, like the CLI's exit 3.
    """
    import inspect

    from .rendering import decode_file as _decode

    src = _path("input", input)
    dst = _path("output", output)
    ref = _opt_path("reference_path", reference_path)
    offset = _pose_offset(yaw, pitch, roll)
    be = _backend(backend)
    trust = _opt_path("trust_dir", trust_dir)
    if not isinstance(insecure, (bool, int, np.integer)) or int(insecure) not in (0, 1):
        raise _invalid(f"insecure must be 0 or 1, got {insecure!r}")
    extra: dict[str, Any] = {}
    if "trust_dir" in inspect.signature(_decode).parameters:
        extra = {"trust_dir": trust, "insecure": bool(insecure)}
    elif trust is not None:
        raise _Fail(Status.E_UNSUPPORTED, "this facelink build does not verify stream seals (no trust directory)")
    with _atomic_output(dst) as tmp:
        result = _decode(src, tmp, target_image=ref, pose_offset=offset, backend=be, **extra)
    report = result.as_dict()
    report["output"] = dst
    text = json.dumps(report, sort_keys=True)
    if result.invalid_packets:
        raise _Fail(
            Status.E_INVALID_PACKET,
            f"{src}: {result.invalid_packets} damaged packet(s) skipped ({result.first_error})",
            outputs=(text,),
        )
    return Status.OK, text


@_api("facelink_image_load", None, 0, 0, 0)
def image_load(path: object, fmt: object = PixelFormat.RGB24) -> tuple[Status, bytes, int, int, int]:
    """Load a still image as ``(status, pixels, width, height, stride)`` in ``fmt`` (tightly packed).

    Like every FaceLink reference, images whose long side exceeds 2048 are downscaled.
    """
    from .io import load_image

    p = _path("path", path)
    pf = _pixel_format("format", fmt)
    rgb = load_image(p)
    h, w = rgb.shape[:2]
    return Status.OK, _pixels_out(rgb, pf), int(w), int(h), int(w) * _BPP[pf]


# --- keys and verification (feature-detected) -------------------------------------------

_KEY_FUNCS = ("generate_identity", "write_identity", "default_key_dir")


def _security_module() -> Any:
    """``facelink.security`` if it provides key generation, else ``None``."""
    try:
        import facelink.security as sec
    except ImportError:
        return None
    return sec if all(callable(getattr(sec, n, None)) for n in _KEY_FUNCS) else None


_DETECTOR_NAMES = ("MAX_FRAMES", "PUBLIC_MARK_KEY", "WatermarkDetector")


def _verify_function() -> Callable[..., Any] | None:
    """A whole-file verifier: ``facelink.watermark.verify_file`` if the package has one, else
    one built on its public :class:`WatermarkDetector` (as ``facelink verify`` is), else None."""
    try:
        import facelink.watermark as wm
    except ImportError:
        return None
    fn = getattr(wm, "verify_file", None)
    if callable(fn):
        return fn
    return _verify_with_detector if all(hasattr(wm, n) for n in _DETECTOR_NAMES) else None


def _verify_with_detector(path: str, trust: str | None = None) -> dict[str, Any]:
    """``facelink verify VIDEO --json`` with the public mark key, as a dict.

    Signed manifests are not checked yet (``sender`` and ``signature_valid`` are null, as in
    the CLI); ``trust`` must name a directory when given.
    """
    from .io import open_video
    from .watermark import MAX_FRAMES, PUBLIC_MARK_KEY, WatermarkDetector

    if trust is not None and not os.path.isdir(trust):
        raise InputError(f"{trust}: trust directory does not exist")
    det = WatermarkDetector(PUBLIC_MARK_KEY, max_frames=MAX_FRAMES)
    with open_video(path) as reader:
        for frame in reader:
            det.add(frame.image)
            if det.full:
                break
    out = det.result().as_dict()
    out.update(video=path, mark_key="public", sender=None, signature_valid=None)
    return out


def features() -> dict[str, bool]:
    """Which optional entry points this build wires: ``{"keys": ..., "verify": ...}``."""
    return {"keys": _security_module() is not None, "verify": _verify_function() is not None}


@_api("facelink_keys_trust", None, None)
def keys_trust(pub: object, directory: object = None) -> tuple[Status, str, str]:
    """(ABI 1.1) ``facelink keys trust PUB [--dir DIR]``: copy a sender's ``.pub`` (or the public
    half of a ``.key``) into a trust directory (created 0700 if missing; None = the default).

    Returns ``(status, fingerprint, report)``; ``report`` is JSON with ``fingerprint``,
    ``name``, ``path`` and ``added`` (false if the key was already trusted).  A revoked key
    is refused (:attr:`Status.E_INPUT`).
    """
    p = _path("pub", pub)
    d = _opt_path("directory", directory)
    sec = _security_module()
    if sec is None:
        raise _Fail(Status.E_UNSUPPORTED, "key management is not available in this facelink build; update the facelink package")
    identity = sec.load_public(p)
    path, added = sec.trust_key(d if d is not None else sec.default_trust_dir(), identity)
    fp = str(identity.fingerprint)
    report = {"fingerprint": fp, "name": identity.name, "path": os.fspath(path), "added": bool(added)}
    return Status.OK, fp, json.dumps(report, sort_keys=True)


@_api("facelink_keys_generate", None, None)
def keys_generate(name: object, directory: object = None) -> tuple[Status, str, str]:
    """``facelink keys generate NAME``: write ``DIR/NAME.key`` (0600) and ``DIR/NAME.pub``.

    Returns ``(status, fingerprint, report)``; ``report`` is JSON text with ``name``,
    ``fingerprint``, ``key`` and ``pub`` (paths).  ``directory`` None = the default key dir.
    """
    n = _str("name", name)
    d = _opt_path("directory", directory)
    sec = _security_module()
    if sec is None:
        raise _Fail(
            Status.E_UNSUPPORTED,
            "key management is not available in this facelink build (facelink.security lacks "
            + "/".join(_KEY_FUNCS)
            + "); update the facelink package",
        )
    identity = sec.generate_identity(n)
    key_path, pub_path = sec.write_identity(identity, d if d is not None else sec.default_key_dir())
    fp = str(identity.fingerprint)
    report = {"name": n, "fingerprint": fp, "key": os.fspath(key_path), "pub": os.fspath(pub_path)}
    return Status.OK, fp, json.dumps(report, sort_keys=True)


def _report_dict(result: Any) -> dict[str, Any]:
    if isinstance(result, dict):
        return result
    as_dict = getattr(result, "as_dict", None)
    if callable(as_dict):
        return dict(as_dict())
    raise TypeError(f"verifier returned {type(result).__name__}, expected a dict or an object with as_dict()")


@_api("facelink_verify_file", None)
def verify_file(path: object, trust_dir: object = None) -> tuple[Status, str]:
    """``facelink verify VIDEO [--trust DIR]``: returns ``(status, report)``, the CLI's JSON object.

    The status is OK whenever the analysis ran, whatever it found (read ``synthetic`` and
    ``signature_valid`` in the report), like the CLI's exit code 0.
    """
    p = _path("path", path)
    t = _opt_path("trust_dir", trust_dir)
    fn = _verify_function()
    if fn is None:
        raise _Fail(
            Status.E_UNSUPPORTED,
            "watermark verification is not available in this facelink build "
            "(facelink.watermark lacks WatermarkDetector); update the facelink package",
        )
    result = fn(p, trust=t) if t is not None else fn(p)
    return Status.OK, json.dumps(_report_dict(result), sort_keys=True, default=str)
