"""facelink.audio: PCM conversion, Opus with loss concealment, the jitter buffer, packetizing on
the stream clock, audio tracks of files, MP4 muxing in sync, the clap clip and demo speech."""

from __future__ import annotations

import random
from fractions import Fraction

import numpy as np
import pytest
from _support import PROPERTY
from hypothesis import given
from hypothesis import strategies as st

from facelink import bitstream as bs
from facelink.audio import (
    RATE,
    AudioDepacketizer,
    AudioPacketizer,
    JitterBuffer,
    OpusDecoder,
    OpusEncoder,
    Resampler,
    assemble,
    decode_audio,
    espeak_available,
    espeak_speech,
    find_click,
    find_flashes,
    make_clap_clip,
    measure_av_offset,
    read_audio_track,
    resample,
    speech_track,
    to_float32,
    to_mono,
    tone_speech,
    write_clap_clip,
)
from facelink.errors import AudioError, InputError
from facelink.io import VideoReader, VideoWriter


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if x.size else 0.0


def _tone(freq: float, seconds: float, rate: int = RATE, amp: float = 0.3) -> np.ndarray:
    return (amp * np.sin(2 * np.pi * freq * np.arange(int(seconds * rate)) / rate)).astype(np.float32)


def _dominant(x: np.ndarray, rate: int = RATE) -> float:
    spec = np.abs(np.fft.rfft(x * np.hanning(x.size)))
    return float(np.argmax(spec) * rate / x.size)


# ---------------------------------------------------------------- PCM


def test_to_float32_and_to_mono():
    assert to_float32(np.array([-32768, 0, 16384], np.int16)).tolist() == [-1.0, 0.0, 0.5]
    assert to_float32(np.array([0, 128, 255], np.uint8)).tolist() == pytest.approx([-1.0, 0.0, 0.9921875])
    assert to_float32(np.array([np.nan, np.inf, 0.25])).tolist() == [0.0, 0.0, 0.25]
    st_ = np.stack([np.full(4, 0.5), np.full(4, -0.1)], axis=1)
    assert to_mono(st_).tolist() == pytest.approx([0.2] * 4)
    assert to_mono(st_.T, channels_last=False).tolist() == pytest.approx([0.2] * 4)
    with pytest.raises(TypeError, match="PCM samples must be"):
        to_float32(np.array(["a"]))
    with pytest.raises(ValueError, match="PCM must be"):
        to_mono(np.zeros((2, 2, 2)))


@pytest.mark.parametrize("rate", [8000, 16000, 22050, 44100, 48000, 96000])
def test_resample_keeps_timing_and_pitch(rate):
    x = np.zeros(rate, np.float32)
    k = rate // 2
    x[k : k + rate // 200] = 0.8  # a 5 ms burst at 0.5 s
    y = resample(x, rate)
    assert abs(y.size - RATE) <= 2
    assert abs(int(np.argmax(np.abs(y) > 0.3)) - RATE // 2) <= 8  # < 0.2 ms
    tone = resample(_tone(440, 1.0, rate), rate)
    assert abs(_dominant(tone) - 440) < 2


def test_resample_stereo_and_int16():
    left = (_tone(300, 0.5, 44100) * 32767).astype(np.int16)
    pcm = np.stack([left, left], axis=1)
    y = resample(pcm, 44100)
    assert y.dtype == np.float32 and abs(y.size - 24000) <= 2
    assert abs(_rms(y) - 0.3 / np.sqrt(2)) < 0.01


def test_streaming_resampler_matches_length_in_any_chunks():
    x = _tone(500, 2.0, 44100)
    r = Resampler(44100)
    parts = [r.push(x[i : i + 1234]) for i in range(0, x.size, 1234)] + [r.flush()]
    y = np.concatenate(parts)
    assert abs(y.size - 2 * RATE) <= 2
    assert np.allclose(y, resample(x, 44100), atol=1e-4)
    with pytest.raises(ValueError, match="sample rate 10 Hz out of range"):
        Resampler(10)
    with pytest.raises(TypeError, match="sample rate must be an int"):
        Resampler(44100.0)


# ---------------------------------------------------------------- Opus


def test_opus_encoder_validates():
    for kbps in (5, 25, True, "8"):
        with pytest.raises(ValueError, match="audio bit rate must be 6..24"):
            OpusEncoder(kbps)
    with pytest.raises(ValueError, match="Opus frame duration must be one of"):
        OpusEncoder(8, frame_ms=30)
    with pytest.raises(ValueError, match="application must be"):
        OpusEncoder(8, application="music")
    with pytest.raises(TypeError, match="params must be AudioParams"):
        OpusDecoder("opus")


@pytest.mark.parametrize("kbps", [6, 8, 16, 24])
def test_opus_bit_rate_follows_the_target(kbps):
    enc = OpusEncoder(kbps, 20)
    speech = tone_speech(6.0).samples
    packets = enc.encode(speech) + enc.flush()
    assert len(packets) == 6 * 50 + 1  # one per 20 ms, plus the lookahead tail
    rate = 8 * sum(map(len, packets)) / 6.0 / 1000
    assert 0.5 * kbps <= rate <= 1.15 * kbps, rate
    assert enc.params.bitrate == kbps * 1000 and enc.params.pre_skip == 312 and enc.params.frame_samples == 960


@pytest.mark.parametrize("frame_ms", [20, 40, 60])
def test_opus_round_trip_is_aligned_by_pre_skip(frame_ms):
    x = _tone(440, 1.0)
    x[: RATE // 4] = 0
    enc = OpusEncoder(24, frame_ms)
    dec = OpusDecoder(enc.params)
    out = np.concatenate([dec.decode(p) for p in enc.encode(x) + enc.flush()])
    y = out[enc.params.pre_skip : enc.params.pre_skip + x.size]
    assert abs(_dominant(y[RATE // 2 :]) - 440) < 3
    assert 0.5 < _rms(y[RATE // 2 :]) / _rms(x[RATE // 2 :]) < 1.5
    # the onset lands where it was (to a millisecond)
    assert abs(int(np.argmax(np.abs(y) > 0.1)) - RATE // 4) < 48


def test_opus_loss_concealment_continues_then_fades():
    x = _tone(220, 1.0, amp=0.4)
    enc = OpusEncoder(16, 20)
    packets = enc.encode(x) + enc.flush()
    dec = OpusDecoder(enc.params)
    assert not np.any(dec.decode(None))  # nothing to conceal from yet: silence
    dec = OpusDecoder(enc.params)
    got = [dec.decode(p) for p in packets[:20]]
    before = _rms(got[-1])
    lost = [dec.decode(None) for _ in range(8)]
    assert all(c.size == 960 for c in lost)
    assert _rms(lost[0]) > 0.5 * before  # concealment continues the sound ...
    assert abs(_dominant(np.concatenate(lost[:2])) - 220) < 30  # ... at its pitch
    assert _rms(lost[-1]) < 0.5 * _rms(lost[0])  # ... and fades over a long loss
    assert dec.concealed == 8 and dec.decoded == 20
    after = dec.decode(packets[28])
    assert after.size == 960 and _rms(after) > 0.1


def test_opus_decoder_conceals_corrupt_or_misfit_payloads():
    enc = OpusEncoder(8, 20)
    packets = enc.encode(_tone(300, 0.2)) + enc.flush()
    dec = OpusDecoder(enc.params)
    for p in packets[:5]:
        dec.decode(p)
    assert dec.decode(b"\xff\xff\xff\xff\xff").size == 960
    enc60 = OpusEncoder(8, 60)
    p60 = (enc60.encode(_tone(300, 0.2)) + enc60.flush())[0]
    assert dec.decode(p60).size == 960  # a 60 ms packet in a 20 ms session: refused, concealed
    assert dec.corrupt == 2


# ---------------------------------------------------------------- jitter buffer


def _push_all(jb: JitterBuffer, order, ts_of=lambda s: 960 * s, payload=lambda s: bytes([s & 0xFF or 1])):
    out = []
    for s in order:
        out += jb.push(s & 0xFFFF, ts_of(s) & 0xFFFFFFFF, payload(s))
    return out + jb.flush()


def test_jitter_buffer_in_order_and_depth_zero():
    jb = JitterBuffer(960, depth=0)
    slots = jb.push(5, 100, b"a")
    assert [(s.seq, s.timestamp, s.payload) for s in slots] == [(5, 100, b"a")]
    slots = jb.push(7, 100 + 2 * 960, b"c")
    assert [(s.seq, s.timestamp, s.lost) for s in slots] == [(6, 1060, True), (7, 2020, False)]
    assert jb.lost == 1 and jb.released == 2


def test_jitter_buffer_reorders_within_depth_and_declares_loss_after_it():
    jb = JitterBuffer(960, depth=3)
    out = []
    for s in [0, 2, 1, 3, 5, 4, 6, 7]:
        out += jb.push(s, 960 * s, b"x")
    # held only while a gap is open: packets go out as soon as everything before them has
    assert [s.seq for s in out] == list(range(8)) and not any(s.lost for s in out)
    assert jb.flush() == [] and jb.buffered == 0
    jb = JitterBuffer(960, depth=3)
    out = []
    for s in [0, 1, 3, 4, 5]:  # 2 never comes
        out += jb.push(s, 960 * s, b"x")
    assert [(s.seq, s.lost) for s in out] == [(0, False), (1, False), (2, True), (3, False), (4, False), (5, False)]
    assert out[2].timestamp == 1920  # a lost slot keeps the clock


def test_jitter_buffer_drops_duplicates_and_late_packets():
    jb = JitterBuffer(960, depth=1)
    out = _push_all(jb, [0, 1, 1, 2, 0, 3])
    assert [s.seq for s in out] == [0, 1, 2, 3]
    assert jb.duplicates + jb.late == 2


def test_jitter_buffer_unwraps_seq_and_timestamp():
    start = 65530
    jb = JitterBuffer(960, depth=2)
    out = _push_all(jb, range(start, start + 12), ts_of=lambda s: (1 << 32) - 960 * 3 + 960 * (s - start))
    seqs = [s.seq for s in out]
    assert seqs == list(range(start, start + 12))
    ts = [s.timestamp for s in out]
    assert all(b - a == 960 for a, b in zip(ts, ts[1:]))  # no jump at the u32 wrap


def test_jitter_buffer_resyncs_after_a_long_gap():
    jb = JitterBuffer(960, depth=1, max_gap=10)
    out = _push_all(jb, [0, 1, 2, 500, 501, 502])
    assert [s.seq for s in out] == [0, 1, 2, 500, 501, 502]
    assert jb.resyncs == 1 and jb.lost == 0


def test_jitter_buffer_validates():
    with pytest.raises(ValueError, match="depth must be an int >= 0"):
        JitterBuffer(960, depth=-1)
    with pytest.raises(ValueError, match="need depth < max_gap < capacity"):
        JitterBuffer(960, depth=60, max_gap=50)
    with pytest.raises(ValueError, match="payload must be non-empty bytes"):
        JitterBuffer(960).push(0, 0, b"")


@PROPERTY
@given(st.integers(0, 4), st.integers(0, 65535), st.randoms(use_true_random=False), st.floats(0, 0.3))
def test_jitter_buffer_property(depth, first, rnd, loss):
    """Reordering within ``depth`` never costs a packet; losses are exactly the dropped packets;
    slots come out contiguous and in order, whatever the wrap-around (gaps below max_gap)."""
    n = 45
    seqs = [first + i for i in range(n)]
    dropped = {s for s in seqs[1:-1] if rnd.random() < loss}
    kept = [s for s in seqs if s not in dropped]
    # reorder so that no packet arrives after one `depth` or more sequence numbers later
    order = sorted(kept, key=lambda s: s + rnd.uniform(0, depth))
    jb = JitterBuffer(960, depth=depth)
    out = _push_all(jb, order)
    # (unwrapped numbers count from the first arrival: compare them on the wire's 16 bits)
    assert [s.seq & 0xFFFF for s in out] == [s & 0xFFFF for s in seqs]
    assert all(b.seq - a.seq == 1 for a, b in zip(out, out[1:]))
    assert {s.seq & 0xFFFF for s in out if s.lost} == {s & 0xFFFF for s in dropped}
    assert [s.timestamp for s in out] == [960 * s for s in seqs]


@PROPERTY
@given(st.lists(st.tuples(st.integers(0, 0xFFFF), st.integers(0, 0xFFFFFFFF)), max_size=80), st.integers(0, 5))
def test_jitter_buffer_never_crashes_or_grows_on_hostile_input(packets, depth):
    jb = JitterBuffer(960, depth=depth, max_gap=20, capacity=40)
    released = 0
    for seq, ts in packets:
        released += len(jb.push(seq, ts, b"\x08"))
        assert jb.buffered <= 40
    released += len(jb.flush())
    assert jb.buffered == 0 and released >= jb.released


# ---------------------------------------------------------------- packetizer / depacketizer


def _packets(pk):
    return [bs.parse_packet(p) for p in pk]


def test_packetizer_numbers_and_stamps_packets_on_the_stream_clock():
    p = AudioPacketizer(8, 20)
    pk = _packets(p.push(_tone(300, 0.5), 4800) + p.push(_tone(300, 0.5)) + p.flush())
    assert all(q.version == 3 and q.TYPE is bs.PacketType.AUDIO for q in pk)
    assert [q.seq for q in pk] == list(range(len(pk)))
    assert [q.timestamp for q in pk] == [4800 + 960 * i for i in range(len(pk))]
    assert p.params.pre_skip == 312


def test_packetizer_absorbs_drift_fills_holes_and_jumps():
    p = AudioPacketizer(8, 20)
    pk = _packets(p.push(_tone(300, 0.2), 0))  # 9600 samples: 10 packets
    pk += _packets(p.push(_tone(300, 0.2), 9600 + 100))  # 2 ms late: drift, absorbed
    assert p.fills == 0
    pk += _packets(p.push(_tone(300, 0.2), 2 * 9600 + 100 + 4800))  # 100 ms hole: filled with silence
    assert p.fills == 1
    pk += _packets(p.push(_tone(300, 0.2), 48000 * 10))  # 9.5 s later: a jump
    pk += _packets(p.flush())
    assert p.jumps == 1
    ts = [q.timestamp for q in pk]
    jump = next(i for i in range(1, len(ts)) if ts[i] - ts[i - 1] != 960)
    assert all(b - a == 960 for a, b in zip(ts[:jump], ts[1:jump]))
    assert ts[jump] == 48000 * 10 and [q.seq for q in pk] == list(range(len(pk)))


def test_packetizer_drops_audio_before_stream_time_zero_and_overlaps():
    p = AudioPacketizer(8, 20)
    pk = _packets(p.push(_tone(300, 0.1), -2400) + p.push(_tone(300, 0.1), 0) + p.flush())
    # 50 ms from -50 ms: only 2400 samples at 0.., then the second block overlaps them by 2400
    assert pk[0].timestamp == 0
    total = 2400 + 4800 - 2400
    assert len(pk) == -(-total // 960) + 1
    with pytest.raises(TypeError, match="start must be an int"):
        p.push(_tone(300, 0.1), 0.5)


def test_packetizer_blocks_before_stream_zero_do_not_shift_the_audio():
    """A microphone that starts 0.25 s before frame 0, delivering 40 ms blocks: the sample
    captured at stream time 0 is the first one sent, at timestamp 0 (no drift absorbed)."""
    x = np.arange(RATE, dtype=np.float32) / RATE  # a ramp: each sample says when it was taken
    p = AudioPacketizer(8, 20)
    first = None
    for i in range(0, x.size, 1920):
        pk = p.push(x[i : i + 1920], i - 12000)
        if pk and first is None:
            first = _packets(pk)[0]
    assert first.timestamp == 0 and p.fills == 0 and p.jumps == 0
    assert p._buf_start is not None and p._buf_start + p._buf.size == x.size - 12000


@pytest.mark.parametrize("start_s", [0.0, 0.013, 1.5])
def test_click_lands_on_its_stream_time_through_opus(start_s):
    clip = make_clap_clip(seconds=3.0, flashes=(1.0, 2.0))
    p = AudioPacketizer(8, 20)
    pk = p.push(clip.audio, round(start_s * RATE)) + p.flush()
    dep = AudioDepacketizer(p.params, depth=0)
    chunks = [c for q in pk for c in dep.feed(q)] + dep.flush()
    y = assemble(chunks)
    for flash in (1.0, 2.0):
        t = find_click(y, after=flash + start_s - 0.1)
        assert abs(t - (flash + start_s)) < 0.001  # within a millisecond


def test_five_percent_loss_and_reordering_keep_sync_and_length():
    """60 s of speech with a click every 5 s; 5 % random loss and local reordering on the link:
    every click stays on its time (no drift), the track keeps its length, losses are concealed."""
    seconds = 60
    speech = 0.3 * tone_speech(seconds).samples
    clicks = make_clap_clip(seconds=seconds, flashes=tuple(range(5, seconds, 5))).audio
    p = AudioPacketizer(8, 20)
    pk = p.push(speech + clicks, 0) + p.flush()
    rnd = random.Random(3)
    kept = [q for q in pk if rnd.random() >= 0.05]
    order = sorted(range(len(kept)), key=lambda i: i + rnd.uniform(0, 2.5))  # displaced by up to 2
    dep = AudioDepacketizer(p.params, depth=3)
    chunks = [c for i in order for c in dep.feed(kept[i])] + dep.flush()
    y = assemble(chunks, 0, seconds * RATE)
    # every slot is played once: decoded, or concealed (lost, or arrived after its slot was played)
    assert pk[-1] in kept and dep.stats.decoded + dep.stats.concealed == len(pk)
    assert dep.stats.decoded == len(kept) - dep.stats.late and dep.stats.late <= 3
    worst = 0.0
    for t in range(5, seconds, 5):
        idx = next(i for i, q in enumerate(pk) if bs.parse_packet(q).timestamp > t * RATE) - 1
        if pk[idx] not in kept:
            continue  # that click's packet was lost: concealed, not measurable
        got = find_click(y[(t - 1) * RATE : (t + 1) * RATE], start=t - 1, after=t - 0.02)
        worst = max(worst, abs(got - t))
    assert worst < 0.005  # codec smearing of the onset after a concealed packet; a slip would be >= 20 ms


def test_hostile_seq_and_timestamps_stay_bounded(tmp_path):
    p = AudioPacketizer(8, 20)
    pk = _packets(p.push(_tone(300, 0.5), 0) + p.flush())
    # a packet claiming to be 24 h later, another with a far sequence number
    pk[5] = bs.AudioPacket(pk[5].seq, 0xFFFFFF00, pk[5].payload)
    pk[9] = bs.AudioPacket(40000, pk[9].timestamp, pk[9].payload)
    header = bs.SessionHeader(
        bytes(16), 0, 64, 64, 30, 1, 30, 0, bytes(8), (1.0, 1.0, 1.0, 1.0), bytes(6), bytes(6),
        extensions=(p.params.extension(),), version=3,
    )
    pcm, stats = decode_audio([bytes(header)] + [bytes(q) for q in pk])
    assert pcm.size <= (len(pk) * 960 + RATE) and stats.concealed <= 60
    jb = JitterBuffer(960, depth=2, max_gap=50)
    out = _push_all(jb, [0, 1, 30000, 30001, 30002, 2])
    assert sum(s.lost for s in out) <= 50
    with VideoWriter(str(tmp_path / "lead.mp4"), 32, 32, 25, audio_rate=RATE) as w:
        w.write(np.zeros((32, 32, 3), np.uint8), 0.0)
        w.write_audio(np.ones(100, np.float32) * 0.1, 3600.0)  # an hour ahead of the video: dropped
        w.write_audio(np.ones(100, np.float32) * 0.1, 5.0)  # a 5 s hole: silence
        assert w.audio_dropped == 1 and w.audio_samples >= 5 * RATE - 1024


def test_depacketizer_counts_junk_and_decode_audio_needs_audio():
    p = AudioPacketizer(8, 20)
    dep = AudioDepacketizer(p.params)
    assert dep.feed(b"garbage") == [] and dep.feed(bytes(bs.End(1, 2))) == []
    assert dep.stats.refused == 2
    header_v2 = bs.SessionHeader(bytes(16), 0, 64, 64, 30, 1, 30, 0, bytes(8), (1.0, 1.0, 1.0, 1.0), bytes(6), bytes(6))
    assert AudioDepacketizer.for_header(header_v2) is None
    assert decode_audio([bytes(header_v2)]) is None
    assert decode_audio([b"", b"xx", b"FL\x03\x08"]) is None


# ---------------------------------------------------------------- files: reading and muxing


def _write_av(path, *, rate=44100, channels=1, seconds=1.0, codec="aac", fmt="fltp", video=True):
    import av

    with av.open(str(path), "w") as c:
        vs = c.add_stream("libx264", rate=25) if video else None
        if vs is not None:
            vs.width, vs.height, vs.pix_fmt = 32, 32, "yuv420p"
        a = c.add_stream(codec, rate=rate)
        a.layout = "stereo" if channels == 2 else "mono"
        n = int(seconds * rate)
        t = np.arange(n) / rate
        sig = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
        planes = np.stack([sig] * channels)
        if vs is not None:
            for i in range(int(seconds * 25)):
                f = av.VideoFrame.from_ndarray(np.zeros((32, 32, 3), np.uint8), format="rgb24")
                f.pts = i
                for pk in vs.encode(f):
                    c.mux(pk)
        fs = a.codec_context.frame_size or 1024
        for i in range(0, n, fs):
            block = planes[:, i : i + fs]
            if fmt == "s16":
                frame = av.AudioFrame.from_ndarray((block.T.reshape(1, -1) * 32767).astype(np.int16), format="s16", layout=a.layout.name)
            else:
                frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(block), format="fltp", layout=a.layout.name)
            frame.sample_rate = rate
            frame.pts = i
            for pk in a.encode(frame):
                c.mux(pk)
        for s in ([vs] if vs else []) + [a]:
            for pk in s.encode():
                c.mux(pk)


@pytest.mark.parametrize(("rate", "channels"), [(44100, 1), (44100, 2), (8000, 1), (22050, 2), (48000, 1)])
def test_read_audio_track_any_rate_and_layout(tmp_path, rate, channels):
    path = tmp_path / "in.mp4"
    _write_av(path, rate=rate, channels=channels)
    track = read_audio_track(str(path))
    assert track is not None and track.source_rate == rate and track.source_channels == channels
    assert track.codec == "aac" and abs(track.seconds - 1.0) < 0.05 and abs(track.start) < 0.05
    mid = track.samples[RATE // 4 : 3 * RATE // 4]
    assert abs(_dominant(mid) - 440) < 3 and 0.15 < _rms(mid) < 0.26


def test_read_audio_track_wav(tmp_path):
    import wave

    path = tmp_path / "in.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes((np.stack([_tone(330, 0.5, 16000)] * 2, 1) * 32767).astype("<i2").tobytes())
    track = read_audio_track(str(path))
    assert track.codec == "pcm_s16le" and abs(track.seconds - 0.5) < 0.01
    assert abs(_dominant(track.samples) - 330) < 3


def test_read_audio_track_without_audio_and_bad_files(tmp_path):
    silent = tmp_path / "video_only.mp4"
    with VideoWriter(str(silent), 32, 32, 25) as w:
        for i in range(5):
            w.write(np.zeros((32, 32, 3), np.uint8), i / 25)
    assert read_audio_track(str(silent)) is None
    with pytest.raises(AudioError, match="no such file"):
        read_audio_track(str(tmp_path / "missing.mp4"))
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\x00\x01garbage" * 100)
    with pytest.raises(AudioError, match="cannot open"):
        read_audio_track(str(junk))


def test_corrupt_audio_track_is_an_audio_error_and_the_video_still_reads(tmp_path):
    import av

    path = tmp_path / "bad_audio.mkv"
    with av.open(str(path), "w") as c:
        vs = c.add_stream("libx264", rate=25)
        vs.width, vs.height, vs.pix_fmt = 32, 32, "yuv420p"
        a = c.add_stream("aac", rate=48000)
        a.layout = "mono"
        for i in range(10):
            f = av.VideoFrame.from_ndarray(np.full((32, 32, 3), 100, np.uint8), format="rgb24")
            f.pts = i
            for pk in vs.encode(f):
                c.mux(pk)
        for i in range(10):  # AAC packets of random bytes
            pk = av.Packet(bytes(random.Random(i).randrange(256) for _ in range(60)))
            pk.stream, pk.pts, pk.dts = a, i * 1024, i * 1024
            pk.time_base = Fraction(1, 48000)
            c.mux(pk)
        for pk in vs.encode():
            c.mux(pk)
    with pytest.raises(AudioError, match="audio track .*encoding without sound"):
        read_audio_track(str(path))
    with VideoReader(str(path)) as r:
        assert sum(1 for _ in r) == 10
    assert issubclass(AudioError, InputError)


@pytest.mark.parametrize("codec", ["aac", "opus"])
def test_clap_clip_through_the_mp4_muxer_is_in_sync(tmp_path, codec):
    clip = make_clap_clip(fps=30, seconds=3.0, flashes=(1.0,))
    path = tmp_path / f"clap_{codec}.mp4"
    with VideoWriter(str(path), 64, 48, clip.fps, audio_rate=RATE, audio_codec=codec) as w:
        for img, t in zip(clip.frames, clip.times):
            w.write(img, t)
        # audio written in two blocks around a hole: the hole becomes silence, nothing slips
        w.write_audio(clip.audio[: RATE // 2], 0.0)
        w.write_audio(clip.audio[RATE:], 1.0)
    off = measure_av_offset(str(path))
    assert off.flash == pytest.approx(1.0) and abs(off.seconds) < 0.001 and abs(off.frames) < 0.05


def test_clap_clip_encode_decode_through_the_stream_with_loss_is_in_sync(tmp_path):
    """The clap clip's sound through Opus packets (5 % loss) and back, muxed with its frames."""
    clip = make_clap_clip(fps=25, seconds=4.0, flashes=(2.0,))
    p = AudioPacketizer(8, 20)
    pk = p.push(clip.audio, 0) + p.flush()
    rnd = random.Random(11)
    click_packet = RATE * 2 // 960
    kept = [q for i, q in enumerate(pk) if i in (click_packet, click_packet + 1) or rnd.random() >= 0.05]
    dep = AudioDepacketizer(p.params, depth=3)
    path = tmp_path / "clap_link.mp4"
    with VideoWriter(str(path), 64, 48, clip.fps, audio_rate=RATE) as w:
        for img, t in zip(clip.frames, clip.times):
            w.write(img, t)
        for c in [c for q in kept for c in dep.feed(q)] + dep.flush():
            if c.end > 0:
                w.write_audio(c.pcm[max(0, -c.start) :], max(c.start, 0) / RATE)
    off = measure_av_offset(str(path))
    assert abs(off.frames) <= 1.0 and abs(off.seconds) < 0.002


def test_writer_audio_validation(tmp_path):
    with pytest.raises(ValueError, match="audio_rate must be"):
        VideoWriter(str(tmp_path / "a.mp4"), 32, 32, audio_rate=100)
    with pytest.raises(ValueError, match="audio_codec must be one of"):
        VideoWriter(str(tmp_path / "a.mp4"), 32, 32, audio_rate=48000, audio_codec="mp3")
    with VideoWriter(str(tmp_path / "b.mp4"), 32, 32) as w:
        w.write(np.zeros((32, 32, 3), np.uint8), 0.0)
        with pytest.raises(ValueError, match="no audio track"):
            w.write_audio(np.zeros(10, np.float32), 0.0)


def test_find_flash_and_click_edge_cases(tmp_path):
    dark = np.zeros((8, 8, 3), np.uint8)
    assert find_flashes([(dark, 0.0), (dark, 0.04)]) == []
    assert find_click(np.zeros(1000, np.float32)) is None
    with pytest.raises(ValueError, match="each flash must fall"):
        make_clap_clip(seconds=1.0, flashes=(2.0,))
    path = tmp_path / "noflash.mp4"
    with VideoWriter(str(path), 32, 32, 25, audio_rate=RATE) as w:
        for i in range(10):
            w.write(dark, i / 25)
        w.write_audio(np.zeros(4800, np.float32), 0.0)
    with pytest.raises(InputError, match="no flash"):
        measure_av_offset(str(path))
    clip_path = tmp_path / "clap.mp4"
    clip = write_clap_clip(str(clip_path), seconds=2.0, flashes=(1.0,))
    assert clip.flash_times == (1.0,) and read_audio_track(str(clip_path)) is not None


# ---------------------------------------------------------------- demo speech


def test_tone_speech_is_deterministic_and_speech_like():
    a, b = tone_speech(3.0), tone_speech(3.0)
    assert a.source == "tones" and np.array_equal(a.samples, b.samples) and a.seconds == 3.0
    x = a.samples
    frames = x[: x.size // 960 * 960].reshape(-1, 960)
    energy = np.sqrt(np.mean(frames**2, axis=1))
    voiced = energy > 0.02
    assert 0.4 < voiced.mean() < 0.95  # syllables and pauses
    assert np.abs(x).max() <= 0.31
    s = speech_track(seconds=2.0)
    assert s.source in ("espeak-ng", "tones") and s.samples.size > RATE


@pytest.mark.skipif(not espeak_available(), reason="espeak-ng is not installed (apt-get install espeak-ng)")
def test_espeak_speech():
    s = espeak_speech("Hello world.")
    assert s.source == "espeak-ng" and 0.3 < s.seconds < 5 and _rms(s.samples) > 0.01
    with pytest.raises(ValueError, match="text must be"):
        espeak_speech("")


# ---------------------------------------------------------------- the codec writes version 3 only with sound


def test_stream_encoder_with_audio_is_version_3_and_without_stays_version_2():
    """(Region references need version 3 too: the silent session here sends none.)"""
    from facelink.codec import QUALITY_PRESETS, StreamDecoder, StreamEncoder
    from test_codec import _motion, _reference

    ref = _reference(size=(64, 64))
    motion = _motion(ref, n=3)
    params = AudioPacketizer(8, 20).params
    plain = StreamEncoder(ref, QUALITY_PRESETS["medium"].with_(region_bytes=0), width=64, height=64, fps=30, session_id=bytes(16), created_us=1)
    sound = StreamEncoder(ref, QUALITY_PRESETS["medium"], width=64, height=64, fps=30, session_id=bytes(16), created_us=1, audio=params)
    assert plain.version == 2 and plain.header.audio is None and plain.stream_start is None
    assert sound.version == 3 and sound.header.audio == params
    assert dict(sound.header.extensions)[bs.AUDIO_TAG] == bytes(params)
    pk = sound.start() + [sound.encode(i, 5.0 + i / 30, motion[i])[0] for i in range(3)] + [sound.encode(3, 5.1, None)[0], sound.end()]
    assert {p[2] for p in pk} == {3} and sound.stream_start == 5.0
    # the same frames as version 2, apart from the version byte
    pk2 = plain.start() + [plain.encode(i, 5.0 + i / 30, motion[i])[0] for i in range(3)]
    assert [p[3:] for p in pk[len(pk) - 5 : len(pk) - 2]] == [p[3:] for p in pk2[-3:]]
    dec = StreamDecoder()
    frames = [f for f in map(dec.feed, pk) if f is not None]
    assert [f.index for f in frames] == [0, 1, 2, 3] and frames[0].time == 0.0
    with pytest.raises(TypeError, match="audio must be AudioParams"):
        StreamEncoder(ref, QUALITY_PRESETS["medium"], width=64, height=64, fps=30, audio="opus")


def test_track_cursor_hands_out_each_sample_once_in_time_order():
    from facelink.audio import RATE, AudioTrack, TrackCursor

    track = AudioTrack(np.arange(RATE, dtype=np.float32), 0.5, RATE, 1, "pcm")
    c = TrackCursor(track)
    a, ta = c.until(0.4)  # before the track starts
    b, tb = c.until(0.75)
    d, td = c.until(0.75)
    e, te = c.until(float("inf"))
    assert a.size == 0 and ta == 0.5 and d.size == 0
    assert tb == 0.5 and b.size == RATE // 4 and te == 0.75 and e[0] == RATE // 4
    assert b.size + e.size == RATE


def test_speaker_plays_in_order_and_refuses_bad_devices():
    import time

    from facelink.audio import RATE, Speaker
    from facelink.errors import AudioError

    with Speaker("null:") as s:
        for _ in range(10):
            s.play(np.full(960, 0.1, np.float32))
        s.play(np.zeros(0, np.float32))
        deadline = time.monotonic() + 5
        while s.played < 9600 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert s.played == 9600 and s.error is None and s.dropped == 0
    with pytest.raises(AudioError, match="a speaker is FORMAT:DEVICE"):
        Speaker("loudspeaker")
    with pytest.raises(AudioError, match="a speaker is FORMAT:DEVICE"):
        Speaker("alsa:")
    assert RATE == 48000


def test_microphone_refuses_bad_devices():
    from facelink.audio import Microphone
    from facelink.errors import AudioError

    with pytest.raises(AudioError, match="FORMAT:DEVICE"):
        Microphone("mic")
    with pytest.raises(AudioError, match="has no audio stream|cannot open"):
        Microphone("lavfi:testsrc=size=8x8")  # a video generator: no sound
