"""The signed provenance manifest: what a receiver rendered, from which signed session, into which file.

Pure core: bytes and dataclasses in, bytes and verdicts out; no files, clocks or
sockets (times are arguments).  The format is specified in ``docs/provenance.md``;
in short, a manifest is one JSON object::

    {"format": "facelink-provenance-v1",
     "body": {... sessions, receiver, video ...},
     "signature": {"alg": "Ed25519", "key": "<64 hex>", "value": "<128 hex>"}}

and the signature is the receiver's Ed25519 signature over::

    "facelink/provenance/v1\\0" || canonical(body)

``canonical`` is compact JSON with sorted keys, UTF-8, no insignificant whitespace.
Bodies hold only strings, integers, booleans, null, arrays and objects (no floats), so
the canonical form is unambiguous (it is RFC 8785 JCS for this subset) and any
language can reproduce the signed bytes.  :func:`parse_manifest` checks the signature
over the canonical form of the body *before* it interprets any field.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import re
import struct
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ..bitstream import PacketType, SessionHeader
from ..errors import InvalidPacket, VerificationError
from ..security import Identity, fingerprint
from ..security._seal import SIGNER_TAG
from ._content import ContentFingerprint, ContentLog

__all__ = [
    "MANIFEST_FORMAT",
    "MANIFEST_VERSION",
    "MAX_MANIFEST_BYTES",
    "ContentFingerprint",
    "ManifestError",
    "ManifestSession",
    "RecordingLog",
    "SessionManifest",
    "SessionRecord",
    "canonical_json",
    "iso_time",
    "parse_manifest",
    "seal_log_hash",
    "session_entry",
    "sign_manifest",
]

MANIFEST_FORMAT = "facelink-provenance-v2"
MANIFEST_VERSION = 2
#: formats this version reads (v1: no content fingerprint, no completeness; only exact-file checks)
_FORMATS = {"facelink-provenance-v1": 1, "facelink-provenance-v2": 2}
#: a manifest larger than this is not one FaceLink wrote (a session entry is < 2 KiB; the
#: content fingerprint at most 8192 segments of 256 bytes, compressed)
MAX_MANIFEST_BYTES = 4 << 20
#: most sessions one manifest may list
MAX_SESSIONS = 256
#: deepest JSON nesting accepted (ours is 4)
MAX_DEPTH = 8
_DOMAIN = b"facelink/provenance/v1\x00"
_SEAL_LOG = b"facelink/seal-log/v1\x00"
_LEN = struct.Struct("<I")
_HEX64 = re.compile(r"[0-9a-f]{64}")
_HEX32 = re.compile(r"[0-9a-f]{32}")
_HEX16 = re.compile(r"[0-9a-f]{16}")
_HEX128 = re.compile(r"[0-9a-f]{128}")
_HEXANY = re.compile(r"(?:[0-9a-f]{2})+")
_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z")
_POSE = re.compile(r"-?\d{1,2}(?:\.\d{1,3})?,-?\d{1,2}(?:\.\d{1,3})?,-?\d{1,2}(?:\.\d{1,3})?")
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,63}")
_MAX_INT = (1 << 53) - 1


class ManifestError(VerificationError):
    """A provenance manifest that cannot be relied on; ``status`` says how it failed.

    ``corrupt``: not a manifest (not JSON, wrong structure, malformed field);
    ``bad_signature``: well-formed but its signature does not verify (altered, or
    signed by another key than the one it names); ``unsupported``: a newer format.
    """

    def __init__(self, status: str, message: str) -> None:
        super().__init__(message)
        self.status = status


# ---------------------------------------------------------------- canonical form, times, hashes


def canonical_json(obj: object) -> bytes:
    """Sorted-key compact UTF-8 JSON: the bytes a manifest signature covers."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")


def iso_time(seconds: float) -> str:
    """``2026-01-31T12:34:56.789Z`` for POSIX seconds (UTC, millisecond precision)."""
    t = _dt.datetime.fromtimestamp(round(seconds, 3), _dt.timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def seal_log_hash(seals: list[bytes] | tuple[bytes, ...]) -> bytes:
    """SHA-256 over the verified seal packets in the order they were accepted.

    ``SHA-256("facelink/seal-log/v1\\0" || for each seal: u32le(len) || seal packet bytes)``
    """
    h = hashlib.sha256(_SEAL_LOG)
    for s in seals:
        h.update(_LEN.pack(len(s)))
        h.update(s)
    return h.digest()


# ---------------------------------------------------------------- collecting a recording


@dataclass
class SessionRecord:
    """What the receiver saw of one session while rendering it into a file."""

    header: bytes
    reference_sha256: bytes = b""
    target_sha256: bytes | None = None
    pose_offset: tuple[float, float, float] = (0.0, 0.0, 0.0)
    frames: int = 0
    started: float | None = None
    ended: float | None = None
    seals: list[bytes] = field(default_factory=list)
    #: the session's ``End`` packet was released by the verifier (its seal verified)
    end_verified: bool = False

    @property
    def session_id(self) -> bytes:
        return SessionHeader.parse(self.header).session_id


class RecordingLog:
    """Collects, per session, the frames rendered into one output and the seals accepted for it.

    Feed it from the render loop: :meth:`start` when a session is prepared, :meth:`frame`
    for every frame written (``now``: wall-clock POSIX seconds), and the *verified* seal
    packets via :meth:`seal` (strict ``.flk`` decoding, where every released packet is
    verified) or :meth:`observe` (live receivers: only seals whose verdict is ACCEPTED).
    :meth:`end` marks a session whose ``End`` packet was verified; :meth:`interrupt`
    records why the output stops short (a damaged or truncated stream).  ``content``
    fingerprints every frame written, in output order (:mod:`._content`).
    """

    def __init__(self) -> None:
        self._records: dict[bytes, SessionRecord] = {}
        self._pending: dict[bytes, list[bytes]] = {}  # seals of sessions not started yet
        self.current: bytes | None = None
        self.content = ContentLog()
        #: why the recording is partial beyond sessions without a verified End (None: no reason)
        self.interrupted: str | None = None

    def start(
        self,
        header: bytes,
        *,
        target_sha256: bytes | None = None,
        pose_offset: tuple[float, float, float] = (0.0, 0.0, 0.0),
    ) -> SessionRecord:
        hdr = SessionHeader.parse(bytes(header))
        rec = self._records.get(hdr.session_id)
        if rec is None:
            rec = SessionRecord(bytes(header), hdr.reference_digest, target_sha256, tuple(pose_offset))  # type: ignore[arg-type]
            rec.seals.extend(self._pending.pop(hdr.session_id, []))
            self._records[hdr.session_id] = rec
        self.current = hdr.session_id
        return rec

    def frame(self, now: float, session_id: bytes | None = None, image=None) -> None:
        """One frame written to the output; ``image``: the frame exactly as written (fingerprinted)."""
        rec = self._records.get(session_id or self.current or b"")
        if rec is None:
            return
        if image is not None:
            self.content.add(image)
        rec.frames += 1
        if rec.started is None:
            rec.started = now
        rec.ended = now

    def end(self, session_id: bytes | None = None) -> None:
        """The session's ``End`` packet was verified (released by the strict verifier, or its seal accepted)."""
        rec = self._records.get(session_id or self.current or b"")
        if rec is not None:
            rec.end_verified = True

    def interrupt(self, reason: str) -> None:
        """The stream was damaged or cut: the output is partial, whatever the sessions say (first reason kept)."""
        if self.interrupted is None:
            self.interrupted = str(reason)[:200]

    def seal(self, packet: bytes, session_id: bytes | None = None) -> None:
        """Record one verified seal packet of ``session_id`` (default: the current session)."""
        sid = session_id or self.current
        if sid is None or len(packet) < 4 or packet[3] != PacketType.SEAL:
            return
        rec = self._records.get(sid)
        if rec is not None:
            rec.seals.append(bytes(packet))
        else:
            pending = self._pending.setdefault(sid, [])
            if len(pending) < 4096:
                pending.append(bytes(packet))

    def observe(self, items) -> list:
        """Record the accepted seals among receiver deliveries (``FeedResult`` or ``Delivery``); returns ``items``."""
        from ..security import SealStatus

        for it in items:
            d = getattr(it, "delivery", it)
            v = getattr(d, "verdict", None)
            if v is not None and v.seal is SealStatus.ACCEPTED and d.session_id is not None:
                self.seal(d.packet, d.session_id)
        return items

    @property
    def records(self) -> list[SessionRecord]:
        """Sessions with at least one frame in the output, in the order they started."""
        return [r for r in self._records.values() if r.frames]


# ---------------------------------------------------------------- the manifest


@dataclass(frozen=True)
class ManifestSession:
    """One session rendered into the video (one entry of ``body.sessions``)."""

    session_id: bytes
    header: bytes
    sender: bytes | None
    sender_name: str | None
    sender_trusted: bool | None
    created: str
    reference_sha256: bytes
    target_sha256: bytes | None
    pose_offset: str
    started: str
    ended: str
    frames: int
    seal_log_sha256: bytes
    seals: int
    #: the session's End packet was verified (None: a v1 manifest, which did not say)
    end_verified: bool | None = True

    @property
    def header_sha256(self) -> bytes:
        return hashlib.sha256(self.header).digest()

    @property
    def session_tag(self) -> str:
        """The watermark's session tag (8 hex digits) for this session."""
        return self.header_sha256[:4].hex()

    @property
    def sender_fingerprint(self) -> str | None:
        return fingerprint(self.sender) if self.sender is not None else None

    def as_body(self) -> dict:
        return {
            "session_id": self.session_id.hex(),
            "header": self.header.hex(),
            "header_sha256": self.header_sha256.hex(),
            "sender": None
            if self.sender is None
            else {
                "ed25519": self.sender.hex(),
                "fingerprint": fingerprint(self.sender),
                "name": self.sender_name,
                "trusted_by_receiver": self.sender_trusted,
            },
            "created": self.created,
            "reference_sha256": self.reference_sha256.hex(),
            "target_sha256": self.target_sha256.hex() if self.target_sha256 is not None else None,
            "pose_offset": self.pose_offset,
            "started": self.started,
            "ended": self.ended,
            "frames": self.frames,
            "seal_log": {"sha256": self.seal_log_sha256.hex(), "seals": self.seals},
            "end_verified": bool(self.end_verified),
        }


@dataclass(frozen=True)
class SessionManifest:
    """A verified manifest (or one about to be signed): receiver, sessions, video, C2PA certificate."""

    receiver: bytes
    receiver_name: str
    sessions: tuple[ManifestSession, ...]
    video_sha256: bytes | None = None
    video_bytes: int | None = None
    video_name: str | None = None
    c2pa_certificate_sha256: bytes | None = None
    c2pa_ca_sha256: bytes | None = None
    generator: str = ""
    signature: bytes = field(default=b"", repr=False)
    #: the fingerprint of every frame of the output (None: a v1 manifest)
    content: ContentFingerprint | None = field(default=None, repr=False)
    #: the receiver's statement that the recording is complete: every session's End
    #: verified and the stream read to its end (None: a v1 manifest, which did not say)
    complete: bool | None = True
    #: why it is not complete (None when complete)
    incomplete_reason: str | None = None
    version: int = MANIFEST_VERSION

    @property
    def receiver_fingerprint(self) -> str:
        return fingerprint(self.receiver)

    def session_by_tag(self, tag: str) -> ManifestSession | None:
        for s in self.sessions:
            if s.session_tag == tag:
                return s
        return None

    def body(self) -> dict:
        if self.content is None:
            raise ValueError("a manifest needs the content fingerprint of its video")
        return {
            "version": MANIFEST_VERSION,
            "content": self.content.as_body(),
            "complete": bool(self.complete),
            "incomplete_reason": None if self.complete else (self.incomplete_reason or "unknown"),
            "generator": self.generator,
            "receiver": {"ed25519": self.receiver.hex(), "fingerprint": fingerprint(self.receiver), "name": self.receiver_name},
            "sessions": [s.as_body() for s in self.sessions],
            "video": None
            if self.video_sha256 is None
            else {"sha256": self.video_sha256.hex(), "bytes": self.video_bytes, "name": self.video_name},
            "c2pa": None
            if self.c2pa_certificate_sha256 is None
            else {"certificate_sha256": self.c2pa_certificate_sha256.hex(), "ca_sha256": (self.c2pa_ca_sha256 or b"").hex()},
        }


def _pose_text(p: tuple[float, float, float]) -> str:
    return ",".join(f"{round(float(v), 3):g}" for v in p)


def session_entry(rec: SessionRecord, *, sender_name: str | None = None, sender_trusted: bool | None = None) -> ManifestSession:
    """The manifest entry for a recorded session (its header names the sender)."""
    hdr = SessionHeader.parse(rec.header)
    sender = next((v for t, v in hdr.extensions if t == SIGNER_TAG and len(v) == 32), None)
    return ManifestSession(
        session_id=hdr.session_id,
        header=rec.header,
        sender=sender,
        sender_name=sender_name if sender is not None else None,
        sender_trusted=sender_trusted if sender is not None else None,
        created=iso_time(hdr.created_us / 1e6),
        reference_sha256=hdr.reference_digest,
        target_sha256=rec.target_sha256,
        pose_offset=_pose_text(rec.pose_offset),
        started=iso_time(rec.started or 0.0),
        ended=iso_time(rec.ended or 0.0),
        frames=rec.frames,
        seal_log_sha256=seal_log_hash(rec.seals),
        seals=len(rec.seals),
        end_verified=rec.end_verified,
    )


def sign_manifest(manifest: SessionManifest, identity: Identity) -> bytes:
    """The manifest file bytes: ``manifest``'s body signed by ``identity`` (its receiver key)."""
    if not isinstance(identity, Identity):
        raise TypeError(f"identity must be an Identity, got {type(identity).__name__}")
    if identity.public.ed25519 != manifest.receiver:
        raise ValueError("the manifest names another receiver key than the identity signing it")
    body = manifest.body()
    sig = identity.sign(_DOMAIN + canonical_json(body))
    doc = {"format": MANIFEST_FORMAT, "body": body, "signature": {"alg": "Ed25519", "key": manifest.receiver.hex(), "value": sig.hex()}}
    return json.dumps(doc, sort_keys=True, indent=1, ensure_ascii=False).encode("utf-8") + b"\n"


# ---------------------------------------------------------------- parsing (checks before it interprets)


def _corrupt(msg: str) -> ManifestError:
    return ManifestError("corrupt", f"not a FaceLink provenance manifest ({msg})")


def _no_float(text: str):
    raise _corrupt("numbers must be integers")


def _no_constant(text: str):
    raise _corrupt(f"{text} is not JSON")


def _pairs(pairs):
    out = {}
    for k, v in pairs:
        if k in out:
            raise _corrupt(f"key {k[:32]!r} given twice")
        out[k] = v
    return out


def _depth(obj: object, limit: int) -> None:
    stack = [(obj, 0)]
    while stack:
        o, d = stack.pop()
        if d > limit:
            raise _corrupt("nested too deeply")
        if isinstance(o, dict):
            stack.extend((v, d + 1) for v in o.values())
        elif isinstance(o, list):
            stack.extend((v, d + 1) for v in o)


def _obj(value: object, where: str, keys: set[str]) -> dict:
    if not isinstance(value, dict):
        raise _corrupt(f"{where} must be an object")
    got = set(value)
    if got != keys:
        extra, missing = sorted(got - keys), sorted(keys - got)
        what = f"unexpected {extra[0][:32]!r}" if extra else f"missing {missing[0]!r}"
        raise _corrupt(f"{where}: {what}")
    return value


def _str(value: object, where: str, pattern: re.Pattern[str] | None = None, *, nullable: bool = False, maxlen: int = 256) -> str | None:
    if value is None and nullable:
        return None
    if not isinstance(value, str) or len(value) > maxlen or (pattern is not None and not pattern.fullmatch(value)):
        raise _corrupt(f"{where} is malformed")
    return value


def _hex(value: object, where: str, pattern: re.Pattern[str], *, nullable: bool = False) -> bytes | None:
    s = _str(value, where, pattern, nullable=nullable, maxlen=4096)
    return None if s is None else bytes.fromhex(s)


def _int(value: object, where: str, lo: int = 0, hi: int = _MAX_INT, *, nullable: bool = False) -> int | None:
    if value is None and nullable:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise _corrupt(f"{where} must be an integer in [{lo}, {hi}]")
    return value


def _bool(value: object, where: str, *, nullable: bool = False) -> bool | None:
    if value is None and nullable:
        return None
    if not isinstance(value, bool):
        raise _corrupt(f"{where} must be true or false")
    return value


_SESSION_KEYS = {"session_id", "header", "header_sha256", "sender", "created", "reference_sha256", "target_sha256",
                 "pose_offset", "started", "ended", "frames", "seal_log"}  # fmt: skip


def _session(value: object, i: int, version: int) -> ManifestSession:
    w = f"sessions[{i}]"
    s = _obj(value, w, _SESSION_KEYS | ({"end_verified"} if version >= 2 else set()))
    header = _hex(s["header"], f"{w}.header", _HEXANY)
    try:
        hdr = SessionHeader.parse(header)  # type: ignore[arg-type]
    except InvalidPacket as e:
        raise _corrupt(f"{w}.header is not a session header: {e}") from None
    session_id = _hex(s["session_id"], f"{w}.session_id", _HEX32)
    if session_id != hdr.session_id:
        raise _corrupt(f"{w}.session_id does not match its header")
    if _hex(s["header_sha256"], f"{w}.header_sha256", _HEX64) != hashlib.sha256(header).digest():  # type: ignore[arg-type]
        raise _corrupt(f"{w}.header_sha256 does not match its header")
    signer = next((v for t, v in hdr.extensions if t == SIGNER_TAG and len(v) == 32), None)
    sender = name = trusted = None
    if s["sender"] is not None:
        snd = _obj(s["sender"], f"{w}.sender", {"ed25519", "fingerprint", "name", "trusted_by_receiver"})
        sender = _hex(snd["ed25519"], f"{w}.sender.ed25519", _HEX64)
        if _str(snd["fingerprint"], f"{w}.sender.fingerprint", _HEX16) != fingerprint(sender):  # type: ignore[arg-type]
            raise _corrupt(f"{w}.sender.fingerprint does not match its key")
        name = _str(snd["name"], f"{w}.sender.name", _NAME, nullable=True)
        trusted = _bool(snd["trusted_by_receiver"], f"{w}.sender.trusted_by_receiver", nullable=True)
    if sender != signer:
        raise _corrupt(f"{w}.sender is not the signer named by its session header")
    reference = _hex(s["reference_sha256"], f"{w}.reference_sha256", _HEX64)
    if reference != hdr.reference_digest:
        raise _corrupt(f"{w}.reference_sha256 does not match its header")
    log = _obj(s["seal_log"], f"{w}.seal_log", {"sha256", "seals"})
    return ManifestSession(
        session_id=session_id,  # type: ignore[arg-type]
        header=header,  # type: ignore[arg-type]
        sender=sender,
        sender_name=name,
        sender_trusted=trusted,
        created=_str(s["created"], f"{w}.created", _TIME),  # type: ignore[arg-type]
        reference_sha256=reference,  # type: ignore[arg-type]
        target_sha256=_hex(s["target_sha256"], f"{w}.target_sha256", _HEX64, nullable=True),
        pose_offset=_str(s["pose_offset"], f"{w}.pose_offset", _POSE),  # type: ignore[arg-type]
        started=_str(s["started"], f"{w}.started", _TIME),  # type: ignore[arg-type]
        ended=_str(s["ended"], f"{w}.ended", _TIME),  # type: ignore[arg-type]
        frames=_int(s["frames"], f"{w}.frames", 1),  # type: ignore[arg-type]
        seal_log_sha256=_hex(log["sha256"], f"{w}.seal_log.sha256", _HEX64),  # type: ignore[arg-type]
        seals=_int(log["seals"], f"{w}.seal_log.seals"),  # type: ignore[arg-type]
        end_verified=_bool(s["end_verified"], f"{w}.end_verified") if version >= 2 else None,
    )


def _content(value: object) -> ContentFingerprint:
    c = _obj(value, "body.content", {"method", "grid", "segment_frames", "frames", "segments", "data"})
    _str(c["method"], "body.content.method", maxlen=64)
    for k in ("grid", "segment_frames", "frames", "segments"):
        _int(c[k], f"body.content.{k}", 1)
    _str(c["data"], "body.content.data", maxlen=MAX_MANIFEST_BYTES)
    try:
        return ContentFingerprint.from_body(c)
    except ValueError as e:
        raise _corrupt(str(e)) from None


def _verify(key: bytes, signature: bytes, message: bytes) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(key).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True


def parse_manifest(data: bytes) -> SessionManifest:
    """Parse and verify a manifest file; :class:`ManifestError` for anything that is not a valid one.

    Order: size and JSON structure; then the Ed25519 signature of the key the manifest
    names over the canonical body (``bad_signature`` if it fails); only then the body's
    fields, which must name that same key as receiver.  Trust in that key is the
    caller's decision (:class:`~facelink.security.TrustStore`).
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"manifest must be bytes, got {type(data).__name__}")
    data = bytes(data)
    if len(data) > MAX_MANIFEST_BYTES:
        raise _corrupt(f"larger than {MAX_MANIFEST_BYTES} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise _corrupt("not UTF-8 text") from None
    try:
        doc = json.loads(text, object_pairs_hook=_pairs, parse_float=_no_float, parse_constant=_no_constant)
    except ManifestError:
        raise
    except (ValueError, RecursionError):
        raise _corrupt("not JSON") from None
    _depth(doc, MAX_DEPTH)
    if not isinstance(doc, dict) or "format" not in doc:
        raise _corrupt("no format field")
    fmt = doc["format"]
    if isinstance(fmt, str) and fmt.startswith("facelink-provenance-v") and fmt not in _FORMATS:
        raise ManifestError("unsupported", f"manifest format {fmt[:40]!r} is newer than this FaceLink reads ({MANIFEST_FORMAT}); upgrade facelink")
    _obj(doc, "manifest", {"format", "body", "signature"})
    if not isinstance(fmt, str) or fmt not in _FORMATS:
        raise _corrupt("wrong format field")
    fversion = _FORMATS[fmt]
    sig = _obj(doc["signature"], "signature", {"alg", "key", "value"})
    if sig["alg"] != "Ed25519":
        raise _corrupt("signature.alg must be Ed25519")
    key = _hex(sig["key"], "signature.key", _HEX64)
    value = _hex(sig["value"], "signature.value", _HEX128)
    body = doc["body"]
    if not isinstance(body, dict):
        raise _corrupt("body must be an object")
    try:
        signed = _DOMAIN + canonical_json(body)
    except (ValueError, TypeError):
        raise _corrupt("body cannot be serialised canonically") from None
    if not _verify(key, value, signed):  # type: ignore[arg-type]
        raise ManifestError(
            "bad_signature",
            f"manifest signature does not verify with the key it names ({fingerprint(key)}): altered or forged",  # type: ignore[arg-type]
        )
    # signature verified: now interpret the body
    version = body.get("version")
    if isinstance(version, int) and not isinstance(version, bool) and version > MANIFEST_VERSION:
        raise ManifestError("unsupported", f"manifest version {version} is newer than this FaceLink reads ({MANIFEST_VERSION}); upgrade facelink")
    keys = {"version", "generator", "receiver", "sessions", "video", "c2pa"}
    b = _obj(body, "body", keys | ({"content", "complete", "incomplete_reason"} if fversion >= 2 else set()))
    if version != fversion:
        raise _corrupt(f"body.version must be {fversion} in a {fmt} manifest")
    rcv = _obj(b["receiver"], "body.receiver", {"ed25519", "fingerprint", "name"})
    receiver = _hex(rcv["ed25519"], "body.receiver.ed25519", _HEX64)
    if receiver != key:
        raise _corrupt("body.receiver is not the key that signed the manifest")
    if _str(rcv["fingerprint"], "body.receiver.fingerprint", _HEX16) != fingerprint(receiver):  # type: ignore[arg-type]
        raise _corrupt("body.receiver.fingerprint does not match its key")
    sessions = b["sessions"]
    if not isinstance(sessions, list) or not 1 <= len(sessions) <= MAX_SESSIONS:
        raise _corrupt(f"body.sessions must list 1 to {MAX_SESSIONS} sessions")
    parsed = tuple(_session(s, i, fversion) for i, s in enumerate(sessions))
    content = complete = why = None
    if fversion >= 2:
        content = _content(b["content"])
        complete = _bool(b["complete"], "body.complete")
        why = _str(b["incomplete_reason"], "body.incomplete_reason", nullable=True)
        if complete == (why is not None):
            raise _corrupt("body.incomplete_reason must be given exactly when the recording is not complete")
        if content.frames != sum(s.frames for s in parsed):
            raise _corrupt("body.content does not cover the sessions' frames")
    video_sha = video_bytes = video_name = None
    if b["video"] is not None:
        v = _obj(b["video"], "body.video", {"sha256", "bytes", "name"})
        video_sha = _hex(v["sha256"], "body.video.sha256", _HEX64)
        video_bytes = _int(v["bytes"], "body.video.bytes")
        video_name = _str(v["name"], "body.video.name", nullable=True)
    cert = ca = None
    if b["c2pa"] is not None:
        c = _obj(b["c2pa"], "body.c2pa", {"certificate_sha256", "ca_sha256"})
        cert = _hex(c["certificate_sha256"], "body.c2pa.certificate_sha256", _HEX64)
        ca = _hex(c["ca_sha256"], "body.c2pa.ca_sha256", _HEX64)
    return SessionManifest(
        receiver=receiver,  # type: ignore[arg-type]
        receiver_name=_str(rcv["name"], "body.receiver.name", _NAME),  # type: ignore[arg-type]
        sessions=parsed,
        video_sha256=video_sha,
        video_bytes=video_bytes,
        video_name=video_name,
        c2pa_certificate_sha256=cert,
        c2pa_ca_sha256=ca,
        generator=_str(b["generator"], "body.generator", maxlen=128),  # type: ignore[arg-type]
        signature=value,  # type: ignore[arg-type]
        content=content,
        complete=complete,
        incomplete_reason=why,
        version=fversion,
    )
