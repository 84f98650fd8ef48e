"""Seals and the hash chain: intact streams verify; every kind of tampering is caught; loss is tolerated."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import itertools
import random

import pytest
from _support import FUZZ
from facelink import bitstream as bs
from facelink.codec import QUALITY_PRESETS, FrameKind, StreamDecoder, StreamEncoder
from facelink.errors import InvalidPacket, VerificationError
from facelink.security import (
    SIGNER_TAG,
    SealStatus,
    SealWriter,
    SpanStatus,
    StreamVerifier,
    TrustStore,
    chain_root,
    chain_step,
    generate_identity,
    iter_verified,
    next_root,
    seal_message,
    seal_packets,
    signer_extension,
)
from hypothesis import given
from hypothesis import strategies as st
from test_codec import _motion, _reference

FPS = 30
KEY_INTERVAL = 30


@functools.cache
def _ident(name: str):
    return generate_identity(name)


@functools.cache
def _scene(n: int):
    ref = _reference(size=(64, 64))
    return ref, _motion(ref, n=n)


def make_stream(
    signer=None,
    *,
    n=90,
    live=False,
    session=b"\x11" * 16,
    interval=0.5,
    signed=True,
    created_us=1_700_000_000_000_000,
    resync_at=None,
) -> list[bytes]:
    """A sealed synthetic session: header (+ reference) first, as in a .flk file.

    ``live`` starts with the transport's sync seal; ``resync_at=i`` re-syncs before frame i
    (seal, header, seal), as the sender does when a receiver (re)connects.
    """
    signer = signer or _ident("alice")
    ref, motion = _scene(max(n, 1))
    exts = (signer_extension(signer),) if signed else ()
    enc = StreamEncoder(
        ref, QUALITY_PRESETS["medium"].with_(key_interval=KEY_INTERVAL), width=64, height=64, fps=FPS,
        session_id=session, created_us=created_us, extensions=exts,
    )  # fmt: skip
    if not signed:
        return enc.start() + [enc.encode(i, i / FPS, motion[i])[0] for i in range(n)] + [enc.end()]
    w = SealWriter(signer, bytes(enc.header), interval=interval)
    out = [w.seal()] if live else []
    for p in enc.start():
        out += w.push(p, 0.0)
    out.append(w.seal())
    for i in range(n):
        if i == resync_at:
            out.append(w.seal())
            out += w.push(bytes(enc.header), i / FPS)
            out.append(w.seal())
        out += w.push(enc.encode(i, i / FPS, motion[i])[0], i / FPS)
    out += w.push(enc.end(), n / FPS)
    out.append(w.seal())
    return out


def trusted(*names) -> TrustStore:
    return TrustStore(keys=tuple(_ident(n).public for n in names))


def kinds(stream):
    return [p[3] for p in stream]


def seal_positions(stream):
    return [i for i, p in enumerate(stream) if p[3] == bs.PacketType.SEAL]


def frame_positions(stream):
    return [i for i, p in enumerate(stream) if p[3] in (bs.PacketType.KEY_FRAME, bs.PacketType.PREDICTED_FRAME)]


def strict(stream, store=None, **kw):
    return list(iter_verified(stream, store if store is not None else trusted("alice"), **kw))


def feed_all(stream, store=None, **kw):
    v = StreamVerifier(store if store is not None else trusted("alice"), **kw)
    verdicts = [v.feed(p) for p in stream]
    tail = v.finish()
    return v, verdicts, [s for vd in verdicts for s in vd.spans] + list(tail)


# ---------------------------------------------------------------- the intact case


def test_intact_stream_verifies_completely():
    stream = make_stream()
    assert strict(stream) == stream
    v, verdicts, spans = feed_all(stream)
    s = v.summary()
    assert s.intact and s.trusted and s.signer == _ident("alice").fingerprint and s.signer_name == "alice"
    assert all(sp.status is SpanStatus.VERIFIED for sp in spans)
    assert s.frames_verified == 90 and s.packets_verified + s.seals_accepted == len(stream)
    assert all(vd.seal is SealStatus.ACCEPTED for vd in verdicts if vd.kind is bs.PacketType.SEAL)


def test_seals_come_every_half_second_of_stream_and_at_the_end():
    stream = make_stream(n=90)
    frames = frame_positions(stream)
    seals = seal_positions(stream)
    assert seals[-1] == len(stream) - 1 and stream[-2][3] == bs.PacketType.END
    # frames between consecutive seals: exactly 15 at 30 fps (0.5 s), never more
    runs = [sum(1 for f in frames if a < f < b) for a, b in itertools.pairwise(seals)]
    assert max(runs) == 15 and runs.count(15) == 6
    one_s = make_stream(n=90, interval=1.0)
    assert len(seal_positions(one_s)) < len(seals)


def test_seal_signs_the_documented_message():
    stream = make_stream(n=20)
    header = stream[0]
    seal = bs.Seal.parse(stream[seal_positions(stream)[0]])
    h = chain_root(b"\x11" * 16)
    for p in stream[: seal_positions(stream)[0]]:
        h = chain_step(h, p)
    assert seal.chain_hash == h
    assert seal.covered_through_seq == 0xFFFF  # no frame covered yet
    msg = b"facelink/seal/v1\x00" + hashlib.sha256(header).digest() + b"\xff\xff" + h
    assert msg == seal_message(hashlib.sha256(header).digest(), 0xFFFF, h)
    assert _ident("alice").public.verify(seal.signature, msg)
    second = bs.Seal.parse(stream[seal_positions(stream)[1]])
    h2 = next_root(h)
    for p in stream[seal_positions(stream)[0] + 1 : seal_positions(stream)[1]]:
        h2 = chain_step(h2, p)
    assert second.chain_hash == h2 and second.covered_through_seq == 14


def test_header_carries_the_signer_key():
    hdr = bs.SessionHeader.parse(make_stream(n=1)[0])
    assert dict(hdr.extensions)[SIGNER_TAG] == _ident("alice").public.ed25519
    assert [t for t, _ in hdr.extensions] == sorted(t for t, _ in hdr.extensions)


def test_seal_writer_rejects_a_header_naming_another_signer():
    stream = make_stream(n=1)
    with pytest.raises(ValueError, match="does not name this identity"):
        SealWriter(_ident("bob"), stream[0])
    with pytest.raises(ValueError, match="not a session header"):
        SealWriter(_ident("alice"), stream[1])
    with pytest.raises(ValueError, match="seal interval"):
        SealWriter(_ident("alice"), stream[0], interval=0)


def test_poll_seals_a_stalled_source():
    stream = make_stream(n=1)
    w = SealWriter(_ident("alice"), stream[0])
    assert w.poll(10.0) == []  # nothing pending
    w.push(stream[0], 1.0)
    assert w.poll(1.4) == []
    (seal,) = w.poll(1.5)
    assert seal[3] == bs.PacketType.SEAL and w.pending == 0


def test_sealed_flk_file_round_trip(tmp_path):
    """A recorded stream sealed with seal_packets, written to .flk and read back, verifies strictly."""
    unsealed = [p for p in make_stream(n=70) if p[3] != bs.PacketType.SEAL]
    sealed = list(seal_packets(unsealed, _ident("alice")))
    assert [p for p in sealed if p[3] != bs.PacketType.SEAL] == unsealed
    path = tmp_path / "s.flk"
    bs.write_flk(path, sealed)
    assert strict(bs.iter_flk(path)) == sealed
    summary = []
    list(iter_verified(bs.iter_flk(path), trusted("alice"), summary=summary))
    assert summary[0].intact and summary[0].frames_verified == 70
    # End sits alone in the last span, the header and reference in the first
    seals = seal_positions(sealed)
    assert sealed[seals[0] - 1][3] == bs.PacketType.REFERENCE_CHUNK and sealed[-2][3] == bs.PacketType.END
    assert sealed[-3][3] == bs.PacketType.SEAL
    with pytest.raises(ValueError, match="does not name this identity"):
        list(seal_packets(unsealed, _ident("bob")))


def test_lost_control_packet_is_incomplete_but_an_altered_frame_is_mismatch():
    """Control packets travel in spans of their own, so their loss is not mistaken for tampering."""
    stream = list(seal_packets([p for p in make_stream(n=70) if p[3] != bs.PacketType.SEAL], _ident("alice")))
    ref_at = next(i for i, p in enumerate(stream) if p[3] == bs.PacketType.REFERENCE_CHUNK)
    _, _, spans = feed_all(stream[:ref_at] + stream[ref_at + 1 :])
    assert [s.status for s in spans if not s.verified] == [SpanStatus.INCOMPLETE]
    end_at = len(stream) - 2
    _, _, spans = feed_all(stream[:end_at] + stream[end_at + 1 :])
    assert [s.status for s in spans if not s.verified] == [SpanStatus.INCOMPLETE]
    f = frame_positions(stream)[33]
    _, _, spans = feed_all(stream[:f] + [_flip(stream[f])] + stream[f + 1 :])
    assert [s.status for s in spans if not s.verified] == [SpanStatus.MISMATCH]


# ---------------------------------------------------------------- tampering: each case is caught


def _flip(p: bytes, pos: int = -1) -> bytes:
    b = bytearray(p)
    b[pos] ^= 0x01
    return bytes(b)


def test_tampered_payload_byte_is_detected():
    stream = make_stream()
    f = frame_positions(stream)[20]
    bad = stream[:f] + [_flip(stream[f])] + stream[f + 1 :]
    with pytest.raises(VerificationError, match="failed verification"):
        strict(bad)
    _, _, spans = feed_all(bad)
    assert [s.status for s in spans if not s.verified] == [SpanStatus.MISMATCH]
    assert next(s for s in spans if not s.verified).covers(f)


def test_tampered_header_invalidates_every_seal():
    stream = make_stream()
    hdr = bs.SessionHeader.parse(stream[0])
    forged = bytes(dataclasses.replace(hdr, key_interval=7))
    v, verdicts, _ = feed_all([forged] + stream[1:])
    assert v.summary().seals_accepted == 0
    assert all(vd.seal is SealStatus.BAD_SIGNATURE for vd in verdicts if vd.kind is bs.PacketType.SEAL)
    with pytest.raises(VerificationError, match="seal bad signature"):
        strict([forged] + stream[1:])


def test_reordered_packets_are_detected():
    stream = make_stream()
    f = frame_positions(stream)[30]
    bad = list(stream)
    bad[f], bad[f + 1] = bad[f + 1], bad[f]
    with pytest.raises(VerificationError):
        strict(bad)
    _, _, spans = feed_all(bad)
    assert SpanStatus.MISMATCH in [s.status for s in spans]
    # reordering whole spans (packets and their seals) is caught too
    s = seal_positions(stream)
    a, b, c = s[2], s[3], s[4]
    swapped = stream[: a + 1] + stream[b + 1 : c + 1] + stream[a + 1 : b + 1] + stream[c + 1 :]
    with pytest.raises(VerificationError):
        strict(swapped)


def test_replayed_seal_is_rejected_and_replayed_packets_fail():
    stream = make_stream()
    s = seal_positions(stream)
    bad = stream[: s[4] + 1] + [stream[s[2]]] + stream[s[4] + 1 :]
    v, verdicts, spans = feed_all(bad)
    assert verdicts[s[4] + 1].seal is SealStatus.REPLAYED
    assert all(sp.verified for sp in spans)  # the replay changed nothing else
    with pytest.raises(VerificationError, match="seal replayed"):
        strict(bad)
    # an old span replayed with its own (authentic) seal
    old_span = stream[s[2] + 1 : s[3] + 1]
    bad = stream[: s[5] + 1] + old_span + stream[s[5] + 1 :]
    v, verdicts, spans = feed_all(bad)
    assert v.summary().seals_rejected == 1
    assert not all(sp.verified for sp in spans)
    with pytest.raises(VerificationError):
        strict(bad)


def test_dropped_and_spliced_from_another_session_is_detected():
    ours = make_stream()
    theirs = make_stream(session=b"\x22" * 16)
    s = seal_positions(ours)
    # drop one span of ours, splice in the same span of another session (same signer!)
    spliced = ours[: s[3] + 1] + theirs[s[3] + 1 : s[4] + 1] + ours[s[4] + 1 :]
    _, verdicts, spans = feed_all(spliced)
    assert verdicts[s[4]].seal is SealStatus.BAD_SIGNATURE  # their seal is bound to their header
    with pytest.raises(VerificationError):
        strict(spliced)
    # dropping a whole span (packets and seal) breaks the chain of the next one
    dropped = ours[: s[3] + 1] + ours[s[4] + 1 :]
    _, _, spans = feed_all(dropped)
    assert [sp.status for sp in spans if not sp.verified] == [SpanStatus.INCOMPLETE]
    with pytest.raises(VerificationError):
        strict(dropped)
    # their header in the middle of our stream
    with pytest.raises(VerificationError, match="foreign session header"):
        strict(ours[:20] + [theirs[0]] + ours[20:])


def test_truncated_streams_are_detected():
    stream = make_stream()
    s = seal_positions(stream)
    with pytest.raises(VerificationError, match="not covered by a seal"):
        strict(stream[:-1])  # final seal missing
    with pytest.raises(VerificationError, match="no sealed End"):
        strict(stream[: s[3] + 1])  # cut exactly after a seal
    with pytest.raises(VerificationError, match="not covered by a seal"):
        strict(stream[: s[3] + 5])
    with pytest.raises(VerificationError, match="does not start with its session header"):
        strict(stream[1:])
    _, _, spans = feed_all(stream[: s[3] + 5])
    assert spans[-1].status is SpanStatus.UNSEALED and spans[-1].packets == 4


@pytest.mark.parametrize(
    "make",
    [
        lambda st_: b"garbage that is not a packet",
        lambda st_: bytes(bs.NoFace(seq=bs.PredictedFrame.parse(st_[frame_positions(st_)[10]]).seq)),
        lambda st_: st_[frame_positions(st_)[10]],  # a duplicate frame
        lambda st_: bytes(bs.End(0, 0)),
    ],
)
def test_injected_packet_is_detected(make):
    stream = make_stream()
    f = frame_positions(stream)[10]
    bad = stream[: f + 1] + [make(stream)] + stream[f + 1 :]
    with pytest.raises(VerificationError):
        strict(bad)
    _, _, spans = feed_all(bad)
    assert [s.status for s in spans if not s.verified] == [SpanStatus.MISMATCH]


def test_forged_seal_is_rejected():
    stream = make_stream()
    hdr_digest = hashlib.sha256(stream[0]).digest()
    s = seal_positions(stream)
    real = bs.Seal.parse(stream[s[2]])
    msg = seal_message(hdr_digest, real.covered_through_seq, real.chain_hash)
    forged = bytes(bs.Seal(real.covered_through_seq, real.chain_hash, _ident("mallory").sign(msg)))
    bad = stream[: s[2]] + [forged] + stream[s[2] + 1 :]
    _, verdicts, _ = feed_all(bad)
    assert verdicts[s[2]].seal is SealStatus.BAD_SIGNATURE
    with pytest.raises(VerificationError, match="seal bad signature"):
        strict(bad)


def test_untrusted_revoked_and_unsigned_streams_are_refused_without_insecure():
    stream = make_stream()
    with pytest.raises(VerificationError, match=f"sender key {_ident('alice').fingerprint} is not trusted"):
        strict(stream, TrustStore())
    revoked = TrustStore(keys=(_ident("alice").public,), revoked=frozenset({_ident("alice").fingerprint}))
    with pytest.raises(VerificationError, match="is revoked"):
        strict(stream, revoked)
    unsigned = make_stream(signed=False)
    with pytest.raises(VerificationError, match="not signed"):
        strict(unsigned)
    v = StreamVerifier(trusted("alice"))
    with pytest.raises(VerificationError, match="not signed"):
        v.feed(unsigned[0])
    with pytest.raises(VerificationError, match="not signed"):  # stays refused
        v.feed(unsigned[1])
    # --insecure: accepted, but flagged; a signed stream's seals must still verify
    assert strict(unsigned, insecure=True) == unsigned
    assert strict(stream, TrustStore(), insecure=True) == stream
    v, _, _ = feed_all(stream, TrustStore(), insecure=True)
    assert not v.summary().trusted and v.summary().signed and not v.summary().intact
    f = frame_positions(stream)[3]
    with pytest.raises(VerificationError):
        strict(stream[:f] + [_flip(stream[f])] + stream[f + 1 :], TrustStore(), insecure=True)


def test_max_age_refuses_old_sessions_deterministically():
    stream = make_stream(n=5, created_us=1_000_000_000)
    v = StreamVerifier(trusted("alice"), max_age=60)
    v.feed(stream[0], now=1_000 + 59)  # 59 s old: fine
    v = StreamVerifier(trusted("alice"), max_age=60)
    with pytest.raises(VerificationError, match="started 61 s ago"):
        v.feed(stream[0], now=1_000 + 61)


# ---------------------------------------------------------------- a lossy live link


def _decode_lossy(stream, keep):
    """Feed the kept packets to a verifier and a decoder; returns spans and decoded frames."""
    v = StreamVerifier(trusted("alice"))
    dec = StreamDecoder()
    spans, frames = [], []
    for i, p in enumerate(stream):
        if not keep(i, p):
            continue
        vd = v.feed(p)
        spans.extend(vd.spans)
        try:
            kf = dec.feed(p)
        except InvalidPacket:
            kf = None
        if kf is not None:
            frames.append(kf)
    return v, spans, frames


@pytest.mark.parametrize("seed", range(4))
def test_random_loss_is_reported_per_span_and_never_as_tampering(seed):
    stream = make_stream(n=300, live=True)
    rnd = random.Random(seed)
    lost = {i for i in range(len(stream)) if i > 3 and rnd.random() < 0.2}
    v, spans, frames = _decode_lossy(stream, lambda i, p: i not in lost)
    s = v.summary()
    assert s.seals_rejected == 0 and s.spans_mismatch == 0
    assert {sp.status for sp in spans} <= {SpanStatus.VERIFIED, SpanStatus.INCOMPLETE}
    # every span whose packets all arrived verifies (chain re-synchronised on each seal)
    seals = seal_positions(stream)
    for a, b in itertools.pairwise(seals):
        if not any(a <= i <= b for i in lost):
            assert s.spans_verified > 0
    complete = sum(1 for a, b in itertools.pairwise(seals) if not any(a <= i <= b for i in lost))
    assert s.spans_verified >= complete
    # the decoder recovers at the next key frame it receives: never more than one key interval of LOST
    # frames after a lost key frame is found again
    run = longest = 0
    for kf in frames:
        run = run + 1 if kf.kind is FrameKind.LOST else 0
        longest = max(longest, run)
    key_lost = sum(1 for i in lost if stream[i][3] == bs.PacketType.KEY_FRAME)
    assert longest < KEY_INTERVAL * (1 + key_lost)


def test_twenty_percent_loss_recovers_within_one_key_interval():
    """With key frames arriving, every LOST run ends within one key interval."""
    stream = make_stream(n=600, live=True)
    rnd = random.Random(7)
    keys = {i for i, p in enumerate(stream) if p[3] == bs.PacketType.KEY_FRAME}
    lost = {i for i in range(4, len(stream)) if i not in keys and rnd.random() < 0.2}
    _, spans, frames = _decode_lossy(stream, lambda i, p: i not in lost)
    assert len(lost) > 100
    run = longest = 0
    for kf in frames:
        run = run + 1 if kf.kind is FrameKind.LOST else 0
        longest = max(longest, run)
    assert 0 < longest < KEY_INTERVAL
    assert any(s.verified for s in spans) and not any(s.status is SpanStatus.MISMATCH for s in spans)


@pytest.mark.parametrize("join", [0, 1, 2, 7, 40, 77])
def test_late_joiner_never_reports_tampering(join):
    """Joining anywhere: what cannot be checked is INCOMPLETE, never MISMATCH, and no seal is rejected."""
    stream = make_stream(n=120, live=True)
    v = StreamVerifier(trusted("alice"))
    spans = [sp for p in stream[join:] for sp in v.feed(p).spans] + list(v.finish())
    statuses = [sp.status for sp in spans]
    assert SpanStatus.MISMATCH not in statuses and v.summary().seals_rejected == 0
    if join == 0:  # from the sync seal on: everything verifies
        assert all(sp.verified for sp in spans)
    elif join == 1:  # joined at the header, missed the sync seal: only the first span is unproven
        assert statuses[0] is SpanStatus.INCOMPLETE and all(sp.verified for sp in spans[1:])
    else:  # no header ever arrives: nothing is verifiable
        assert v.header is None and v.summary().frames_verified == 0


@pytest.mark.parametrize("miss", [3, 9])
def test_late_joiner_verifies_after_the_senders_resync(miss):
    stream = make_stream(n=120, live=True, resync_at=60)
    f60 = frame_positions(stream)[60]
    # joins `miss` packets before the resync (mid-span, without the header)
    start = f60 - 3 - miss
    v = StreamVerifier(trusted("alice"))
    spans = [sp for p in stream[start:] for sp in v.feed(p).spans] + list(v.finish())
    assert v.header_bytes == stream[1]
    assert spans[0].status is SpanStatus.INCOMPLETE and spans[0].reason == "received before the session header"
    assert all(sp.verified for sp in spans[1:])  # the header span and everything after it
    assert v.summary().end_verified and v.summary().seals_rejected == 0


# ---------------------------------------------------------------- fuzz: no crash, no hang


@functools.cache
def _fuzz_stream():
    return tuple(make_stream(n=20))


@FUZZ
@given(
    st.lists(
        st.one_of(
            st.tuples(st.just("keep"), st.integers(0, 10_000)),
            st.tuples(st.just("flip"), st.integers(0, 10_000), st.integers(0, 10_000), st.integers(1, 255)),
            st.tuples(st.just("drop"), st.integers(0, 10_000)),
            st.tuples(st.just("dup"), st.integers(0, 10_000), st.integers(0, 10_000)),
            st.tuples(st.just("raw"), st.binary(max_size=140)),
        ),
        max_size=12,
    )
)
def test_fuzz_verifier_on_mutated_streams(ops):
    stream = list(_fuzz_stream())
    for op in ops:
        i = op[1] % len(stream) if op[0] != "raw" else 0
        if op[0] == "flip" and stream[i]:
            b = bytearray(stream[i])
            b[op[2] % len(b)] ^= op[3]
            stream[i] = bytes(b)
        elif op[0] == "drop" and len(stream) > 1:
            del stream[i]
        elif op[0] == "dup":
            stream.insert(op[2] % len(stream), stream[i])
        elif op[0] == "raw":
            stream.insert(len(op[1]) % len(stream), op[1])
    intact = stream == list(_fuzz_stream())
    try:
        assert strict(stream) == stream
        accepted = True
    except VerificationError:
        accepted = False
    assert accepted == intact  # nothing but the signed bytes, in the signed order, is ever accepted


@FUZZ
@given(st.lists(st.binary(max_size=200), max_size=12))
def test_fuzz_verifier_on_random_packets(packets):
    v = StreamVerifier(trusted("alice"), insecure=True)
    for p in packets:
        v.feed(p)
    v.finish()
    assert v.summary().packets == len(packets)
