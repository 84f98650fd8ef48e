"""The C API's whole-file operations: ``facelink_encode_file[_ex]``, ``facelink_decode_file``,
``facelink_image_load``, each :mod:`facelink.pipeline`'s operation with C arguments."""

from __future__ import annotations

import json

from ._core import (
    _BPP,
    SESSION_ID_SIZE,
    PixelFormat,
    Status,
    _api,
    _backend,
    _buffer,
    _codec_params,
    _Fail,
    _flag,
    _int,
    _invalid,
    _opt_path,
    _path,
    _pixel_format,
    _pixels_out,
    _pose_offset,
)


def _session_id(value: object) -> bytes | None:
    if value is None:
        return None
    sid = bytes(_buffer("session_id", value))
    if len(sid) != SESSION_ID_SIZE:
        raise _invalid(f"session_id must be {SESSION_ID_SIZE} bytes, got {len(sid)}")
    return sid


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
    key: object = None,
    session_id: object = None,
    created_us: object = -1,
) -> tuple[Status, str]:
    """``facelink encode INPUT -o OUTPUT [--key KEY] [--session-id HEX --created-us US]``:
    returns ``(status, report)``, the CLI's ``--json`` object as text.

    The stream is signed (sealed) like the CLI's: by ``key`` (ABI 1.3; a ``.key`` path or a
    key name in the default key directory), else by this machine's local key.  ``session_id``
    (16 bytes) and ``created_us`` (>= 0) fix the session header (reproducible streams); None /
    -1 = random / now.  With the same input, key, session id and time the stream is byte for
    byte the CLI's.
    """
    from ..pipeline import encode_file as _encode
    from ..security import load_identity, resolve_key_path

    src = _path("input", input)
    dst = _path("output", output)
    ref = _opt_path("reference_path", reference_path)
    params = _codec_params(quality, kbps, key_interval)
    be = _backend(backend)
    sid = _session_id(session_id)
    created = _int("created_us", created_us, -1, (1 << 63) - 1)
    spec = _opt_path("key", key)
    identity = load_identity(resolve_key_path(spec)) if spec is not None else None
    res = _encode(
        src, dst, identity, params=params, reference_image=ref, backend=be, session_id=sid,
        created_us=created if created >= 0 else None,
    )  # fmt: skip
    return Status.OK, json.dumps(res.as_dict(), sort_keys=True)


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
    """``facelink decode INPUT -o OUTPUT [--trust DIR] [--insecure]``: returns ``(status, report)``,
    the CLI's ``--json`` object as text.

    The stream's seals are verified first (``trust_dir`` None = the default trust directory;
    ``insecure`` accepts unsigned streams and untrusted signers, whose seals must still
    verify): an integrity failure is :attr:`Status.E_VERIFICATION`.  The signed provenance
    manifest is written beside OUTPUT (``OUTPUT.facelink.json``).  Where the CLI exits 3
    with a written video, the report is still returned: damaged packets skipped is
    :attr:`Status.E_INVALID_PACKET`, a stream that stops before a verified End
    :attr:`Status.E_INCOMPLETE`.
    """
    from ..pipeline import decode_file as _decode

    src = _path("input", input)
    dst = _path("output", output)
    ref = _opt_path("reference_path", reference_path)
    offset = _pose_offset(yaw, pitch, roll)
    be = _backend(backend)
    trust = _opt_path("trust_dir", trust_dir)
    lax = _flag("insecure", insecure)
    result = _decode(src, dst, trust, insecure=lax, reference_image=ref, pose_offset=offset, backend=be)
    text = json.dumps(result.as_dict(), sort_keys=True)
    if result.invalid_packets:
        raise _Fail(
            Status.E_INVALID_PACKET,
            f"{src}: {result.invalid_packets} damaged packet(s) skipped ({result.first_error}); the output is partial",
            outputs=(text,),
        )
    if result.partial:
        raise _Fail(Status.E_INCOMPLETE, f"{src}: stream ends before a verified End packet; the output is partial", outputs=(text,))
    return Status.OK, text


@_api("facelink_image_load", None, 0, 0, 0)
def image_load(path: object, fmt: object = PixelFormat.RGB24) -> tuple[Status, bytes, int, int, int]:
    """Load a still image as ``(status, pixels, width, height, stride)`` in ``fmt`` (tightly packed).

    Like every FaceLink reference, images whose long side exceeds 2048 are downscaled.
    """
    from ..io import load_image

    p = _path("path", path)
    pf = _pixel_format("format", fmt)
    rgb = load_image(p)
    h, w = rgb.shape[:2]
    return Status.OK, _pixels_out(rgb, pf), int(w), int(h), int(w) * _BPP[pf]
