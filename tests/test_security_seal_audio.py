"""Seals over sessions with sound (bitstream version 3): AUDIO packets are covered like frames.

Tampering with, reordering, injecting or removing audio is caught exactly as for keypoints;
audio lost on a link (also the last packet of a span, thanks to the seals'
``audio_through_seq``) is reported as loss, never as tampering.
"""

from __future__ import annotations

import functools
import itertools
import random

import numpy as np
import pytest
from _support import FUZZ, PROPERTY
from facelink import bitstream as bs
from facelink.audio import AudioPacketizer, decode_audio, tone_speech
from facelink.codec import QUALITY_PRESETS, StreamDecoder, StreamEncoder
from facelink.errors import VerificationError
from facelink.security import (
    SealStatus,
    SealWriter,
    SpanStatus,
    StreamVerifier,
    iter_verified,
    seal_message,
    seal_packets,
    signer_extension,
    span_hash,
)
from hypothesis import given
from hypothesis import strategies as st
from test_security_seal import _ident, _scene, feed_all, seal_positions, strict, trusted

FPS = 30
AUDIO = bs.PacketType.AUDIO


@functools.cache
def _sound(seconds: float) -> tuple[bytes, ...]:
    p = AudioPacketizer(8, 20)
    return tuple(p.push(tone_speech(seconds).samples, 0) + p.flush()), p.params


def _unsealed(n: int = 60, session: bytes = b"\x22" * 16):
    """Header, chunks, then frames and AUDIO packets interleaved by stream time, End."""
    ref, motion = _scene(max(n, 1))
    audio, params = _sound(n / FPS)
    enc = StreamEncoder(
        ref, QUALITY_PRESETS["medium"], width=64, height=64, fps=FPS, session_id=session,
        created_us=1_700_000_000_000_000, extensions=(signer_extension(_ident("alice")),), audio=params,
    )  # fmt: skip
    out = enc.start()
    a = 0
    frame_s = params.frame_samples
    for i in range(n):
        # an audio packet goes out once its last sample has been captured
        while a < len(audio) and (bs.parse_packet(audio[a]).timestamp + frame_s) / 48000 <= i / FPS:
            out.append(audio[a])
            a += 1
        out.append(enc.encode(i, i / FPS, motion[i])[0])
    out += list(audio[a:])
    out.append(enc.end())
    return out


@functools.cache
def av_file(n: int = 60) -> tuple[bytes, ...]:
    """A sealed recording (seal_packets layout)."""
    return tuple(seal_packets(_unsealed(n), _ident("alice")))


@functools.cache
def av_live(n: int = 90) -> tuple[bytes, ...]:
    """A live layout: sync seal, header span, reference span, frames + audio sealed every 0.5 s."""
    pk = _unsealed(n)
    w = SealWriter(_ident("alice"), pk[0], start=0.0)
    out = [w.seal(0.0)] + w.push_isolated([pk[0]], 0.0) + w.push_isolated([pk[1]], 0.0)
    t = 0.0
    for p in pk[2:-1]:
        q = bs.parse_packet(p)
        t = max(t, q.timestamp / 48000 if q.TYPE is AUDIO else 0.0)
        out += w.push(p, t)
    out += w.push_isolated([pk[-1]], t)
    return tuple(out)


def audio_positions(stream) -> list[int]:
    return [i for i, p in enumerate(stream) if p[3] == AUDIO]


def _spans_of(stream):
    """(first, last) index ranges of the packets of each span (between seals)."""
    seals = seal_positions(stream)
    return [(a + 1, b - 1) for a, b in itertools.pairwise([-1] + seals)]


# ---------------------------------------------------------------- intact


@pytest.mark.parametrize("make", [av_file, av_live])
def test_intact_av_stream_verifies_and_every_packet_is_version_3(make):
    stream = list(make())
    assert all(p[2] == 3 for p in stream)
    assert len(audio_positions(stream)) >= 100
    if make is av_file:  # a recording starts with its header; a live stream with the sync seal
        assert strict(stream) == stream
    v, verdicts, spans = feed_all(stream)
    assert v.summary().intact and all(sp.verified for sp in spans)
    # seals carry the seq of the last audio packet before them
    last = 0xFFFF
    for p in stream:
        q = bs.parse_packet(p)
        if q.TYPE is AUDIO:
            last = q.seq
        elif q.TYPE is bs.PacketType.SEAL:
            assert q.version == 3 and q.audio_through_seq == last


def test_audio_rides_in_frame_spans_not_control_spans():
    stream = av_file()
    for first, last in _spans_of(stream):
        kinds = {stream[i][3] for i in range(first, last + 1)}
        if AUDIO in kinds:
            assert kinds <= {AUDIO, bs.PacketType.KEY_FRAME, bs.PacketType.PREDICTED_FRAME, bs.PacketType.NO_FACE}


def test_v3_seal_signs_audio_through_seq():
    stream = av_file()
    s = seal_positions(stream)[3]
    seal = bs.parse_packet(stream[s])
    span = [stream[i] for i in range(seal_positions(stream)[2] + 1, s)]
    h = span_hash(b"\x22" * 16, seal.counter, span)
    import hashlib

    digest = hashlib.sha256(stream[0]).digest()
    msg = seal_message(digest, seal.covered_through_seq, seal.counter, seal.time_ms, h, seal.audio_through_seq)
    assert msg.startswith(b"facelink/seal/v3\x00")
    _ident("alice").public  # noqa: B018 - the key exists
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    Ed25519PublicKey.from_public_bytes(_ident("alice").public.ed25519).verify(seal.signature, msg)


def test_decoding_a_v3_stream_gives_frames_and_sound():
    stream = av_file()
    dec = StreamDecoder()
    frames = [f for f in (dec.feed(p) for p in strict(list(stream))) if f is not None]
    assert len(frames) == 60 and all(f.pose is not None for f in frames)
    pcm, stats = decode_audio(stream)
    assert stats.decoded == len(audio_positions(stream)) and stats.concealed == 0
    assert abs(pcm.size / 48000 - 60 / FPS) < 0.05
    assert float(np.sqrt(np.mean(pcm**2))) > 0.02  # speech-like level, not silence


# ---------------------------------------------------------------- tampering


def _flip(p: bytes, pos: int = -1) -> bytes:
    b = bytearray(p)
    b[pos] ^= 0x01
    return bytes(b)


def test_tampered_audio_payload_is_mismatch():
    stream = list(av_file())
    i = audio_positions(stream)[40]
    stream[i] = _flip(stream[i])
    with pytest.raises(VerificationError, match="mismatch"):
        strict(stream)
    v, _, spans = feed_all(stream)
    bad = [sp for sp in spans if not sp.verified]
    assert len(bad) == 1 and bad[0].status is SpanStatus.MISMATCH and bad[0].covers(i)
    assert v.summary().seals_rejected == 1


def test_tampered_audio_timestamp_is_mismatch():
    stream = list(av_file())
    i = audio_positions(stream)[40]
    q = bs.parse_packet(stream[i])
    stream[i] = bytes(bs.AudioPacket(q.seq, q.timestamp + 960, q.payload))  # a valid packet, shifted 20 ms
    _, _, spans = feed_all(stream)
    assert [sp.status for sp in spans if not sp.verified] == [SpanStatus.MISMATCH]


@pytest.mark.parametrize("make", [av_file, av_live])
def test_reordered_audio_is_mismatch(make):
    stream = list(make())
    a = audio_positions(stream)
    # two consecutive audio packets of one span swapped
    i, j = next((x, y) for x, y in itertools.pairwise(a) if not any(x < s < y for s in seal_positions(stream)))
    stream[i], stream[j] = stream[j], stream[i]
    v, _, spans = feed_all(stream)
    bad = [sp for sp in spans if not sp.verified]
    assert [sp.status for sp in bad] == [SpanStatus.MISMATCH] and v.summary().seals_rejected == 1
    if make is av_file:
        with pytest.raises(VerificationError, match="mismatch"):
            strict(stream)


def test_audio_moved_across_a_frame_is_mismatch():
    stream = list(av_file())
    i = audio_positions(stream)[30]
    j = i + 1
    assert stream[j][3] in (bs.PacketType.KEY_FRAME, bs.PacketType.PREDICTED_FRAME)
    stream[i], stream[j] = stream[j], stream[i]
    _, _, spans = feed_all(stream)
    assert [sp.status for sp in spans if not sp.verified] == [SpanStatus.MISMATCH]


def test_injected_audio_packet_is_mismatch():
    stream = list(av_file())
    i = audio_positions(stream)[20]
    q = bs.parse_packet(stream[i])
    # a forged copy with the next seq number inserted right after it: looks like a valid packet
    stream.insert(i + 1, bytes(bs.AudioPacket(q.seq, q.timestamp, q.payload)))
    _, _, spans = feed_all(stream)
    assert SpanStatus.MISMATCH in [sp.status for sp in spans]
    assert not any(sp.status is SpanStatus.INCOMPLETE for sp in spans)


def test_removing_all_audio_fails_strict_verification():
    stream = [p for p in av_file() if p[3] != AUDIO]
    with pytest.raises(VerificationError):
        strict(stream)
    _, _, spans = feed_all(stream)
    assert any(sp.status is SpanStatus.INCOMPLETE for sp in spans)  # the signed audio_through_seq shows it went missing
    assert not any(sp.verified and sp.frames for sp in spans)


def test_altered_audio_through_seq_does_not_verify():
    stream = list(av_file())
    s = seal_positions(stream)[4]
    q = bs.parse_packet(stream[s])
    stream[s] = bytes(bs.Seal(q.covered_through_seq, q.counter, q.time_ms, q.signature, (q.audio_through_seq + 1) & 0xFFFF, version=3))
    v, verdicts, spans = feed_all(stream)
    assert verdicts[s].seal is not SealStatus.ACCEPTED
    assert not all(sp.verified for sp in spans)


def test_v2_seal_in_a_v3_session_does_not_verify():
    stream = list(av_file())
    s = seal_positions(stream)[4]
    q = bs.parse_packet(stream[s])
    stream[s] = bytes(bs.Seal(q.covered_through_seq, q.counter, q.time_ms, q.signature, version=2))
    _, verdicts, _ = feed_all(stream)
    assert verdicts[s].seal is SealStatus.BAD_SIGNATURE


# ---------------------------------------------------------------- loss is loss


@pytest.mark.parametrize("which", ["middle", "last_of_span", "first_of_span"])
def test_lost_audio_packet_is_incomplete_not_mismatch(which):
    stream = list(av_live())
    spans = _spans_of(stream)
    first, last = next((a, b) for a, b in spans if sum(stream[i][3] == AUDIO for i in range(a, b + 1)) >= 5)
    audio = [i for i in range(first, last + 1) if stream[i][3] == AUDIO]
    victim = {"middle": audio[len(audio) // 2], "last_of_span": audio[-1], "first_of_span": audio[0]}[which]
    kept = stream[:victim] + stream[victim + 1 :]
    v, verdicts, got = feed_all(kept)
    assert v.summary().spans_mismatch == 0 and v.summary().seals_rejected == 0
    bad = [sp for sp in got if not sp.verified]
    assert len(bad) == 1 and bad[0].status is SpanStatus.INCOMPLETE
    assert "1 audio packet(s) missing" in bad[0].reason


@functools.cache
def _long_live():
    return av_live(150)


@PROPERTY
@given(st.sets(st.integers(3, 600), max_size=40))
def test_pure_loss_of_audio_and_frames_is_never_tampering(lost):
    stream = _long_live()
    kept = [i for i in range(len(stream)) if i not in lost]
    v = StreamVerifier(trusted("alice"))
    verified_at = {i for i in kept if any(sp.verified for sp in v.feed(stream[i]).spans)}
    v.finish()
    assert v.summary().spans_mismatch == 0 and v.summary().seals_rejected == 0
    if 1 in lost or 2 in lost:
        return
    for a, b in itertools.pairwise(seal_positions(stream)):
        if a >= 2 and not lost & set(range(a + 1, b + 1)):
            assert b in verified_at


def test_five_percent_random_loss_on_a_live_av_link():
    stream = _long_live()
    rnd = random.Random(5)
    lost = {i for i in range(4, len(stream)) if rnd.random() < 0.05}
    kept = [p for i, p in enumerate(stream) if i not in lost]
    v, _, spans = feed_all(kept)
    s = v.summary()
    assert s.spans_mismatch == 0 and s.seals_rejected == 0 and s.spans_verified > 0


# ---------------------------------------------------------------- fuzz


@functools.cache
def _fuzz_stream():
    return tuple(av_file(12))


@FUZZ
@given(
    st.lists(
        st.one_of(
            st.tuples(st.just("flip"), st.integers(0, 10_000), st.integers(0, 10_000), st.integers(1, 255)),
            st.tuples(st.just("drop"), st.integers(0, 10_000)),
            st.tuples(st.just("swap"), st.integers(0, 10_000), st.integers(0, 10_000)),
            st.tuples(st.just("dup"), st.integers(0, 10_000), st.integers(0, 10_000)),
        ),
        min_size=1,
        max_size=6,
    )
)
def test_fuzz_verifier_on_mutated_av_streams(ops):
    stream = list(_fuzz_stream())
    for op in ops:
        i = op[1] % len(stream)
        if op[0] == "flip":
            b = bytearray(stream[i])
            b[op[2] % len(b)] ^= op[3]
            stream[i] = bytes(b)
        elif op[0] == "drop" and len(stream) > 1:
            del stream[i]
        elif op[0] == "swap":
            j = op[2] % len(stream)
            stream[i], stream[j] = stream[j], stream[i]
        elif op[0] == "dup":
            stream.insert(op[2] % len(stream), stream[i])
    intact = stream == list(_fuzz_stream())
    try:
        accepted = strict(stream) == stream
    except VerificationError:
        accepted = False
    assert accepted == intact
    decode_audio(stream)  # never raises on a mangled stream


# ---------------------------------------------------------------- send -> receive: A/V sync through a lossy sealed link


def test_clap_clip_through_a_lossy_sealed_link_stays_in_sync(tmp_path):
    """Sender: frames captured from t = 100 s (wall clock), audio from 0.25 s earlier; both on
    the stream clock (stream time 0 = frame 0). Link: live seal layout, 5 % loss (in
    order, as over ZeroMQ). Receiver: verifier + keypoint decoder + audio depacketizer, frames
    written at their decoded times (as the renderer does) and audio at its decoded times.
    The clap clip's flash (frame 60) and click (2.0 s) come out within one frame."""
    from facelink.audio import RATE, AudioDepacketizer, make_clap_clip, measure_av_offset, stream_samples
    from facelink.io import VideoWriter

    fps, n, t0 = 30, 120, 100.0
    clip = make_clap_clip(fps=fps, seconds=n / fps, flashes=(2.0,))
    ref, motion = _scene(n)
    pack = AudioPacketizer(8, 20)
    enc = StreamEncoder(
        ref, QUALITY_PRESETS["medium"], width=64, height=64, fps=fps, session_id=b"\x33" * 16,
        created_us=1_700_000_000_000_000, extensions=(signer_extension(_ident("alice")),), audio=pack.params,
    )  # fmt: skip
    w = SealWriter(_ident("alice"), bytes(enc.header), start=t0)
    header, *chunks = enc.start()
    wire = [w.seal(t0)] + w.push_isolated([header], t0) + w.push_isolated(chunks, t0)
    lead = np.zeros(RATE // 4, np.float32)  # the microphone started 0.25 s before the camera
    mic = np.concatenate([lead, clip.audio])
    block = 960 * 2
    fed = 0
    for i in range(n):
        t = t0 + i / fps
        wire += w.push(enc.encode(i, t, motion[i])[0], t)
        # the microphone delivers what it captured up to now, stamped with its capture time
        while (fed + block) / RATE <= 0.25 + i / fps:
            start = stream_samples(t0 - 0.25 + fed / RATE - enc.stream_start)
            for p in pack.push(mic[fed : fed + block], start):
                wire += w.push(p, t)
            fed += block
    for p in pack.push(mic[fed:], stream_samples(t0 - 0.25 + fed / RATE - enc.stream_start)) + pack.flush():
        wire += w.push(p, t0 + n / fps)
    wire += w.push_isolated([enc.end()], t0 + n / fps)

    rnd = random.Random(2)
    kept = [p for i, p in enumerate(wire) if i < 4 or rnd.random() >= 0.05]
    arrival = range(len(kept))  # ZeroMQ over TCP keeps order (reordering is tampering to the seals)
    v = StreamVerifier(trusted("alice"))
    dec = StreamDecoder()
    dep = None
    path = tmp_path / "link.mp4"
    with VideoWriter(str(path), 64, 48, fps, audio_rate=RATE) as out:
        for i in arrival:
            p = kept[i]
            v.feed(p)
            if p[3] == AUDIO:
                dep = dep or AudioDepacketizer.for_header(v.header, depth=3)
                for c in dep.feed(p):
                    if c.end > 0:
                        out.write_audio(c.pcm[max(0, -c.start) :], max(c.start, 0) / RATE)
                continue
            f = dec.feed(p)
            if f is not None and f.time == f.time:
                out.write(clip.frames[f.index], f.time)
        for c in dep.flush():
            out.write_audio(c.pcm[max(0, -c.start) :], max(c.start, 0) / RATE)
    assert v.summary().spans_mismatch == 0 and v.summary().spans_incomplete > 0
    assert dep.stats.concealed > 0
    off = measure_av_offset(str(path))
    assert off.flash == pytest.approx(2.0, abs=1e-3)
    assert abs(off.frames) <= 1.0 and abs(off.seconds) < 0.002, off.as_dict()
