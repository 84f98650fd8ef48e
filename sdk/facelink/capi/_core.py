"""The C API's core: status codes, per-thread errors, argument checks, typed handles.

Every ``facelink_*`` entry point in the sibling modules is wrapped by :func:`_api`, which
turns exceptions into a :class:`Status` and a one-line, per-thread message.
"""

from __future__ import annotations

import contextlib
import enum
import functools
import math
import os
import sys
import threading
import traceback
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import numpy as np

from .._version import __version__
from .. import errors

#: must equal FACELINK_ABI_VERSION_MAJOR/MINOR in native/include/facelink.h; the library
#: refuses to start (FACELINK_E_PYTHON) when the majors differ or this minor is older.
#: 1.1 added signed senders, verifying receivers, E_UNTRUSTED and E_INCOMPLETE; 1.2 eye contact;
#: 1.3 facelink_encode_file_ex (signing key, fixed session) and signed encode_file streams.
ABI_VERSION_MAJOR = 1
ABI_VERSION_MINOR = 3
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


#: the project's errors and their status, most specific first (FaceLinkError last)
_STATUS_OF_ERROR = (
    (errors.NoFaceError, Status.E_NO_FACE),
    (errors.InvalidPacket, Status.E_INVALID_PACKET),
    (errors.VerificationError, Status.E_VERIFICATION),
    (errors.BackendUnavailable, Status.E_BACKEND),
    (errors.ModelFetchError, Status.E_MODEL_FETCH),
    (errors.InputError, Status.E_INPUT),
    (errors.FaceLinkError, Status.E_RUNTIME),
)


def _classify(exc: Exception) -> tuple[Status, str]:
    if isinstance(exc, _Fail):
        return exc.status, exc.message
    for cls, status in _STATUS_OF_ERROR:
        if isinstance(exc, cls):
            return status, str(exc) or ("verification failed" if status is Status.E_VERIFICATION else "")
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
    from ..codec import QUALITY_PRESETS, params_for_kbps

    q = _opt_str("quality", quality) or "medium"
    if q not in QUALITY_PRESETS:
        raise _invalid(f"quality must be one of {', '.join(QUALITY_PRESETS)}, got {q!r}")
    rate = _float("kbps", kbps, 0.0)
    params = params_for_kbps(rate) if rate > 0 else QUALITY_PRESETS[q]
    ki = _int("key_interval", key_interval, 0, 65535)
    return params.with_(key_interval=ki) if ki else params


def _flag(what: str, value: object) -> bool:
    if isinstance(value, (bool, int, np.integer)) and int(value) in (0, 1):
        return bool(value)
    raise _invalid(f"{what} must be 0 or 1, got {value!r}")


def _pose_offset(yaw: object, pitch: object, roll: object) -> tuple[float, float, float]:
    from ..receiver import POSE_LIMITS

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
