"""Seals and span hashes: intact streams verify; every kind of tampering is caught; loss is tolerated; replays are refused."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import itertools
import random
import struct

import pytest
from _support import FUZZ, PROPERTY
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
    seal_message,
    seal_packets,
    signer_extension,
    span_hash,
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
    t0=0.0,
) -> list[bytes]:
    """A sealed synthetic session, laid out as the transport and seal_packets() do.

    Header, reference chunks and End each travel in a span of their own; frames are
    sealed every ``interval`` s of stream (the writer's clock is the stream time, from 0 at
    ``created_us``; ``t0`` shifts it, as if the first frame came ``t0`` s into the session).
    ``live`` starts with the transport's sync seal; ``resync_at=i`` re-syncs before frame i
    (seal, header, seal), as the sender does when a receiver (re)connects.
    """
    signer = signer or _ident("alice")
    ref, motion = _scene(max(n, 1))
    exts = (signer_extension(signer),) if signed else ()
    enc = StreamEncoder(
        ref, QUALITY_PRESETS["medium"].with_(key_interval=KEY_INTERVAL, region_bytes=0), width=64, height=64, fps=FPS,
        session_id=session, created_us=created_us, extensions=exts,
    )  # fmt: skip
    if not signed:
        return enc.start() + [enc.encode(i, i / FPS, motion[i])[0] for i in range(n)] + [enc.end()]
    w = SealWriter(signer, bytes(enc.header), interval=interval, start=0.0)
    out = [w.seal(t0)] if live else []
    header, *chunks = enc.start()
    out += w.push_isolated([header], t0)
    out += w.push_isolated(chunks, t0)
    for i in range(n):
        if i == resync_at:
            out += ([] if w.pending else [w.seal()]) + w.push_isolated([bytes(enc.header)], t0 + i / FPS)
        out += w.push(enc.encode(i, i / FPS, motion[i])[0], t0 + i / FPS)
    out += w.push_isolated([enc.end()], t0 + max(n - 1, 0) / FPS)  # End is stamped with the last frame's time
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
    header, sid = stream[0], b"\x11" * 16
    digest = hashlib.sha256(header).digest()
    seals = seal_positions(stream)
    assert [bs.Seal.parse(stream[i]).counter for i in seals] == list(range(len(seals)))
    # span 0 is the header alone, sealed before any frame
    first = bs.Seal.parse(stream[seals[0]])
    assert seals[0] == 1 and (first.covered_through_seq, first.counter, first.time_ms) == (0xFFFF, 0, 0)
    root = hashlib.sha256(b"facelink/chain/v2\x00" + sid + b"\x00\x00\x00\x00").digest()
    assert root == chain_root(sid, 0)
    h = hashlib.sha256(root + struct.pack("<I", len(header)) + header).digest()
    assert h == chain_step(root, header) == span_hash(sid, 0, [header])
    msg = b"facelink/seal/v2\x00" + digest + b"\xff\xff" + bytes(4) + bytes(4) + h
    assert msg == seal_message(digest, 0xFFFF, 0, 0, h)
    assert _ident("alice").public.verify(first.signature, msg)
    # span 2: frames 0..14 (0.5 s at 30 fps); the seal is stamped with the last frame's time
    third = bs.Seal.parse(stream[seals[2]])
    frames = stream[seals[1] + 1 : seals[2]]
    assert len(frames) == 15 and (third.covered_through_seq, third.counter, third.time_ms) == (14, 2, 467)
    msg = b"facelink/seal/v2\x00" + digest + struct.pack("<HII", 14, 2, 467) + span_hash(sid, 2, frames)
    assert _ident("alice").public.verify(third.signature, msg)
    assert not _ident("alice").public.verify(third.signature, seal_message(digest, 14, 2, 467, span_hash(sid, 1, frames)))
    # seals are compact: no chain hash on the wire
    assert {len(stream[i]) for i in seals} <= {72, 73, 74}


def test_seal_time_follows_the_writer_clock():
    stream = make_stream(n=1)
    w = SealWriter(_ident("alice"), stream[0])
    assert bs.Seal.parse(w.seal()).time_ms == 0  # no time given yet
    w.push(stream[0], 100.0)  # the first time given is created_us: start defaults to it
    assert bs.Seal.parse(w.seal(100.25)).time_ms == 250
    assert bs.Seal.parse(w.seal(100.1)).time_ms == 250  # never goes back
    w2 = SealWriter(_ident("alice"), stream[0], start=90.0)
    w2.push(stream[0], 100.0)
    seal = bs.Seal.parse(w2.seal())
    assert (seal.counter, seal.time_ms) == (0, 10_000)
    with pytest.raises(ValueError, match="start must be finite"):
        SealWriter(_ident("alice"), stream[0], start=float("nan"))


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
    assert sealed == make_stream(n=70)  # the same layout and times as a live sender's
    assert [p for p in sealed if p[3] != bs.PacketType.SEAL] == unsealed
    path = tmp_path / "s.flk"
    bs.write_flk(path, sealed)
    assert strict(bs.iter_flk(path)) == sealed
    summary = []
    list(iter_verified(bs.iter_flk(path), trusted("alice"), summary=summary))
    assert summary[0].intact and summary[0].frames_verified == 70
    # the header, the reference and End each sit alone in a span
    seals = seal_positions(sealed)
    assert seals[0] == 1 and {sealed[i][3] for i in range(2, seals[1])} == {bs.PacketType.REFERENCE_CHUNK}
    assert sealed[-2][3] == bs.PacketType.END and sealed[-3][3] == bs.PacketType.SEAL
    # seal times are stream times: the last frame (69) is at 2.3 s
    assert bs.Seal.parse(sealed[-3]).time_ms == 2300
    with pytest.raises(ValueError, match="does not name this identity"):
        list(seal_packets(unsealed, _ident("bob")))


def test_lost_control_packet_is_incomplete_but_an_altered_frame_is_mismatch():
    """Control packets travel in spans of their own, so their loss is not mistaken for tampering."""
    stream = make_stream(n=70)
    for kind in (bs.PacketType.SESSION_HEADER, bs.PacketType.REFERENCE_CHUNK, bs.PacketType.END):
        at = next(i for i, p in enumerate(stream) if p[3] == kind)
        _, _, spans = feed_all(stream[:at] + stream[at + 1 :])
        if kind is not bs.PacketType.SESSION_HEADER:  # (without the header nothing can be checked)
            assert [s.status for s in spans if not s.verified] == [SpanStatus.INCOMPLETE], kind
    f = frame_positions(stream)[33]
    _, _, spans = feed_all(stream[:f] + [_flip(stream[f])] + stream[f + 1 :])
    assert [s.status for s in spans if not s.verified] == [SpanStatus.MISMATCH]
    # an altered reference chunk is tampering, not loss
    at = next(i for i, p in enumerate(stream) if p[3] == bs.PacketType.REFERENCE_CHUNK)
    _, _, spans = feed_all(stream[:at] + [_flip(stream[at])] + stream[at + 1 :])
    assert [s.status for s in spans if not s.verified] == [SpanStatus.MISMATCH]
    # a reference in three chunks: one lost shows in the chunk indices
    chunk = bs.ReferenceChunk.parse(stream[at])
    parts = [bytes(bs.ReferenceChunk(chunk.digest_prefix, i, 3, chunk.data[i::3])) for i in range(3)]
    w = SealWriter(_ident("alice"), stream[0])
    three = w.push_isolated([stream[0]], 0.0) + w.push_isolated(parts, 0.0)
    three += w.push_isolated([bytes(bs.End(0xFFFF, 0))], 0.0)
    assert strict(three) == three
    for i in range(3):
        _, _, spans = feed_all([p for p in three if p != parts[i]])
        assert [(s.status, s.reason) for s in spans if not s.verified] == [(SpanStatus.INCOMPLETE, "reference chunks missing")]
    _, _, spans = feed_all([_flip(p) if p == parts[1] else p for p in three])
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
    with pytest.raises(VerificationError, match="packets 0-0 failed verification .mismatch"):
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
    # the same seal replayed in the middle of a span: ignored, the span still verifies
    mid = s[5] + 3
    v, verdicts, spans = feed_all(stream[:mid] + [stream[s[2]]] + stream[mid:])
    assert verdicts[mid].seal is SealStatus.REPLAYED and all(sp.verified for sp in spans)
    assert v.summary().seals_rejected == 1 and v.highest_counter == len(s) - 1
    # an old span replayed with its own (authentic) seal
    old_span = stream[s[2] + 1 : s[3] + 1]
    bad = stream[: s[5] + 1] + old_span + stream[s[5] + 1 :]
    v, verdicts, spans = feed_all(bad)
    assert verdicts[s[5] + len(old_span)].seal is SealStatus.REPLAYED
    # its packets land in the current span, whose seal then fails: frames went backwards
    assert [sp.status for sp in spans if not sp.verified] == [SpanStatus.MISMATCH]
    assert v.summary().seals_rejected == 2
    with pytest.raises(VerificationError):
        strict(bad)


def test_seal_counters_reject_replay_and_reordering():
    stream = make_stream()
    s = seal_positions(stream)
    # a seal sent again right after itself
    v, verdicts, spans = feed_all(stream[: s[3] + 1] + [stream[s[3]]] + stream[s[3] + 1 :])
    assert verdicts[s[3] + 1].seal is SealStatus.REPLAYED and all(sp.verified for sp in spans)
    # two whole spans (packets and seals) swapped: the later one verifies, but the counter
    # says a span is missing, and the earlier one's seal comes too late
    a, b, c = s[3], s[4], s[5]
    swapped = stream[: a + 1] + stream[b + 1 : c + 1] + stream[a + 1 : b + 1] + stream[c + 1 :]
    v, verdicts, spans = feed_all(swapped)
    assert verdicts[a + (c - b)].seal is SealStatus.ACCEPTED
    assert verdicts[c].seal is SealStatus.REPLAYED
    statuses = [sp.status for sp in spans if not sp.verified]
    assert statuses == [SpanStatus.INCOMPLETE, SpanStatus.MISMATCH]
    assert v.summary().seals_rejected == 2
    with pytest.raises(VerificationError):
        strict(swapped)
    # counter, covered_through_seq and time are signed: changed on the wire, the seal fails
    real = bs.Seal.parse(stream[s[4]])
    for change in ({"counter": real.counter + 1}, {"covered_through_seq": real.covered_through_seq - 1}, {"time_ms": real.time_ms + 1}):
        forged = stream[: s[4]] + [bytes(dataclasses.replace(real, **change))] + stream[s[4] + 1 :]
        _, verdicts, spans = feed_all(forged)
        assert verdicts[s[4]].seal is not SealStatus.ACCEPTED and not verdicts[s[4]].spans[0].verified
        with pytest.raises(VerificationError):
            strict(forged)
    # (a counter bumped by an attacker looks like a lost seal, so that span is INCOMPLETE rather than
    # MISMATCH: whoever can alter packets can also drop some; only VERIFIED is a guarantee)


def test_loss_makes_only_its_own_span_incomplete():
    stream = make_stream(n=120, live=True)
    s = seal_positions(stream)
    frames = frame_positions(stream)
    # a frame lost: its span is INCOMPLETE (with the gap counted), the next one verifies
    f = frames[40]
    k = next(i for i, x in enumerate(s) if x > f)  # the seal closing f's span
    v, verdicts, spans = feed_all(stream[:f] + stream[f + 1 :])
    bad = [sp for sp in spans if not sp.verified]
    assert [sp.status for sp in bad] == [SpanStatus.INCOMPLETE] and bad[0].missing_frames == 1
    assert "1 frame packet(s) missing" in bad[0].reason
    assert verdicts[s[k + 1] - 1].spans[0].verified  # the next span
    assert v.summary().seals_rejected == 0 and v.summary().end_verified
    # the last frame of a span lost: the seal's covered_through_seq shows it
    f = s[k] - 1
    _, _, spans = feed_all(stream[:f] + stream[f + 1 :])
    assert [(sp.status, sp.missing_frames) for sp in spans if not sp.verified] == [(SpanStatus.INCOMPLETE, 1)]
    # a seal lost: the packets before it cannot be checked, but the next span still verifies
    # (the verifier finds where it starts)
    v, verdicts, spans = feed_all(stream[: s[k]] + stream[s[k] + 1 :])
    bad = [sp for sp in spans if not sp.verified]
    assert [sp.status for sp in bad] == [SpanStatus.INCOMPLETE] and bad[0].frames == 15
    assert bad[0].first == s[k - 1] + 1 and bad[0].last == s[k] - 1
    assert v.summary().spans_verified == len(s) - 1 - 1 and v.summary().seals_rejected == 0
    # the seal before End and End itself lost: End's seal shows the seal gap (it is not tampering)
    end_at = len(stream) - 2
    v, _, spans = feed_all(stream[: end_at - 1] + stream[end_at + 1 :])
    assert [sp.status for sp in spans if not sp.verified] == [SpanStatus.INCOMPLETE]
    assert "1 seal(s) missing" in next(sp for sp in spans if not sp.verified).reason
    # a frame and the seal after it lost: both spans unverifiable, the one after verifies again
    f = frames[40]
    lossy = [p for i, p in enumerate(stream) if i not in (f, s[k])]
    v, _, spans = feed_all(lossy)
    assert [sp.status for sp in spans if not sp.verified] == [SpanStatus.INCOMPLETE]
    assert v.summary().spans_mismatch == 0 and v.summary().end_verified


def test_header_is_authenticated_by_its_own_span_after_loss():
    """Header repeats travel alone between two seals: a lossy link verifies them at the next seal."""
    stream = make_stream(n=120, live=True, resync_at=60)
    f60 = frame_positions(stream)[60]
    hdr_at = f60 - 2
    assert stream[hdr_at][3] == bs.PacketType.SESSION_HEADER and stream[hdr_at + 1][3] == bs.PacketType.SEAL
    # a receiver that saw nothing but lost packets before the repeat: everything before it is
    # unverifiable, the header's own span and all that follows verify
    start = frame_positions(stream)[50]
    lossy = [p for i, p in enumerate(stream[start:], start) if not (i < hdr_at - 1 and i % 3 == 0)]
    v = StreamVerifier(trusted("alice"))
    verdicts = [v.feed(p) for p in lossy]
    spans = [sp for vd in verdicts for sp in vd.spans]
    h = lossy.index(stream[hdr_at])
    header_span = verdicts[h + 1].spans
    assert [sp.status for sp in header_span] == [SpanStatus.VERIFIED] and header_span[0].covers(h)
    assert all(sp.status is SpanStatus.INCOMPLETE for sp in spans if sp.last < h)
    assert all(sp.verified for sp in spans if sp.first > h) and v.summary().end_verified
    # losing the repeated header itself costs only its (empty) span
    v, _, spans = feed_all(stream[:hdr_at] + stream[hdr_at + 1 :])
    assert [(sp.status, sp.packets) for sp in spans if not sp.verified] == [(SpanStatus.INCOMPLETE, 0)]
    # an altered header repeat is tampering
    forged = bytes(dataclasses.replace(bs.SessionHeader.parse(stream[hdr_at]), key_interval=7))
    v, verdicts, spans = feed_all(stream[:hdr_at] + [forged] + stream[hdr_at + 1 :])
    assert verdicts[hdr_at].note == "altered session header"
    assert [sp.status for sp in spans if not sp.verified] == [SpanStatus.MISMATCH]


def test_tampering_is_mismatch_even_on_a_lossy_link():
    stream = make_stream(n=300, live=True)
    frames = frame_positions(stream)
    seals = seal_positions(stream)
    lost = {frames[i] for i in (20, 21, 95, 200)}
    tampered = frames[150]
    lossy = [_flip(p) if i == tampered else p for i, p in enumerate(stream) if i not in lost]
    v, _, spans = feed_all(lossy)
    by_status = {st_: [sp for sp in spans if sp.status is st_] for st_ in SpanStatus}
    assert len(by_status[SpanStatus.INCOMPLETE]) == 3 and len(by_status[SpanStatus.MISMATCH]) == 1
    assert v.summary().spans_verified == len(seals) - 1 - 4  # (the sync seal closes no span)
    mismatch = by_status[SpanStatus.MISMATCH][0]
    assert mismatch.covers(lossy.index(_flip(stream[tampered]))) and mismatch.missing_frames == 0


def test_dropped_and_spliced_from_another_session_is_detected():
    ours = make_stream()
    theirs = make_stream(session=b"\x22" * 16)
    s = seal_positions(ours)
    # drop one span of ours, splice in the same span of another session (same signer!)
    spliced = ours[: s[3] + 1] + theirs[s[3] + 1 : s[4] + 1] + ours[s[4] + 1 :]
    _, verdicts, spans = feed_all(spliced)
    assert verdicts[s[4]].seal is SealStatus.BAD_SIGNATURE  # their seal is bound to their header and session
    assert [sp.status for sp in spans if not sp.verified] == [SpanStatus.MISMATCH]
    with pytest.raises(VerificationError):
        strict(spliced)
    # dropping a whole span (packets and seal): the next span verifies on its own, and its
    # (signed) counter shows that one span is missing
    dropped = ours[: s[3] + 1] + ours[s[4] + 1 :]
    _, verdicts, spans = feed_all(dropped)
    lost = [sp for sp in spans if not sp.verified]
    assert [sp.status for sp in lost] == [SpanStatus.INCOMPLETE] and lost[0].packets == 0
    assert verdicts[s[5] - (s[4] - s[3])].seal is SealStatus.ACCEPTED
    with pytest.raises(VerificationError, match=r"1 span\(s\) lost entirely"):
        strict(dropped)
    # a recording cut at its start: a header repeat cannot stand in for span 0
    with pytest.raises(VerificationError):
        strict(ours[:1] + ours[s[1] + 1 :])
    resynced = make_stream(resync_at=45)
    hdr_at = max(i for i, p in enumerate(resynced) if p[3] == bs.PacketType.SESSION_HEADER)
    assert strict(resynced) == resynced
    with pytest.raises(VerificationError, match=r"span\(s\) lost entirely"):
        strict(resynced[hdr_at:])
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


def test_frames_beyond_the_seal_are_tampering_even_with_loss():
    stream = make_stream()
    s = seal_positions(stream)
    frames = [f for f in frame_positions(stream) if s[3] < f < s[4]]
    last = bs.PredictedFrame.parse(stream[frames[-1]])
    future = bytes(bs.NoFace(seq=last.seq + 1))  # a frame the seal does not cover
    bad = stream[: frames[2]] + stream[frames[2] + 1 : s[4]] + [future] + stream[s[4] :]  # and one frame lost
    _, _, spans = feed_all(bad)
    assert [sp.status for sp in spans if not sp.verified] == [SpanStatus.MISMATCH]


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
    chain = span_hash(b"\x11" * 16, real.counter, stream[s[1] + 1 : s[2]])
    msg = seal_message(hdr_digest, real.covered_through_seq, real.counter, real.time_ms, chain)
    assert _ident("alice").public.verify(real.signature, msg)
    forged = bytes(dataclasses.replace(real, signature=_ident("mallory").sign(msg)))
    bad = stream[: s[2]] + [forged] + stream[s[2] + 1 :]
    _, verdicts, _ = feed_all(bad)
    assert verdicts[s[2]].seal is SealStatus.BAD_SIGNATURE
    with pytest.raises(VerificationError, match="failed verification .mismatch"):
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


def test_max_age_refuses_stale_seals_deterministically():
    stream = make_stream(n=5, created_us=1_000_000_000)  # created at t = 1000 s
    s0 = seal_positions(stream)[0]  # time_ms 0
    v = StreamVerifier(trusted("alice"), max_age=60)
    for p in stream[: s0 + 1]:
        v.feed(p, now=1_000 + 59)  # signed 59 s ago: fine
    assert v.summary().seals_accepted == 1
    v = StreamVerifier(trusted("alice"), max_age=60)
    v.feed(stream[0], now=1_000 + 61)  # the header alone proves nothing about freshness
    with pytest.raises(VerificationError, match="signed 61 s ago, longer ago than the allowed 60 s"):
        v.feed(stream[s0], now=1_000 + 61)
    with pytest.raises(VerificationError, match="signed 61 s ago"):  # stays refused
        v.feed(stream[s0 + 1], now=1_000 + 61)
    v = StreamVerifier(trusted("alice"), max_age=60)
    for p in stream:  # no clock given: no freshness check
        v.feed(p)
    assert v.summary().intact
    with pytest.raises(ValueError, match="max_age must be > 0"):
        StreamVerifier(trusted("alice"), max_age=0)


def test_whole_session_replay_is_refused_with_max_age_but_long_live_sessions_are_not():
    """Seals carry signed time: joining an hour-old session is fine, replaying a recording is not."""
    created = 1_700_000_000.0
    hour = 3600.0

    def feed(stream, delay, join=0):
        """Packets arrive ``delay`` s after the sender's clock said they were sent (as its seals tell)."""
        v = StreamVerifier(trusted("alice"), max_age=5)
        sent = created
        for p in stream[join:]:
            if p[3] == bs.PacketType.SEAL:
                sent = created + bs.Seal.parse(p).time_ms / 1000
            v.feed(p, now=sent + delay)
        return v

    # live, from the start: every seal is 50 ms old on arrival
    stream = make_stream(n=120, live=True, created_us=int(created * 1e6))
    assert feed(stream, 0.05).summary().intact
    # the whole recorded session sent again an hour later, byte for byte: refused at its first seal
    # (here the sync seal, checked as soon as the header arrives)
    with pytest.raises(VerificationError, match="signed 3600 s ago.*a replayed recording"):
        feed(stream, hour)
    # a session that started an hour ago, joined at a header repeat: its seals are fresh
    old = make_stream(n=120, live=True, created_us=int(created * 1e6), resync_at=60, t0=hour)
    join = frame_positions(old)[60] - 3
    assert old[join + 1][3] == bs.PacketType.SESSION_HEADER
    v = feed(old, 0.05, join=join)
    assert v.summary().seals_rejected == 0 and v.summary().end_verified and v.summary().frames_verified == 60
    assert bs.Seal.parse(old[-1]).time_ms == round(1000 * (hour + 119 / FPS))
    with pytest.raises(VerificationError, match="a replayed recording"):
        feed(old, 6.0, join=join)


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
    if join in (0, 1):  # from the sync seal or the header on (a header always starts a span): all verifies
        assert all(sp.verified for sp in spans) and v.summary().intact
        # the sync seal closes an empty span: it is checked once the header arrives
        assert v.summary().seals_accepted == len(seal_positions(stream)) - join
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


@functools.cache
def _lossy_stream():
    return tuple(make_stream(n=90, live=True, resync_at=45))


@PROPERTY
@given(st.sets(st.integers(3, 200), max_size=40), st.integers(0, 3))
def test_pure_loss_is_never_tampering_and_every_complete_span_verifies(lost, join):
    """Whatever is lost: no MISMATCH, no rejected seal, and a span whose packets and seal all arrived verifies."""
    stream = _lossy_stream()
    kept = [i for i in range(join, len(stream)) if i not in lost]
    v = StreamVerifier(trusted("alice"))
    verified_at = {i for i in kept if any(sp.verified for sp in v.feed(stream[i]).spans)}
    v.finish()
    assert v.summary().spans_mismatch == 0 and v.summary().seals_rejected == 0
    headers = [i for i in kept if stream[i][3] == bs.PacketType.SESSION_HEADER]
    if not headers:
        assert v.summary().spans_verified == 0
        return
    for a, b in itertools.pairwise(seal_positions(stream)):
        if a >= headers[0] - 1 and not lost & set(range(a + 1, b + 1)):  # (a header starts a span)
            assert b in verified_at


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
