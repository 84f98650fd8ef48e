"""facelink.capi, ABI 1.1: signed senders, verifying receivers, facelink_keys_trust.

The signed sender must give exactly :func:`facelink.security.seal_packets` of the Python
API's stream; a verifying receiver must follow ``facelink receive``'s policy (frames
returned at once, the verdict at the seal that closes their span) with documented status
codes and messages.  The C side runs the same cases in native/tests/test_capi.c.
"""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from facelink import capi
from facelink.capi import PixelFormat, Status

SIZE = 192
SID = bytes(range(16))
CREATED = 1_700_000_000_000_000
_REF = b"\x80" * (16 * 16 * 3)
SEAL, CHUNK, KEY, PREDICTED = 6, 2, 3, 4


@pytest.fixture(scope="module")
def identity(tmp_path_factory: pytest.TempPathFactory):
    """A signer (NAME.key on disk), a trust directory that trusts it, and an empty one."""
    from facelink.security import generate_identity, trust_key, write_identity

    d = tmp_path_factory.mktemp("sec")
    ident = generate_identity("cam")
    key, _ = write_identity(ident, d / "keys")
    trust_key(d / "trust", ident.public)
    (d / "nobody").mkdir(mode=0o700)
    return ident, str(key), str(d / "trust"), str(d / "nobody")


# --- validation (no models) ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "status", "message"),
    [
        ({"key": "/nonexistent/cam.key"}, Status.E_INPUT, "/nonexistent/cam.key: no such identity key"),
        ({"key": ""}, Status.E_INVALID_ARGUMENT, "key is empty"),
        ({"key": "/x.key", "seal_interval": -1}, Status.E_INVALID_ARGUMENT, "seal_interval must be in (0, 60] seconds (0 = 0.5), got -1"),
        ({"key": "/x.key", "seal_interval": 61}, Status.E_INVALID_ARGUMENT, "seal_interval must be in (0, 60] seconds (0 = 0.5), got 61"),
        ({"seal_interval": 0.2}, Status.E_INVALID_ARGUMENT, "seal_interval is set but key is NULL"),
        ({"key": "/x.key", "seal_interval": float("nan")}, Status.E_INVALID_ARGUMENT, "seal_interval must be finite"),
    ],
)
def test_sender_security_is_checked_before_the_models(kwargs: dict, status: Status, message: str) -> None:
    assert capi.sender_create(_REF, 16, 16, 48, 1, width=64, height=48, **kwargs) == (status, 0)
    assert capi.last_error().startswith(f"facelink_sender_create: {message}")


def test_a_key_readable_by_others_is_refused(identity, tmp_path: Path) -> None:
    open_key = tmp_path / "open.key"
    open_key.write_bytes(Path(identity[1]).read_bytes())
    open_key.chmod(0o644)
    assert capi.sender_create(_REF, 16, 16, 48, 1, width=64, height=48, key=str(open_key)) == (Status.E_INPUT, 0)
    assert "private key permissions 0644 are too open" in capi.last_error()


@pytest.mark.parametrize(
    ("kwargs", "status", "message"),
    [
        ({"verify": 1, "insecure": 2}, Status.E_INVALID_ARGUMENT, "insecure must be 0 or 1, got 2"),
        ({"verify": 3}, Status.E_INVALID_ARGUMENT, "verify must be 0 or 1, got 3"),
        ({"verify": 1, "max_age": -1}, Status.E_INVALID_ARGUMENT, "max_age must be in 0..inf, got -1"),
        ({"verify": 1, "trust_dir": "/nonexistent/trust"}, Status.E_INPUT, "/nonexistent/trust: no such trust directory"),
        ({"trust_dir": "/tmp"}, Status.E_INVALID_ARGUMENT, "trust_dir, insecure and max_age apply to verifying receivers only"),
        ({"insecure": 1}, Status.E_INVALID_ARGUMENT, "trust_dir, insecure and max_age apply to verifying receivers only"),
    ],
)
def test_receiver_security_is_checked(kwargs: dict, status: Status, message: str) -> None:
    assert capi.receiver_create(**kwargs) == (status, 0)
    assert capi.last_error().startswith(f"facelink_receiver_create: {message}")


def test_trust_directory_permissions_are_checked(tmp_path: Path) -> None:
    d = tmp_path / "loose"
    d.mkdir()
    d.chmod(0o777)
    assert capi.receiver_create(verify=1, trust_dir=str(d)) == (Status.E_INPUT, 0)
    assert "writable by group/others" in capi.last_error()


def test_insecure_without_a_trust_directory_trusts_nobody() -> None:
    st, r = capi.receiver_create(verify=1, insecure=1, trust_dir="/nonexistent/trust")
    assert st == Status.OK
    st, report = capi.receiver_verification(r)
    assert st == Status.OK and json.loads(report)["refused"] is None and json.loads(report)["signed"] is False
    assert capi.receiver_destroy(r) == Status.OK
    assert capi.receiver_verification(r) == (Status.E_BAD_HANDLE, None)


def test_verification_summary_needs_a_verifying_receiver() -> None:
    _st, r = capi.receiver_create()
    assert capi.receiver_verification(r) == (Status.E_STATE, None)
    assert capi.last_error().startswith("facelink_receiver_verification: this receiver does not verify")
    capi.receiver_destroy(r)


def test_keys_trust(identity, tmp_path: Path) -> None:
    ident, key, _, _ = identity
    d = tmp_path / "t"
    st, fp, report = capi.keys_trust(key, str(d))  # the public half of a .key file
    assert st == Status.OK and fp == ident.fingerprint
    r = json.loads(report)
    assert r["added"] is True and r["name"] == "cam" and Path(r["path"]).parent == d
    assert (d.stat().st_mode & 0o777) == 0o700
    st, fp2, report = capi.keys_trust(r["path"], str(d))
    assert st == Status.OK and fp2 == fp and json.loads(report)["added"] is False
    assert capi.keys_trust(None) == (Status.E_INVALID_ARGUMENT, None, None)
    assert capi.last_error() == "facelink_keys_trust: pub is NULL"
    assert capi.keys_trust(str(tmp_path / "none.pub"), str(d))[0] == Status.E_INPUT
    from facelink.security import revoke_key

    revoke_key(d, fp)
    assert capi.keys_trust(key, str(d))[0] == Status.E_INPUT and "is revoked" in capi.last_error()


def test_sender_seal_errors() -> None:
    assert capi.sender_seal(None) == (Status.E_BAD_HANDLE, None)
    assert capi.last_error() == "facelink_sender_seal: sender handle is NULL"


# --- with the face models -------------------------------------------------------------------


@pytest.fixture(scope="module")
def clip(portrait, face_models) -> list[np.ndarray]:
    from PIL import Image

    base = Image.fromarray(portrait).resize((SIZE, SIZE), Image.Resampling.LANCZOS)
    return [np.asarray(base.rotate(2.0 * i, resample=Image.Resampling.BILINEAR, translate=(i, 0))) for i in range(7)]


def _python_signed(clip, ident, interval: float, indices: list[int]) -> list[bytes]:
    """The Python API's signed stream: FrameEncoder with the signer extension, then seal_packets()."""
    from facelink.codec import QUALITY_PRESETS
    from facelink.face import create_models, create_tracker
    from facelink.io import Frame
    from facelink.security import seal_packets, signer_extension
    from facelink.sender import FrameEncoder, make_reference

    ref = make_reference(clip[0], create_models("auto"))
    enc = FrameEncoder(
        ref, QUALITY_PRESETS["medium"], width=SIZE, height=SIZE, fps=Fraction(30), tracker=create_tracker("auto"),
        session_id=SID, created_us=CREATED, extensions=(signer_extension(ident),),
    )  # fmt: skip
    packets = enc.start() + [enc.push(Frame(f, i / 30, i))[0] for i, f in zip(indices, clip)] + [enc.end()]
    return list(seal_packets(packets, ident, interval=interval))


def _capi_signed(clip, key: str, interval: float, indices: list[int]) -> tuple[list[bytes], list[int]]:
    st, s = capi.sender_create(
        clip[0], SIZE, SIZE, SIZE * 3, PixelFormat.RGB24, width=SIZE, height=SIZE, session_id=SID, created_us=CREATED,
        key=key, seal_interval=interval,
    )  # fmt: skip
    assert st == Status.OK, capi.last_error()
    st, packets = capi.sender_start(s)
    groups = [len(packets)]
    for i, f in zip(indices, clip):
        st, pk, _ = capi.sender_push(s, f, SIZE, SIZE, SIZE * 3, PixelFormat.RGB24, i, i / 30)
        assert st == Status.OK, capi.last_error()
        packets += pk
        groups.append(len(pk))
    st, pk = capi.sender_end(s)
    assert st == Status.OK and capi.sender_destroy(s) == Status.OK
    return packets + pk, groups + [len(pk)]


@pytest.mark.parametrize(
    ("interval", "indices"),
    [(0.1, list(range(7))), (0.0, list(range(7))), (0.1, [0, 1, 4, 5, 6, 9, 30])],
    ids=["every-3-frames", "default-0.5s", "index-gaps"],
)
def test_signed_sender_matches_seal_packets(clip, identity, interval: float, indices: list[int]) -> None:
    ident, key, _, _ = identity
    got, groups = _capi_signed(clip, key, interval, indices)
    assert got == _python_signed(clip, ident, interval or 0.5, indices)
    from facelink.bitstream import SessionHeader
    from facelink.security import header_signer

    assert header_signer(SessionHeader.parse(got[0])) == ident.public.ed25519
    assert [p[3] for p in got[:2]] == [1, SEAL] and got[groups[0] - 1][3] == SEAL  # header and reference sealed at start
    if interval == 0.1:
        assert groups[1:-1] == [1, 1, 2, 1, 1, 2, 1]  # a seal after every third frame
        assert groups[-1] == 3  # seal of the last frame, End, seal


def test_sender_seal_closes_the_span(clip, identity) -> None:
    _, key, _, _ = identity
    f = clip[0]
    st, s = capi.sender_create(f, SIZE, SIZE, SIZE * 3, 1, width=SIZE, height=SIZE, key=key)
    assert capi.sender_seal(s) == (Status.E_STATE, None)
    assert capi.last_error() == "facelink_sender_seal: call facelink_sender_start first and send its packets"
    assert capi.sender_start(s)[0] == Status.OK
    assert capi.sender_seal(s) == (Status.OK, [])
    st, pk, _ = capi.sender_push(s, f, SIZE, SIZE, SIZE * 3, 1, 0, 0.0)
    assert len(pk) == 1
    st, pk = capi.sender_seal(s)
    assert st == Status.OK and len(pk) == 1 and pk[0][3] == SEAL
    assert capi.sender_end(s)[0] == Status.OK
    assert capi.sender_seal(s) == (Status.E_STATE, None)
    assert capi.last_error() == "facelink_sender_seal: the session has ended (its last seal was sent)"
    capi.sender_destroy(s)
    st, plain = capi.sender_create(f, SIZE, SIZE, SIZE * 3, 1, width=SIZE, height=SIZE)
    assert capi.sender_seal(plain) == (Status.E_STATE, None)
    assert "does not sign" in capi.last_error()
    capi.sender_destroy(plain)


@pytest.fixture(scope="module")
def signed(clip, identity) -> list[bytes]:
    return _capi_signed(clip, identity[1], 0.1, list(range(len(clip))))[0]


def _receive(packets: list[bytes], **kwargs) -> tuple[list[tuple[Status, str]], list[int], dict]:
    st, r = capi.receiver_create(verify=1, **kwargs)
    assert st == Status.OK, capi.last_error()
    statuses, frames = [], []
    for p in packets:
        st, f = capi.receiver_push(r, p)
        statuses.append((Status(st), capi.last_error()))
        if f is not None:
            frames.append(f.index)
    st, report = capi.receiver_verification(r)
    assert st == Status.OK
    capi.receiver_destroy(r)
    return statuses, frames, json.loads(report)


def _bad(statuses: list[tuple[Status, str]]) -> list[tuple[int, Status]]:
    return [(i, st) for i, (st, _) in enumerate(statuses) if st != Status.OK]


def test_trusted_stream_verifies(signed, identity) -> None:
    statuses, frames, report = _receive(signed, trust_dir=identity[2])
    assert _bad(statuses) == [] and frames == list(range(7))
    assert report["intact"] and report["trusted"] and report["signer"] == identity[0].fingerprint
    assert report["frames_verified"] == 7 and report["packets_pending"] == 0 and report["refused"] is None


def test_untrusted_signer_is_refused(signed, identity) -> None:
    statuses, frames, report = _receive(signed, trust_dir=identity[3])
    assert _bad(statuses) == [(i, Status.E_UNTRUSTED) for i in range(len(signed))] and frames == []
    assert statuses[0][1].startswith(f"facelink_receiver_push: session refused: sender key {identity[0].fingerprint} is not trusted")
    assert statuses[-1][1] == statuses[0][1]
    assert report["refused"].startswith("sender key") and not report["trusted"]


def test_insecure_accepts_an_untrusted_signer_but_checks_its_seals(signed, identity) -> None:
    statuses, frames, report = _receive(signed, trust_dir=identity[3], insecure=1)
    assert _bad(statuses) == [] and len(frames) == 7 and report["trusted"] is False and report["spans_verified"] == 6
    tampered = list(signed)
    i = next(k for k, p in enumerate(signed) if p[3] == KEY)
    tampered[i] = tampered[i][:-1] + bytes([tampered[i][-1] ^ 1])
    statuses, _, report = _receive(tampered, trust_dir=identity[3], insecure=1)
    assert Status.E_VERIFICATION in [st for _, st in _bad(statuses)] and report["spans_mismatch"] == 1


def test_unsigned_stream(signed, clip, identity) -> None:
    _st, s = capi.sender_create(clip[0], SIZE, SIZE, SIZE * 3, 1, width=SIZE, height=SIZE, session_id=SID, created_us=CREATED)
    packets = capi.sender_start(s)[1]
    for i, f in enumerate(clip[:3]):
        packets += capi.sender_push(s, f, SIZE, SIZE, SIZE * 3, 1, i, i / 30)[1]
    packets += capi.sender_end(s)[1]
    capi.sender_destroy(s)
    statuses, frames, _ = _receive(packets, trust_dir=identity[2])
    assert _bad(statuses)[0] == (0, Status.E_UNTRUSTED) and frames == []
    assert "stream is not signed" in statuses[0][1]
    statuses, frames, report = _receive(packets, insecure=1, trust_dir=identity[2])
    assert _bad(statuses) == [] and frames == [0, 1, 2] and report["signed"] is False
    # a seal in an "unsigned" stream: its header's signer extension was stripped
    statuses, _, _ = _receive(packets[:1] + [signed[1]], insecure=1, trust_dir=identity[2])
    assert _bad(statuses) == [(1, Status.E_VERIFICATION)] and "seal in an unsigned stream" in statuses[1][1]


def _first(signed: list[bytes], kind: int, start: int = 0) -> int:
    return next(k for k in range(start, len(signed)) if signed[k][3] == kind)


def test_tampered_frame_fails_its_span_only(signed, identity) -> None:
    i = _first(signed, KEY)
    seal = _first(signed, SEAL, i)
    tampered = list(signed)
    tampered[i] = signed[i][:-1] + bytes([signed[i][-1] ^ 1])
    statuses, _frames, report = _receive(tampered, trust_dir=identity[2])
    bad = _bad(statuses)
    assert bad[-1] == (seal, Status.E_VERIFICATION) and all(k == i for k, _ in bad[:-1])  # the frame may not parse
    msg = statuses[seal][1]
    assert "failed verification (mismatch: the seal does not verify over these packets" in msg and "(frame" in msg
    assert msg.endswith("treat those frames as not authentic")
    assert report["spans_mismatch"] == 1 and report["spans_verified"] == report["seals_accepted"] and report["end_verified"]


def test_reordered_and_injected_frames(signed, identity) -> None:
    i = _first(signed, PREDICTED)
    seal = _first(signed, SEAL, i)
    swapped = list(signed)
    swapped[i], swapped[i + 1] = signed[i + 1], signed[i]
    statuses, _, _ = _receive(swapped, trust_dir=identity[2])
    assert _bad(statuses) == [(seal, Status.E_VERIFICATION)]
    assert "mismatch: frame packets out of order, repeated or injected" in statuses[seal][1]
    injected = signed[: i + 1] + [signed[i]] + signed[i + 1 :]
    statuses, _, _ = _receive(injected, trust_dir=identity[2])
    assert _bad(statuses) == [(seal + 1, Status.E_VERIFICATION)]


def test_lost_frame_is_incomplete_not_tampering(signed, identity) -> None:
    i = _first(signed, PREDICTED)
    seal = _first(signed, SEAL, i)
    statuses, _, report = _receive(signed[:i] + signed[i + 1 :], trust_dir=identity[2])
    assert _bad(statuses) == [(seal - 1, Status.E_INCOMPLETE)]
    assert "cannot be verified (incomplete: 1 frame packet(s) missing)" in statuses[seal - 1][1]
    assert report["spans_incomplete"] == 1 and report["spans_mismatch"] == 0


def test_replayed_seal_and_foreign_header(signed, identity) -> None:
    statuses, _, _ = _receive(signed[:2] + [signed[1]] + signed[2:], trust_dir=identity[2])
    assert _bad(statuses) == [(2, Status.E_VERIFICATION)]
    assert "packet 2: replayed seal (counter 0, already at 0): ignored" in statuses[2][1]
    import dataclasses

    from facelink.bitstream import SessionHeader

    hdr = SessionHeader.parse(signed[0])
    foreign = bytes(dataclasses.replace(hdr, session_id=bytes(16)))
    statuses, frames, report = _receive(signed[:8] + [foreign] + signed[8:], trust_dir=identity[2])
    assert _bad(statuses)[0] == (8, Status.E_VERIFICATION) and report["foreign_headers"] == 1
    assert statuses[8][1] == (
        "facelink_receiver_push: packet 8: foreign session header, dropped "
        "(a receiver shows one session; create a new receiver for another)"
    )
    assert len(frames) == 7  # the foreign header never reached the decoder


def test_max_age_refuses_old_recordings(signed, identity) -> None:
    statuses, frames, _report = _receive(signed, trust_dir=identity[2], max_age=60)
    assert _bad(statuses)[0] == (1, Status.E_UNTRUSTED) and frames == []
    assert "longer ago than the allowed 60 s (a replayed recording?)" in statuses[1][1]
