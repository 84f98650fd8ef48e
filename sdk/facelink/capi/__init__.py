"""A flat, C-friendly FaceLink API: integer handles, plain types, status codes, a per-thread last error.

Split by concern: :mod:`._core` (status codes, errors, argument checks, handles),
:mod:`._sender` and :mod:`._receiver` (live sessions over :class:`facelink.pipeline.EncoderSession`
and :class:`~facelink.pipeline.RendererSession`), :mod:`._files` (encode, decode, image load)
and :mod:`._keys` (keys, verify).  Every operation is :mod:`facelink.pipeline`'s; this layer only
translates C arguments, so the C API and the CLI agree on streams, manifests and reports.

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

from ._core import (
    _BPP,
    ABI_VERSION,
    ABI_VERSION_MAJOR,
    ABI_VERSION_MINOR,
    MAX_SIDE,
    SESSION_ID_SIZE,
    FrameKind,
    PixelFormat,
    Status,
    _image_rgb,
    _live_handles,
    _pixels_out,
    _registry,
    bytes_per_pixel,
    last_error,
    status_name,
    version,
)
from ._files import decode_file, encode_file, image_load
from ._keys import features, keys_generate, keys_trust, verify_file
from ._receiver import (
    ReceivedFrame,
    receiver_create,
    receiver_destroy,
    receiver_push,
    receiver_set_eye_contact,
    receiver_verification,
)
from ._sender import (
    SenderStats,
    sender_create,
    sender_destroy,
    sender_end,
    sender_push,
    sender_seal,
    sender_start,
    sender_stats,
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
    "receiver_set_eye_contact",
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
