"""Bitstream version 3 (audio): AUDIO packets, the audio extension, seals with audio_through_seq.

Golden fixtures with byte-exact round trips, exact errors for malformed packets, version
rules (AUDIO is unknown before version 3, tag 4 is unassigned before it), and fuzzing of
the new parser paths.
"""

from __future__ import annotations

import dataclasses
import io
import struct

import pytest
from _support import FUZZ, PROPERTY, golden
from hypothesis import given
from hypothesis import strategies as st

from facelink.bitstream import (
    AUDIO_TAG,
    AUDIO_VERSION,
    MAX_AUDIO_PAYLOAD,
    AudioPacket,
    AudioParams,
    KeyFrame,
    PacketType,
    Seal,
    SessionHeader,
    iter_flk,
    parse_packet,
    write_flk,
)
from facelink.errors import InvalidPacket
from test_bitstream_packets import HEADER, KEY_VALUES, _check_any_outcome, _patch

PARAMS = AudioParams(bitrate=8000, frame_samples=960, pre_skip=312)
HEADER_V3 = dataclasses.replace(HEADER, extensions=((0x01, b"\x01\x02\x03"), PARAMS.extension(), (0xC0, b"future")), version=3)
# an Opus packet: TOC 0x08 (SILK narrowband 20 ms, mono, one frame) + 20 bytes
OPUS = bytes([0x08]) + bytes(range(1, 21))

GOLDEN_V3 = {
    "session_header_v3_audio.bin": HEADER_V3,
    "audio.bin": AudioPacket(seq=517, timestamp=48000 * 10 + 960 * 3, payload=OPUS),
    "seal_v3.bin": Seal(covered_through_seq=1202, counter=300, time_ms=150_000, signature=bytes(range(64)), audio_through_seq=2003, version=3),
    "key_frame_v3.bin": KeyFrame.from_values(7, 0, KEY_VALUES, HEADER.key_scales, version=3),
}


def _audio_bytes() -> bytes:
    return bytes(GOLDEN_V3["audio.bin"])


def _header_with_audio_ext(value: bytes) -> bytes:
    exts = ((0x01, b"\x01\x02\x03"), (AUDIO_TAG, value), (0xC0, b"future"))
    data = bytes(dataclasses.replace(HEADER, version=1, extensions=exts))
    return data[:2] + b"\x03" + data[3:]  # the same bytes as a version-3 header


CORRUPT_V3 = {
    "audio_in_v2.bin": (lambda: _patch(_audio_bytes(), 2, b"\x02"), "unknown packet type 0x08"),
    "audio_truncated.bin": (lambda: _audio_bytes()[:9], "packet truncated: AUDIO needs 2 more bytes"),
    "audio_empty_payload.bin": (lambda: _audio_bytes()[:10], "packet truncated: AUDIO needs 1 more byte"),
    "audio_oversize.bin": (
        lambda: _audio_bytes()[:10] + b"\x08" * (MAX_AUDIO_PAYLOAD + 1),
        f"AUDIO: payload is {MAX_AUDIO_PAYLOAD + 1} bytes (max {MAX_AUDIO_PAYLOAD})",
    ),
    "seal_v3_truncated.bin": (lambda: bytes(GOLDEN_V3["seal_v3.bin"])[:-1], "packet truncated: SEAL needs 1 more byte"),
    "seal_v3_short.bin": (lambda: bytes(GOLDEN_V3["seal_v3.bin"])[:40], "packet truncated: SEAL needs 34 more bytes"),
    "session_header_audio_ext_size.bin": (
        lambda: _header_with_audio_ext(bytes(PARAMS)[:-1]),
        "SESSION_HEADER: audio extension is 13 bytes (expected 14)",
    ),
    "session_header_audio_codec.bin": (
        lambda: _header_with_audio_ext(b"\x02" + bytes(PARAMS)[1:]),
        "SESSION_HEADER: audio: codec 2 is not known (1 = Opus)",
    ),
    "session_header_audio_frame.bin": (
        lambda: _header_with_audio_ext(bytes(PARAMS)[:10] + struct.pack("<H", 1000) + bytes(PARAMS)[12:]),
        "SESSION_HEADER: audio: frame_samples 1000 is not an Opus frame size (120, 240, 480, 960, 1920, 2880)",
    ),
    "session_header_audio_rate.bin": (
        lambda: _header_with_audio_ext(b"\x01" + struct.pack("<I", 44100) + bytes(PARAMS)[5:]),
        "SESSION_HEADER: audio: sample_rate must be 48000, got 44100",
    ),
    "session_header_audio_channels.bin": (
        lambda: _header_with_audio_ext(bytes(PARAMS)[:5] + b"\x03" + bytes(PARAMS)[6:]),
        "SESSION_HEADER: audio channels 3 out of range (1..2)",
    ),
}


@pytest.mark.parametrize("name", sorted(GOLDEN_V3))
def test_golden_v3_packets_are_byte_exact(name: str) -> None:
    packet = GOLDEN_V3[name]
    data = bytes(packet)
    assert golden(name, data) == data
    assert data[2] == 3
    parsed = parse_packet(data)
    assert parsed == packet and type(parsed) is type(packet) and bytes(parsed) == data


@pytest.mark.parametrize("name", sorted(CORRUPT_V3))
def test_corrupt_v3_fixtures_raise_exact_messages(name: str) -> None:
    build, message = CORRUPT_V3[name]
    data = build()
    assert golden(name, data) == data
    with pytest.raises(InvalidPacket) as excinfo:
        parse_packet(data)
    assert str(excinfo.value) == message


def test_audio_packet_layout() -> None:
    data = golden("audio.bin", _audio_bytes())
    # FL, version 3, type 8, seq u16 LE, timestamp u32 LE, then the Opus packet
    assert data[:4] == b"FL\x03\x08"
    assert struct.unpack_from("<HI", data, 4) == (517, 482880)
    assert data[10:] == OPUS and len(data) == 10 + len(OPUS)
    assert PacketType.AUDIO == 0x08


def test_audio_extension_layout_and_header() -> None:
    assert bytes(PARAMS) == b"\x01" + struct.pack("<IBIHH", 48000, 1, 8000, 960, 312)
    assert len(bytes(PARAMS)) == 14 and PARAMS.frame_seconds == 0.02
    header = parse_packet(golden("session_header_v3_audio.bin", bytes(HEADER_V3)))
    assert isinstance(header, SessionHeader) and header.audio == PARAMS
    assert header.eye_channels is None and header.n_values == 22  # no eyes in this header
    # before version 3 tag 4 is an unassigned extension: kept verbatim, no audio
    for v in (1, 2):
        old = dataclasses.replace(HEADER_V3, version=v)
        assert old.audio is None and parse_packet(bytes(old)) == old
    # a version-3 header without extension 4 carries no audio
    assert dataclasses.replace(HEADER, version=3).audio is None


def test_seal_v3_layout() -> None:
    data = golden("seal_v3.bin", bytes(GOLDEN_V3["seal_v3.bin"]))
    assert data[:4] == b"FL\x03\x06" and struct.unpack_from("<HH", data, 4) == (1202, 2003)
    assert len(data) == 77  # version 2's 75 + audio_through_seq
    assert len(bytes(Seal(0xFFFF, 0, 0, bytes(64), 0xFFFF, version=3))) == 74
    # a version-2 parse of the same body would be misaligned: the version byte decides
    v2 = bytes(Seal(1202, 300, 150_000, bytes(range(64))))
    assert len(v2) == 75 and parse_packet(v2).audio_through_seq is None


@pytest.mark.parametrize(
    ("build", "error", "message"),
    [
        (lambda: AudioPacket(0, 0, b""), ValueError, r"payload must be 1\.\.1275 bytes, got 0"),
        (lambda: AudioPacket(0, 0, bytes(1276)), ValueError, r"payload must be 1\.\.1275 bytes, got 1276"),
        (lambda: AudioPacket(1 << 16, 0, b"\x08"), ValueError, r"seq 65536 out of range"),
        (lambda: AudioPacket(0, 1 << 32, b"\x08"), ValueError, r"timestamp 4294967296 out of range"),
        (lambda: AudioPacket(0, -1, b"\x08"), ValueError, r"timestamp -1 out of range"),
        (lambda: AudioPacket(0, 0, b"\x08", version=2), ValueError, "AUDIO packets need bitstream version 3, got 2"),
        (lambda: AudioPacket(0, 0.5, b"\x08"), TypeError, "timestamp must be an int"),
        (lambda: Seal(0, 0, 0, bytes(64), version=3), ValueError, "a version 3 seal needs audio_through_seq"),
        (lambda: Seal(0, 0, 0, bytes(64), 5, version=2), ValueError, "audio_through_seq needs bitstream version 3"),
        (lambda: Seal(0, 0, 0, bytes(64), 1 << 16, version=3), ValueError, r"audio_through_seq 65536 out of range"),
        (lambda: AudioParams(5999), ValueError, r"audio bitrate 5999 out of range \(6000\.\.510000\)"),
        (lambda: AudioParams(8000, frame_samples=1000), ValueError, "frame_samples 1000 is not an Opus frame size"),
        (lambda: AudioParams(8000, channels=0), ValueError, r"audio channels 0 out of range"),
        (lambda: AudioParams(8000, sample_rate=16000), ValueError, "sample_rate must be 48000"),
        (lambda: AudioParams(8000, pre_skip=-1), ValueError, r"audio pre_skip -1 out of range"),
    ],
)
def test_constructor_validation(build, error, message) -> None:
    with pytest.raises(error, match=message):
        build()


def test_header_with_a_bad_audio_extension_cannot_be_built() -> None:
    with pytest.raises(ValueError, match=r"audio extension is 3 bytes \(expected 14\)"):
        dataclasses.replace(HEADER, extensions=((AUDIO_TAG, b"abc"),), version=3)


def test_flk_carries_audio_in_order_with_frames() -> None:
    packets = [bytes(HEADER_V3)]
    for i in range(20):
        packets.append(bytes(AudioPacket(2 * i, 960 * 2 * i, OPUS)))
        packets.append(bytes(KeyFrame.from_values(i, 0, KEY_VALUES, HEADER.key_scales, version=3)))
        packets.append(bytes(AudioPacket(2 * i + 1, 960 * (2 * i + 1), OPUS)))
    buf = io.BytesIO()
    write_flk(buf, packets)
    buf.seek(0)
    back = list(iter_flk(buf))
    assert back == packets
    kinds = [parse_packet(p).TYPE for p in back]
    assert kinds[1:4] == [PacketType.AUDIO, PacketType.KEY_FRAME, PacketType.AUDIO]


@pytest.mark.parametrize("name", sorted(GOLDEN_V3))
def test_every_truncation_and_byte_change_raises_only_invalid_packet(name: str) -> None:
    data = bytes(GOLDEN_V3[name])
    for cut in range(len(data)):
        _check_any_outcome(data[:cut])
    for pos in range(len(data)):
        for flip in (0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80, 0xFF):
            _check_any_outcome(_patch(data, pos, bytes([data[pos] ^ flip])))


# ---------------------------------------------------------------- property and fuzz

audio_packets = st.builds(
    AudioPacket,
    seq=st.integers(0, 0xFFFF),
    timestamp=st.one_of(st.integers(0, 10**6), st.integers(0, 0xFFFFFFFF)),
    payload=st.binary(min_size=1, max_size=400),
)
audio_params = st.builds(
    AudioParams,
    bitrate=st.integers(6000, 510000),
    frame_samples=st.sampled_from([120, 240, 480, 960, 1920, 2880]),
    pre_skip=st.integers(0, 0xFFFF),
    channels=st.integers(1, 2),
)
v3_seals = st.builds(
    Seal,
    covered_through_seq=st.integers(0, 0xFFFF),
    counter=st.integers(0, 0xFFFFFFFF),
    time_ms=st.integers(0, 0xFFFFFFFF),
    signature=st.binary(min_size=64, max_size=64),
    audio_through_seq=st.integers(0, 0xFFFF),
    version=st.just(3),
)


@PROPERTY
@given(st.one_of(audio_packets, v3_seals))
def test_v3_packets_round_trip(packet) -> None:
    data = bytes(packet)
    assert data[:4] == b"FL" + bytes([AUDIO_VERSION, packet.TYPE])
    assert parse_packet(data) == packet and bytes(parse_packet(data)) == data


@PROPERTY
@given(audio_params)
def test_audio_params_round_trip_through_a_header(params: AudioParams) -> None:
    h = dataclasses.replace(HEADER, extensions=(params.extension(),), version=3)
    assert parse_packet(bytes(h)).audio == params


@FUZZ
@given(st.sampled_from([1, 2, 3]), st.sampled_from([0x06, 0x08, 0x09]), st.binary(max_size=120))
def test_fuzz_v3_bodies(version: int, ptype: int, body: bytes) -> None:
    _check_any_outcome(b"FL" + bytes([version, ptype]) + body)


@FUZZ
@given(st.one_of(audio_packets, v3_seals), st.data())
def test_fuzz_mutated_v3_packets(packet, data) -> None:
    raw = bytearray(bytes(packet))
    for _ in range(data.draw(st.integers(1, 3))):
        raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    _check_any_outcome(bytes(raw[: data.draw(st.integers(0, len(raw)))]))


@FUZZ
@given(st.binary(max_size=40))
def test_fuzz_audio_extension(value: bytes) -> None:
    h = bytes(dataclasses.replace(HEADER, extensions=((AUDIO_TAG, value),), version=1))
    _check_any_outcome(h[:2] + b"\x03" + h[3:])
