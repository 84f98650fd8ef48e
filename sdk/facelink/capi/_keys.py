"""The C API's keys and verification: ``facelink_keys_*``, ``facelink_verify_file`` (the CLI's,
through :mod:`facelink.pipeline`), and :func:`features`."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any

from ._core import Status, _api, _Fail, _opt_path, _path, _str

_KEY_FUNCS = ("generate_identity", "write_identity", "default_key_dir")


def _security_module() -> Any:
    """``facelink.security`` if it provides key generation, else ``None``."""
    try:
        import facelink.security as sec  # noqa: PLC0415 - feature detection
    except ImportError:
        return None
    return sec if all(callable(getattr(sec, n, None)) for n in _KEY_FUNCS) else None


def _security() -> Any:
    """:func:`_security_module`, or E_UNSUPPORTED naming what is missing."""
    sec = _security_module()
    if sec is None:
        raise _Fail(
            Status.E_UNSUPPORTED,
            "key management is not available in this facelink build (facelink.security lacks "
            + "/".join(_KEY_FUNCS)
            + "); update the facelink package",
        )
    return sec


def _verify_function() -> Callable[..., Any] | None:
    """The whole-file verifier behind ``facelink_verify_file``: :func:`facelink.pipeline.verify_video`
    (the CLI's), as a function of ``(path, trust=None)`` returning the report dict."""

    def verify(path: str, trust: str | None = None) -> dict[str, Any]:
        from ..pipeline import verify_video

        return verify_video(path, trust).as_dict()

    return verify


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
    sec = _security()
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
    sec = _security()
    identity = sec.generate_identity(n)
    key_path, pub_path = sec.write_identity(identity, d if d is not None else sec.default_key_dir())
    fp = str(identity.fingerprint)
    report = {"name": n, "fingerprint": fp, "key": os.fspath(key_path), "pub": os.fspath(pub_path)}
    return Status.OK, fp, json.dumps(report, sort_keys=True)


@_api("facelink_verify_file", None)
def verify_file(path: object, trust_dir: object = None) -> tuple[Status, str]:
    """``facelink verify VIDEO [--trust DIR]``: returns ``(status, report)``, the CLI's JSON object
    (watermark and signed provenance manifest: ``sender``, ``signature_valid``, ``verdict``, ...).

    The status is OK whenever the analysis ran, whatever it found (read ``synthetic`` and
    ``signature_valid`` in the report), like the CLI's exit code 0.
    """
    p = _path("path", path)
    t = _opt_path("trust_dir", trust_dir)
    fn = _verify_function()
    if fn is None:
        raise _Fail(
            Status.E_UNSUPPORTED,
            "watermark verification is not available in this facelink build; update the facelink package",
        )
    result = fn(p, trust=t) if t is not None else fn(p)
    return Status.OK, json.dumps(result, sort_keys=True, default=str)
