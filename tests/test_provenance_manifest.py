"""The signed provenance manifest: canonical form, signing, strict parsing, tampering, fuzzing."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
from _support import FUZZ, PROPERTY
from facelink.bitstream import Seal, SessionHeader
from facelink.provenance import (
    MANIFEST_FORMAT,
    ManifestError,
    RecordingLog,
    SessionManifest,
    canonical_json,
    parse_manifest,
    seal_log_hash,
    session_entry,
    sign_manifest,
)
from facelink.security import (
    SealStatus,
    fingerprint,
    generate_identity,
    signer_extension,
)
from hypothesis import given
from hypothesis import strategies as st

SENDER = generate_identity("cam-1")
RECEIVER = generate_identity("kiosk-1")
OTHER = generate_identity("intruder")


def _header(session_id: bytes = b"prov-test-sessn1", signer=SENDER) -> bytes:
    return bytes(
        SessionHeader(
            session_id=session_id,
            created_us=1_700_000_000_123_456,
            width=512,
            height=512,
            fps_num=25,
            fps_den=1,
            key_interval=25,
            n_coeffs=2,
            basis_id=b"basis-02",
            steps=(0.5, 1.0, 0.25, 0.125),
            key_scales=bytes([45, 45, 45, 48, 48, 35, 40, 40]),
            pred_scales=bytes([18, 18, 18, 21, 21, 10, 16, 16]),
            reference_digest=b"\x42" * 32,
            reference_size=200,
            extensions=(signer_extension(signer),) if signer is not None else (),
        )
    )


SEALS = [bytes(Seal(i, i, 40 * i, bytes([i]) * 64)) for i in range(3)]


def _log(header: bytes | None = None, frames: int = 5, seals=SEALS) -> RecordingLog:
    log = RecordingLog()
    header = header or _header()
    sid = SessionHeader.parse(header).session_id
    log.seal(seals[0], sid)  # a seal before the session started (header span): kept
    log.start(header, pose_offset=(10.0, 0.0, -2.5))
    for s in seals[1:]:
        log.seal(s)
    for i in range(frames):
        log.frame(1_800_000_000.0 + i / 25, image=_img(i))
    return log


def _img(i: int) -> np.ndarray:
    """A small frame whose content differs per index (the log fingerprints what it is given)."""
    img = np.zeros((32, 48, 3), np.uint8)
    img[:, : 4 + 4 * (i % 10)] = 200
    return img


def _manifest(log: RecordingLog | None = None, **kw) -> SessionManifest:
    log = log or _log()
    fields = {
        "receiver": RECEIVER.public.ed25519,
        "receiver_name": RECEIVER.name,
        "sessions": tuple(session_entry(r, sender_name="cam-1", sender_trusted=True) for r in log.records),
        "video_sha256": b"\x11" * 32,
        "video_bytes": 12345,
        "video_name": "clip.mp4",
        "generator": "facelink test",
        "content": log.content.fingerprint(),
    }
    fields.update(kw)
    return SessionManifest(**fields)  # type: ignore[arg-type]


def test_round_trip_and_fields():
    data = sign_manifest(_manifest(), RECEIVER)
    m = parse_manifest(data)
    assert m.receiver == RECEIVER.public.ed25519 and m.receiver_fingerprint == RECEIVER.fingerprint
    (s,) = m.sessions
    assert s.session_id == b"prov-test-sessn1" and s.sender == SENDER.public.ed25519
    assert s.sender_fingerprint == SENDER.fingerprint and s.sender_name == "cam-1" and s.sender_trusted is True
    assert s.frames == 5 and s.seals == 3 and s.seal_log_sha256 == seal_log_hash(SEALS)
    assert s.session_tag == hashlib.sha256(_header()).hexdigest()[:8]
    assert s.pose_offset == "10,0,-2.5" and s.reference_sha256 == b"\x42" * 32
    assert s.created == "2023-11-14T22:13:20.123Z" and s.started == "2027-01-15T08:00:00.000Z"
    assert s.ended == "2027-01-15T08:00:00.160Z"
    assert m.video_sha256 == b"\x11" * 32 and m.video_bytes == 12345 and m.video_name == "clip.mp4"
    assert m.session_by_tag(s.session_tag) == s and m.session_by_tag("00000000") is None
    # the signature covers the canonical body: sorted keys, compact, UTF-8
    doc = json.loads(data)
    assert doc["format"] == MANIFEST_FORMAT and doc["signature"]["alg"] == "Ed25519"
    assert doc["body"]["version"] == 2 and doc["body"]["complete"] is True and doc["body"]["content"]["frames"] == 5
    msg = b"facelink/provenance/v1\x00" + canonical_json(doc["body"])
    assert RECEIVER.public.verify(bytes.fromhex(doc["signature"]["value"]), msg)
    # re-serialising in any key order or indentation keeps it valid (canonical form)
    assert parse_manifest(json.dumps(doc, indent=None, sort_keys=False).encode()).sessions == m.sessions


def test_seal_log_hash_is_order_and_boundary_sensitive():
    a, b = SEALS[0], SEALS[1]
    assert seal_log_hash([a, b]) != seal_log_hash([b, a])
    assert seal_log_hash([a + b]) != seal_log_hash([a, b])
    assert seal_log_hash([]) == hashlib.sha256(b"facelink/seal-log/v1\x00").digest()


def test_recording_log_keeps_only_accepted_seals_of_each_session():
    class V:
        def __init__(self, seal):
            self.seal = seal

    class D:
        def __init__(self, packet, seal, sid):
            self.packet, self.verdict, self.session_id = packet, V(seal), sid

    log = RecordingLog()
    h1, h2 = _header(b"session-number-1"), _header(b"session-number-2")
    log.start(h1)
    log.frame(1.0, image=_img(1))
    log.observe([D(SEALS[0], SealStatus.ACCEPTED, b"session-number-1"), D(SEALS[1], SealStatus.BAD_SIGNATURE, b"session-number-1")])
    log.observe([D(SEALS[2], SealStatus.ACCEPTED, b"session-number-2"), D(b"\x00" * 10, None, b"session-number-1")])
    log.start(h2)
    log.frame(2.0, image=_img(2))
    log.frame(3.0, image=_img(3))
    log.start(_header(b"session-number-3"))  # started but never rendered: not in the manifest
    r1, r2 = log.records
    assert r1.seals == [SEALS[0]] and r1.frames == 1
    assert r2.seals == [SEALS[2]] and r2.frames == 2 and (r2.started, r2.ended) == (2.0, 3.0)
    m = parse_manifest(sign_manifest(_manifest(log), RECEIVER))
    assert [s.session_id for s in m.sessions] == [b"session-number-1", b"session-number-2"]


def test_unsigned_session_has_no_sender():
    m = parse_manifest(sign_manifest(_manifest(_log(_header(signer=None))), RECEIVER))
    assert m.sessions[0].sender is None and m.sessions[0].sender_name is None


def test_signed_by_another_key_is_refused():
    with pytest.raises(ValueError, match="another receiver key"):
        sign_manifest(_manifest(), OTHER)
    # a manifest naming OTHER as receiver but with RECEIVER's signature swapped in
    theirs = json.loads(sign_manifest(_manifest(receiver=OTHER.public.ed25519, receiver_name=OTHER.name), OTHER))
    ours = json.loads(sign_manifest(_manifest(), RECEIVER))
    theirs["signature"]["value"] = ours["signature"]["value"]
    with pytest.raises(ManifestError) as e:
        parse_manifest(json.dumps(theirs).encode())
    assert e.value.status == "bad_signature" and fingerprint(OTHER.public.ed25519) in str(e.value)
    # re-signed by someone else who claims to be RECEIVER in the body
    forged = json.loads(sign_manifest(_manifest(receiver=OTHER.public.ed25519, receiver_name=OTHER.name), OTHER))
    forged["body"]["receiver"] = ours["body"]["receiver"]
    with pytest.raises(ManifestError) as e:
        parse_manifest(json.dumps(forged).encode())
    assert e.value.status == "bad_signature"


@pytest.mark.parametrize(
    "path,value",
    [
        (("body", "sessions", 0, "frames"), 6),
        (("body", "sessions", 0, "sender", "trusted_by_receiver"), False),
        (("body", "video", "sha256"), "22" * 32),
        (("body", "sessions", 0, "seal_log", "seals"), 2),
        (("body", "receiver", "name"), "kiosk-2"),
        (("body", "generator"), "facelink test "),
    ],
)
def test_any_altered_field_breaks_the_signature(path, value):
    doc = json.loads(sign_manifest(_manifest(), RECEIVER))
    node = doc
    for p in path[:-1]:
        node = node[p]
    node[path[-1]] = value
    with pytest.raises(ManifestError) as e:
        parse_manifest(json.dumps(doc).encode())
    assert e.value.status == "bad_signature"


def _resign(body: dict, identity=RECEIVER) -> bytes:
    sig = identity.sign(b"facelink/provenance/v1\x00" + canonical_json(body))
    return json.dumps({"format": MANIFEST_FORMAT, "body": body, "signature": {"alg": "Ed25519", "key": identity.public.ed25519.hex(), "value": sig.hex()}}).encode()


@pytest.mark.parametrize(
    "mutate,match",
    [
        (lambda b: b["sessions"][0].update(session_id="00" * 16), "session_id does not match"),
        (lambda b: b["sessions"][0].update(header_sha256="00" * 32), "header_sha256 does not match"),
        (lambda b: b["sessions"][0]["sender"].update(ed25519=OTHER.public.ed25519.hex(), fingerprint=OTHER.fingerprint), "not the signer"),
        (lambda b: b["sessions"][0].update(reference_sha256="00" * 32), "reference_sha256"),
        (lambda b: b["sessions"][0].update(header="0102"), "not a session header"),
        (lambda b: b["sessions"][0].update(frames=0), "frames"),
        (lambda b: b["sessions"][0].update(extra=1), "unexpected 'extra'"),
        (lambda b: b.update(sessions=[]), "1 to 256 sessions"),
        (lambda b: b["receiver"].update(fingerprint="0" * 16), "fingerprint does not match"),
        (lambda b: b.update(version=0), "version must be 2"),
        (lambda b: b.pop("video"), "missing 'video'"),
        (lambda b: b.pop("content"), "missing 'content'"),
        (lambda b: b["content"].update(frames=6, segments=1), "does not cover the sessions' frames"),
        (lambda b: b["content"].update(segments=2), "disagree"),
        (lambda b: b["content"].update(data="!!"), "not base64 zlib"),
        (lambda b: b["content"].update(method="other-v9"), "is not luma-grid16"),
        (lambda b: b.update(complete=False), "incomplete_reason must be given"),
        (lambda b: b.update(incomplete_reason="cut"), "incomplete_reason must be given"),
        (lambda b: b["sessions"][0].pop("end_verified"), "missing 'end_verified'"),
    ],
)
def test_signed_but_malformed_bodies_are_corrupt(mutate, match):
    body = json.loads(sign_manifest(_manifest(), RECEIVER))["body"]
    mutate(body)
    with pytest.raises(ManifestError, match=match) as e:
        parse_manifest(_resign(body))
    assert e.value.status == "corrupt"


def test_receiver_must_be_the_signer():
    body = json.loads(sign_manifest(_manifest(), RECEIVER))["body"]
    with pytest.raises(ManifestError, match="not the key that signed") as e:
        parse_manifest(_resign(body, OTHER))
    assert e.value.status == "corrupt"


def test_newer_versions_say_upgrade():
    body = json.loads(sign_manifest(_manifest(), RECEIVER))["body"]
    body["version"] = 3
    with pytest.raises(ManifestError, match="upgrade facelink") as e:
        parse_manifest(_resign(body))
    assert e.value.status == "unsupported"
    doc = json.loads(_resign(body))
    doc["format"] = "facelink-provenance-v9"
    with pytest.raises(ManifestError, match="upgrade facelink"):
        parse_manifest(json.dumps(doc).encode())


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"not json",
        b"\xff\xfe",
        b"[]",
        b"{}",
        b'{"format": "facelink-provenance-v1"}',
        b'{"format": "facelink-provenance-v1", "body": {}, "signature": {}}',
        b'{"format": "x", "format": "y"}',
        b'{"a": NaN}',
        b'{"a": 1.5}',
        b"[" * 100000,
        b" " * (1 << 20) + b"{}",
    ],
)
def test_garbage_is_corrupt(data):
    with pytest.raises(ManifestError) as e:
        parse_manifest(data)
    assert e.value.status == "corrupt"


def test_truncated_and_bitflipped_files():
    data = sign_manifest(_manifest(), RECEIVER)
    for n in (1, len(data) // 2, len(data) - 3):
        with pytest.raises(ManifestError):
            parse_manifest(data[:n])
    for i in range(0, len(data), 7):
        bad = bytearray(data)
        bad[i] ^= 0x01
        try:
            m = parse_manifest(bytes(bad))
        except ManifestError:
            continue
        assert m == parse_manifest(data)  # only insignificant whitespace/format changes survive


def test_wrong_types():
    with pytest.raises(TypeError):
        parse_manifest("text")  # type: ignore[arg-type]


_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**60), 2**60) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=5),
    max_leaves=30,
)


@FUZZ
@given(st.binary(max_size=2048))
def test_fuzz_bytes(data):
    try:
        parse_manifest(data)
    except ManifestError:
        pass


@FUZZ
@given(_json)
def test_fuzz_json_structures(value):
    try:
        parse_manifest(json.dumps(value).encode())
    except ManifestError:
        pass


VALID = json.loads(sign_manifest(_manifest(), RECEIVER))


def _paths(node, prefix=()):
    if isinstance(node, dict):
        for k, v in node.items():
            yield prefix + (k,)
            yield from _paths(v, prefix + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield prefix + (i,)
            yield from _paths(v, prefix + (i,))


PATHS = list(_paths(VALID))


@FUZZ
@given(st.sampled_from(PATHS), _json, st.booleans())
def test_fuzz_field_replacement_signed_and_unsigned(path, value, resign):
    """Any field of a valid manifest replaced by any JSON value: a ManifestError or, if unchanged, the same manifest."""
    doc = json.loads(json.dumps(VALID))
    node = doc
    for p in path[:-1]:
        node = node[p]
    node[path[-1]] = value
    data = _resign(doc["body"]) if resign and isinstance(doc.get("body"), dict) else json.dumps(doc).encode()
    try:
        m = parse_manifest(data)
    except ManifestError:
        return
    assert isinstance(m, SessionManifest)


@PROPERTY
@given(st.integers(0, 100), st.integers(0, 20))
def test_property_counts_round_trip(frames, seals):
    log = _log(frames=max(1, frames), seals=[bytes(Seal(i & 0xFFFF, i, i, b"\x01" * 64)) for i in range(seals + 1)])
    m = parse_manifest(sign_manifest(_manifest(log), RECEIVER))
    assert m.sessions[0].frames == max(1, frames) and m.sessions[0].seals == seals + 1


def test_content_fingerprint_round_trips_through_the_signed_body():
    import zlib

    log = _log(frames=21)
    m = parse_manifest(sign_manifest(_manifest(log), RECEIVER))
    fp = m.content
    assert fp is not None and fp.frames == 21 and fp.segment_frames == 8 and fp.segments == 3
    assert np.array_equal(fp.grids, log.content.fingerprint().grids)
    assert fp.bounds(2) == (16, 21)
    # a decompression bomb in place of the data is refused, not inflated
    body = json.loads(sign_manifest(_manifest(log), RECEIVER))["body"]
    import base64

    body["content"]["data"] = base64.b64encode(zlib.compress(bytes(10_000_000))).decode()
    with pytest.raises(ManifestError, match="wrong length"):
        parse_manifest(_resign(body))


def test_incomplete_recordings_say_why():
    m = parse_manifest(sign_manifest(_manifest(complete=False, incomplete_reason="stream truncated after 5 frames"), RECEIVER))
    assert m.complete is False and m.incomplete_reason == "stream truncated after 5 frames"
    (s,) = m.sessions
    assert s.end_verified is False  # the test log never saw a verified End


def test_v1_manifests_are_read_without_content_or_completeness():
    body = json.loads(sign_manifest(_manifest(), RECEIVER))["body"]
    for k in ("content", "complete", "incomplete_reason"):
        body.pop(k)
    body["sessions"][0].pop("end_verified")
    body["version"] = 1
    sig = RECEIVER.sign(b"facelink/provenance/v1\x00" + canonical_json(body))
    doc = {"format": "facelink-provenance-v1", "body": body, "signature": {"alg": "Ed25519", "key": RECEIVER.public.ed25519.hex(), "value": sig.hex()}}
    m = parse_manifest(json.dumps(doc).encode())
    assert m.version == 1 and m.content is None and m.complete is None and m.sessions[0].end_verified is None
