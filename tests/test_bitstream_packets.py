"""Packets: byte-exact golden fixtures, round trips, exact errors, mutation and fuzz tests."""

from __future__ import annotations

import dataclasses
import hashlib
import re
import struct
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from facelink.bitstream import (
    BITSTREAM_VERSION,
    EYE_TAG,
    EyeChannels,
    MAX_FRAME_PAYLOAD,
    End,
    KeyFrame,
    NoFace,
    Packet,
    PacketType,
    PredictedFrame,
    ReferenceChunk,
    Seal,
    SessionHeader,
    parse_packet,
)
from facelink.bitstream import __all__ as bitstream_all
from facelink.bitstream import flk, packets, rangecoder
from facelink.errors import InvalidPacket

from _support import FUZZ, golden  # noqa: E402

DATA = Path(__file__).parent / "data" / "bitstream"

PROPERTY = settings(max_examples=300, deadline=None)


# ---------------------------------------------------------------- fixtures

HEADER = SessionHeader(
    session_id=bytes(range(16)),
    created_us=1_700_000_000_123_456,
    width=1280,
    height=720,
    fps_num=30000,
    fps_den=1001,
    key_interval=60,
    n_coeffs=16,
    basis_id=b"FLB16v01",
    steps=(0.5, 1.0, 0.015625, 0.125),
    key_scales=bytes([50, 50, 50, 52, 52, 40] + [44] * 16),
    pred_scales=bytes([18, 18, 18, 22, 22, 12] + [20] * 16),
    reference_digest=hashlib.sha256(b"facelink reference").digest(),
    reference_size=34567,
    extensions=((0x01, b"\x01\x02\x03"), (0xC0, b"future")),
    version=1,
)
MINIMAL_HEADER = SessionHeader(
    session_id=bytes(16),
    created_us=0,
    width=1,
    height=1,
    fps_num=1,
    fps_den=1,
    key_interval=1,
    n_coeffs=0,
    basis_id=bytes(8),
    steps=(1.0, 1.0, 1.0, 1.0),
    key_scales=bytes(6),
    pred_scales=bytes(6),
    version=1,
)
KEY_VALUES = [12, -30, 4, 150, -75, 40, 3, -2, 0, 7, -9, 11, 25, -1, 0, 5, -18, 2, 33, -6, 1, -44]
PRED_VALUES = [1, 0, -1, 0, 0, 2, 0, 0, -1, 1, 0, 0, 0, -2, 0, 1, 0, 0, 0, -1, 0, 0]

GOLDEN: dict[str, Packet] = {
    "session_header.bin": HEADER,
    "session_header_minimal.bin": MINIMAL_HEADER,
    "reference_chunk.bin": ReferenceChunk(
        digest_prefix=HEADER.reference_digest[:8], index=2, count=5, data=b"\x89PNG reference bytes", version=1
    ),
    "key_frame.bin": KeyFrame.from_values(1200, 0, KEY_VALUES, HEADER.key_scales, version=1),
    "predicted_frame.bin": PredictedFrame.from_values(1201, -3, PRED_VALUES, HEADER.pred_scales, version=1),
    "no_face.bin": NoFace(seq=1202, pts_offset=1500, version=1),
    "seal.bin": Seal(covered_through_seq=1202, counter=300, time_ms=150_000, signature=bytes(range(64)), version=1),
    "end.bin": End(seq=1202, total_frames=1203, version=1),
}
SCALES_FOR: dict[type, bytes] = {KeyFrame: HEADER.key_scales, PredictedFrame: HEADER.pred_scales}


def _patch(data: bytes, offset: int, new: bytes) -> bytes:
    return data[:offset] + new + data[offset + len(new) :]


def _header_bytes() -> bytes:
    return bytes(HEADER)


# offsets inside HEADER's bytes (K = 16, 22 values)
_KEY_SCALES_AT = 67
_DIGEST_AT = 67 + 2 * 22
_EXT_AT = _DIGEST_AT + 32 + 4 + 1

CORRUPT: dict[str, tuple[Callable[[], bytes], str]] = {
    "bad_magic.bin": (lambda: b"FX" + bytes(GOLDEN["end.bin"])[2:], "bad packet magic 4658 (expected 464c, 'FL')"),
    "bad_version.bin": (
        lambda: _patch(bytes(GOLDEN["end.bin"]), 2, b"\x04"),
        "unsupported bitstream version 4 (this parser reads versions 1, 2, 3; a newer FaceLink wrote it: upgrade)",
    ),
    "unknown_type.bin": (lambda: _patch(bytes(GOLDEN["end.bin"]), 3, b"\x0a"), "unknown packet type 0x0a"),
    "header_truncated.bin": (lambda: b"FL\x01", "packet truncated: header needs 1 more byte"),
    "key_frame_truncated.bin": (
        lambda: bytes(GOLDEN["key_frame.bin"])[:4],
        "packet truncated: KEY_FRAME needs 3 more bytes",
    ),
    "key_frame_oversize_payload.bin": (
        lambda: bytes(KeyFrame(1, 0, b"", version=1)) + b"\x01" * (MAX_FRAME_PAYLOAD + 1),
        "KEY_FRAME: payload is 513 bytes (max 512)",
    ),
    "session_header_truncated.bin": (
        lambda: _header_bytes()[:120],
        "packet truncated: SESSION_HEADER needs 28 more bytes",
    ),
    "session_header_extension_truncated.bin": (
        lambda: _header_bytes()[:-2],
        "packet truncated: SESSION_HEADER needs 2 more bytes",
    ),
    "session_header_trailing.bin": (
        lambda: _header_bytes() + b"\x00",
        "packet has 1 trailing byte after SESSION_HEADER",
    ),
    "session_header_too_many_coeffs.bin": (
        lambda: _patch(_header_bytes(), 42, b"\x41"),
        "SESSION_HEADER: n_coeffs 65 out of range (0..64)",
    ),
    "session_header_zero_width.bin": (
        lambda: _patch(_header_bytes(), 28, b"\x00\x00"),
        "SESSION_HEADER: width 0 out of range (1..65535)",
    ),
    "session_header_nan_step.bin": (
        lambda: _patch(_header_bytes(), 51 + 4, struct.pack("<f", float("nan"))),
        "SESSION_HEADER: steps[1] must be finite and > 0 as float32, got nan",
    ),
    "session_header_bad_scale.bin": (
        lambda: _patch(_header_bytes(), _KEY_SCALES_AT + 3, b"\x40"),
        "SESSION_HEADER: key_scales[3] = 64 is not a scale index (0..63)",
    ),
    "session_header_digest_without_size.bin": (
        lambda: _patch(_header_bytes(), _DIGEST_AT + 32, bytes(4)),
        "SESSION_HEADER: reference_size must be >= 1 when reference_digest is set",
    ),
    "session_header_extension_order.bin": (
        lambda: _patch(_header_bytes(), _EXT_AT, b"\xc1"),
        "SESSION_HEADER: extension tags must be strictly increasing, got 192 after 193",
    ),
    "reference_chunk_index.bin": (
        lambda: _patch(bytes(GOLDEN["reference_chunk.bin"]), 12, b"\x05\x00"),
        "REFERENCE_CHUNK: index 5 out of range for count 5",
    ),
    "reference_chunk_empty.bin": (
        lambda: bytes(GOLDEN["reference_chunk.bin"])[:16],
        "packet truncated: REFERENCE_CHUNK needs 1 more byte",
    ),
    "no_face_nonminimal_pts.bin": (
        lambda: bytes(NoFace(7, version=1))[:-1] + b"\x80\x00",
        "NO_FACE: pts_offset varint is not minimally encoded",
    ),
    "no_face_pts_out_of_range.bin": (
        lambda: bytes(NoFace(7, version=1))[:-1] + b"\x80\x80\x80\x80\x10",
        "NO_FACE: pts_offset 2147483648 out of range (-2147483648..2147483647)",
    ),
    "predicted_frame_long_pts.bin": (
        lambda: bytes(NoFace(7, version=1))[:3] + b"\x04\x07\x00" + b"\x80" * 5 + b"\x01",
        "PREDICTED_FRAME: pts_offset varint is longer than 5 bytes",
    ),
    "seal_truncated.bin": (lambda: bytes(GOLDEN["seal.bin"])[:-1], "packet truncated: SEAL needs 1 more byte"),
    "seal_short.bin": (lambda: bytes(GOLDEN["seal.bin"])[:40], "packet truncated: SEAL needs 32 more bytes"),
    "seal_nonminimal_counter.bin": (
        lambda: bytes(Seal(5, 1, 2, bytes(64), version=1))[:6] + b"\x81\x00\x02" + bytes(64),
        "SEAL: counter varint is not minimally encoded",
    ),
    "seal_long_time.bin": (
        lambda: bytes(Seal(5, 1, 2, bytes(64), version=1))[:7] + b"\x80" * 5 + b"\x01" + bytes(64),
        "SEAL: time_ms varint is longer than 5 bytes",
    ),
    "seal_counter_out_of_range.bin": (
        lambda: bytes(Seal(5, 1, 2, bytes(64), version=1))[:6] + b"\x80\x80\x80\x80\x10\x02" + bytes(64),
        "SEAL: counter 4294967296 out of range (0..4294967295)",
    ),
    "seal_trailing.bin": (lambda: bytes(GOLDEN["seal.bin"]) + b"\x00", "packet has 1 trailing byte after SEAL"),
    "end_trailing.bin": (lambda: bytes(GOLDEN["end.bin"]) + b"\x00\x00", "packet has 2 trailing bytes after END"),
}


# ---------------------------------------------------------------- golden fixtures


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_golden_packets_are_byte_exact(name: str) -> None:
    packet = GOLDEN[name]
    data = bytes(packet)
    assert golden(name, data) == data
    parsed = parse_packet(data)
    assert parsed == packet
    assert type(parsed) is type(packet)
    assert bytes(parsed) == data
    assert type(packet).parse(data) == packet


@pytest.mark.parametrize("name", sorted(CORRUPT))
def test_corrupt_fixtures_raise_exact_messages(name: str) -> None:
    build, message = CORRUPT[name]
    data = build()
    assert golden(name, data) == data
    with pytest.raises(InvalidPacket) as excinfo:
        parse_packet(data)
    assert str(excinfo.value) == message


def test_golden_frames_decode_to_their_values() -> None:
    key = parse_packet(golden("key_frame.bin", bytes(GOLDEN["key_frame.bin"])))
    pred = parse_packet(golden("predicted_frame.bin", bytes(GOLDEN["predicted_frame.bin"])))
    assert isinstance(key, KeyFrame) and isinstance(pred, PredictedFrame)
    assert key.decode_values(HEADER.key_scales).tolist() == KEY_VALUES
    assert pred.decode_values(HEADER.pred_scales).tolist() == PRED_VALUES


def test_corrupt_payload_is_reported_by_decode_values() -> None:
    frame = KeyFrame(5, 0, bytes(GOLDEN["key_frame.bin"])[7:] + b"\x00")
    assert parse_packet(bytes(frame)) == frame  # the container is fine ...
    with pytest.raises(InvalidPacket) as excinfo:  # ... the payload is not
        frame.decode_values(HEADER.key_scales)
    assert str(excinfo.value).startswith("KEY_FRAME: range-coded payload is corrupt: ")


def test_parse_of_the_wrong_class_names_both_types() -> None:
    with pytest.raises(InvalidPacket) as excinfo:
        KeyFrame.parse(bytes(GOLDEN["predicted_frame.bin"]))
    assert str(excinfo.value) == "expected a KEY_FRAME packet, got PREDICTED_FRAME"
    with pytest.raises(InvalidPacket, match="bad packet magic"):
        End.parse(b"XXXXXXXXXX")


# ---------------------------------------------------------------- the table and sizes


def test_packet_type_table_is_fixed() -> None:
    assert {t.name: t.value for t in PacketType} == {
        "SESSION_HEADER": 0x01,
        "REFERENCE_CHUNK": 0x02,
        "KEY_FRAME": 0x03,
        "PREDICTED_FRAME": 0x04,
        "NO_FACE": 0x05,
        "SEAL": 0x06,
        "END": 0x07,
        "AUDIO": 0x08,
        "REGION_REFERENCE": 0x09,
    }
    assert BITSTREAM_VERSION == 2


def test_packet_sizes() -> None:
    assert len(bytes(NoFace(9))) == 7
    assert len(bytes(NoFace(9, pts_offset=-64))) == 7
    assert len(bytes(NoFace(9, pts_offset=64))) == 8
    assert len(bytes(End(1, 2))) == 10
    assert len(bytes(GOLDEN["seal.bin"])) == 4 + 2 + 2 + 3 + 64 == 75
    # counter and time_ms are varints: 72 bytes at the start of a session, 75 from 16 s to 35 min,
    # 76 to 2.3 h (2 seals/s), 77 to 74 h
    assert len(bytes(Seal(0xFFFF, 0, 0, bytes(64)))) == 72
    assert len(bytes(Seal(9, 4000, 2_000_000, bytes(64)))) == 75
    assert len(bytes(Seal(9, 16383, 8_191_500, bytes(64)))) == 76
    assert len(bytes(Seal(9, 0xFFFFFFFF, 0xFFFFFFFF, bytes(64)))) == 80
    assert len(bytes(PredictedFrame.from_values(1, 0, [0] * 22, HEADER.pred_scales))) == 7
    frame = GOLDEN["key_frame.bin"]
    assert isinstance(frame, KeyFrame)
    assert len(bytes(frame)) == 7 + len(frame.payload)
    assert len(bytes(MINIMAL_HEADER)) == 104 + 2 * 6
    assert len(bytes(HEADER)) == 104 + 2 * 22 + (3 + 3) + (3 + 6)


def test_public_names_are_sorted_and_exist() -> None:
    for module_all, module in (
        (bitstream_all, __import__("facelink.bitstream", fromlist=["x"])),
        (packets.__all__, packets),
        (rangecoder.__all__, rangecoder),
        (flk.__all__, flk),
    ):
        assert list(module_all) == sorted(module_all)
        assert all(hasattr(module, name) for name in module_all)


# ---------------------------------------------------------------- constructors


def test_session_header_normalises_fields() -> None:
    header = SessionHeader(
        session_id=bytearray(16),
        created_us=np.uint64(5),
        width=np.int32(640),
        height=480,
        fps_num=30,
        fps_den=1,
        key_interval=30,
        n_coeffs=2,
        basis_id=memoryview(b"basis-01"),
        steps=np.array([0.1, 0.2, 0.3, 0.4]),
        key_scales=[1, 2, 3, 4, 5, 6, 7, 8],
        pred_scales=bytearray(8),
        extensions=[(4, bytearray(b"x"))],
    )
    assert header.session_id == bytes(16) and type(header.session_id) is bytes
    assert type(header.width) is int and header.n_values == 8
    assert header.steps == tuple(struct.unpack("<4f", struct.pack("<4f", 0.1, 0.2, 0.3, 0.4)))
    assert header.key_scales == bytes([1, 2, 3, 4, 5, 6, 7, 8])
    assert header.extensions == ((4, b"x"),)
    assert parse_packet(bytes(header)) == header


def _header_with(**changes: object) -> SessionHeader:
    fields = {f.name: getattr(MINIMAL_HEADER, f.name) for f in dataclasses.fields(MINIMAL_HEADER)}
    fields.update(changes)
    return SessionHeader(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("build", "error", "message"),
    [
        (lambda: _header_with(session_id=bytes(15)), ValueError, "session_id must be 16 bytes, got 15"),
        (lambda: _header_with(session_id="x" * 16), TypeError, "session_id must be bytes, got str"),
        (lambda: _header_with(width=0), ValueError, r"width 0 out of range \(1\.\.65535\)"),
        (lambda: _header_with(height=1 << 16), ValueError, r"height 65536 out of range"),
        (lambda: _header_with(fps_den=0), ValueError, r"fps_den 0 out of range"),
        (lambda: _header_with(created_us=-1), ValueError, r"created_us -1 out of range"),
        (lambda: _header_with(key_interval=True), TypeError, "key_interval must be an int, got bool"),
        (lambda: _header_with(n_coeffs=65), ValueError, r"n_coeffs 65 out of range \(0\.\.64\)"),
        (lambda: _header_with(steps=(1.0, 1.0, 1.0)), ValueError, "steps must hold 4 floats, got 3"),
        (lambda: _header_with(steps=5), TypeError, "steps must be a sequence of 4 floats"),
        (lambda: _header_with(steps=(1.0, 0.0, 1.0, 1.0)), ValueError, r"steps\[1\] must be finite and > 0"),
        (lambda: _header_with(steps=(1.0, 1.0, 1e39, 1.0)), ValueError, r"steps\[2\] must be finite and > 0"),
        (lambda: _header_with(steps=(1.0, 1.0, 1.0, "a")), TypeError, r"steps\[3\] must be a float, got str"),
        (lambda: _header_with(key_scales=bytes(7)), ValueError, "key_scales must be 6 bytes, got 7"),
        (lambda: _header_with(pred_scales=bytes([64] * 6)), ValueError, r"pred_scales\[0\] = 64 is not a scale"),
        (
            lambda: _header_with(reference_digest=b"\x01" * 32),
            ValueError,
            "reference_size must be >= 1 when reference_digest is set",
        ),
        (
            lambda: _header_with(reference_size=10),
            ValueError,
            "reference_size must be 0 when reference_digest is all zero",
        ),
        (
            lambda: _header_with(extensions=((2, b""), (2, b""))),
            ValueError,
            "extension tags must be strictly increasing, got 2 after 2",
        ),
        (lambda: _header_with(extensions=((256, b""),)), ValueError, r"extension tag 256 out of range"),
        (lambda: _header_with(extensions=((1, bytes(1 << 16)),)), ValueError, "extension 1 value must be"),
        (lambda: _header_with(extensions=b"ab"), TypeError, "extensions must be a sequence of"),
        (lambda: _header_with(extensions=[[1, b""]]), TypeError, r"each extension must be a \(tag, value\)"),
        (lambda: ReferenceChunk(bytes(8), 3, 3, b"x"), ValueError, "index 3 out of range for count 3"),
        (lambda: ReferenceChunk(bytes(8), 0, 0, b"x"), ValueError, r"count 0 out of range \(1\.\.65535\)"),
        (lambda: ReferenceChunk(bytes(8), 0, 1, b""), ValueError, r"data must be 1\.\.65000 bytes, got 0"),
        (lambda: ReferenceChunk(bytes(8), 0, 1, bytes(65001)), ValueError, "data must be 1..65000 bytes"),
        (lambda: KeyFrame(1 << 16, 0, b""), ValueError, r"seq 65536 out of range \(0\.\.65535\)"),
        (lambda: KeyFrame(0, 1 << 31, b""), ValueError, r"pts_offset 2147483648 out of range"),
        (lambda: KeyFrame(0, 0, bytes(513), version=1), ValueError, r"payload must be 0\.\.512 bytes, got 513"),
        (lambda: KeyFrame(0, 0, bytes(561)), ValueError, r"payload must be 0\.\.560 bytes, got 561"),
        (lambda: KeyFrame(0, 0, b"", version=4), ValueError, r"bitstream version 4 is not supported"),
        (lambda: KeyFrame(0, 0.0, b""), TypeError, "pts_offset must be an int, got float"),
        (lambda: PredictedFrame.from_values(0, 0, [1] * 5, bytes(5)), ValueError, r"a frame has 6\.\.76 values"),
        (lambda: PredictedFrame.from_values(0, 0, [1] * 7, bytes(6)), ValueError, "got 7 values for 6 scale"),
        (lambda: PredictedFrame.from_values(0, 0, [1] * 6, [0, 0, 0, 0, 0, 64]), ValueError, r"scales\[5\] = 64"),
        (lambda: PredictedFrame.from_values(0, 0, [1] * 6, [0, 0, 0, 0, 0, 256]), ValueError, r"scales\[5\] 256"),
        (lambda: PredictedFrame.from_values(0, 0, [1] * 6, "abcdef"), TypeError, "scales must be bytes"),
        (lambda: PredictedFrame.from_values(0, 0, [1 << 21] * 6, bytes(6)), ValueError, r"\|value\| must be"),
        (lambda: NoFace(-1), ValueError, r"seq -1 out of range"),
        (lambda: Seal(0, 0, 0, bytes(63)), ValueError, "signature must be 64 bytes, got 63"),
        (lambda: Seal(0, 1 << 32, 0, bytes(64)), ValueError, r"counter 4294967296 out of range \(0\.\.4294967295\)"),
        (lambda: Seal(0, 0, -1, bytes(64)), ValueError, r"time_ms -1 out of range"),
        (lambda: Seal(0, 0.5, 0, bytes(64)), TypeError, "counter must be an int, got float"),
        (lambda: End(0, 1 << 32), ValueError, r"total_frames 4294967296 out of range"),
    ],
)
def test_constructor_validation(build: Callable[[], object], error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        build()


def test_decode_values_rejects_bad_scales() -> None:
    frame = GOLDEN["key_frame.bin"]
    assert isinstance(frame, KeyFrame)
    with pytest.raises(ValueError, match=r"a frame has 6\.\.76 values, got 77 scale indices"):
        frame.decode_values(bytes(77))
    with pytest.raises(ValueError, match=r"scales\[2\] = 70 is not a scale index"):
        frame.decode_values(bytes([0, 0, 70, 0, 0, 0]))


def test_parse_rejects_non_bytes() -> None:
    with pytest.raises(TypeError, match="data must be bytes, got str"):
        parse_packet("FL\x01\x07")  # type: ignore[arg-type]
    assert parse_packet(bytearray(bytes(End(1, 2)))) == End(1, 2)
    assert parse_packet(memoryview(bytes(End(1, 2)))) == End(1, 2)


# ---------------------------------------------------------------- mutations of valid packets


def _check_any_outcome(data: bytes) -> None:
    """Malformed input may only raise InvalidPacket; accepted input must be canonical."""
    try:
        packet = parse_packet(data)
    except InvalidPacket:
        return
    assert bytes(packet) == data
    scales = SCALES_FOR.get(type(packet))
    if scales is not None:
        assert isinstance(packet, (KeyFrame, PredictedFrame))
        try:
            values = packet.decode_values(scales)
        except InvalidPacket:
            return
        assert np.all(np.abs(values.astype(np.int64)) <= rangecoder.MAX_ABS_VALUE)
        assert type(packet).from_values(packet.seq, packet.pts_offset, values, scales, version=packet.version) == packet


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_every_truncation_raises_only_invalid_packet(name: str) -> None:
    data = bytes(GOLDEN[name])
    for cut in range(len(data)):
        _check_any_outcome(data[:cut])
    # only the packets whose last field is "the rest" can survive a cut
    survivors = {cut for cut in range(len(data)) if _parses(data[:cut])}
    if isinstance(GOLDEN[name], (ReferenceChunk, KeyFrame, PredictedFrame)):
        assert survivors
    else:
        assert not survivors


def _parses(data: bytes) -> bool:
    try:
        parse_packet(data)
    except InvalidPacket:
        return False
    return True


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_every_single_byte_change_raises_only_invalid_packet(name: str) -> None:
    data = bytes(GOLDEN[name])
    for pos in range(len(data)):
        for flip in range(1, 256):
            _check_any_outcome(_patch(data, pos, bytes([data[pos] ^ flip])))


# ---------------------------------------------------------------- property and fuzz tests

_u16 = st.integers(0, 0xFFFF)
_pts = st.one_of(st.just(0), st.integers(-(1 << 31), (1 << 31) - 1))
_floats = st.floats(min_value=1e-30, max_value=1e30, allow_nan=False)


@st.composite
def session_headers(draw: st.DrawFn) -> SessionHeader:
    k = draw(st.integers(0, 64))
    scales = st.lists(st.integers(0, 63), min_size=6 + k, max_size=6 + k).map(bytes)
    digest = draw(st.one_of(st.just(bytes(32)), st.binary(min_size=32, max_size=32).filter(any)))
    size = 0 if not any(digest) else draw(st.integers(1, 0xFFFFFFFF))
    version = draw(st.sampled_from([1, 2]))
    ext = draw(st.lists(st.tuples(st.integers(0, 255), st.binary(max_size=40)), max_size=5, unique_by=lambda t: t[0]))
    if version == 2:  # tag 3 is the eye channels: random bytes are not a valid one
        ext = [e for e in ext if e[0] != EYE_TAG]
        if draw(st.booleans()):
            ext.append((EYE_TAG, bytes(draw(eye_channels()))))
    return SessionHeader(
        session_id=draw(st.binary(min_size=16, max_size=16)),
        created_us=draw(st.integers(0, (1 << 64) - 1)),
        width=draw(st.integers(1, 0xFFFF)),
        height=draw(st.integers(1, 0xFFFF)),
        fps_num=draw(st.integers(1, 0xFFFFFFFF)),
        fps_den=draw(st.integers(1, 0xFFFFFFFF)),
        key_interval=draw(st.integers(1, 0xFFFF)),
        n_coeffs=k,
        basis_id=draw(st.binary(min_size=8, max_size=8)),
        steps=draw(st.tuples(_floats, _floats, _floats, _floats)),
        key_scales=draw(scales),
        pred_scales=draw(scales),
        reference_digest=digest,
        reference_size=size,
        extensions=tuple(sorted(ext)),
        version=version,
    )


@st.composite
def eye_channels(draw: st.DrawFn) -> EyeChannels:
    scales = st.lists(st.integers(0, 63), min_size=6, max_size=6).map(bytes)
    ref = st.floats(-10, 10, allow_nan=False, width=32)
    return EyeChannels(
        steps=draw(st.tuples(_floats, _floats)),
        key_scales=draw(scales),
        pred_scales=draw(scales),
        reference=tuple(draw(st.lists(ref, min_size=6, max_size=6))),
        iris_radius=tuple(draw(st.lists(st.floats(0, 1, width=32), min_size=2, max_size=2))),
    )


@st.composite
def coded_frames(draw: st.DrawFn) -> KeyFrame | PredictedFrame:
    cls = draw(st.sampled_from([KeyFrame, PredictedFrame]))
    version = draw(st.sampled_from([1, 2]))
    n = draw(st.integers(6, 70 if version == 1 else 76))
    values = draw(st.lists(st.one_of(st.integers(-3, 3), st.integers(-(1 << 20), 1 << 20)), min_size=n, max_size=n))
    scales = draw(st.lists(st.integers(0, 63), min_size=n, max_size=n))
    frame = cls.from_values(draw(_u16), draw(_pts), values, scales, version=version)
    assert frame.decode_values(scales).tolist() == values
    return frame


any_packet = st.one_of(
    session_headers(),
    st.builds(
        ReferenceChunk,
        digest_prefix=st.binary(min_size=8, max_size=8),
        index=st.just(0),
        count=st.integers(1, 0xFFFF),
        data=st.binary(min_size=1, max_size=300),
    ),
    coded_frames(),
    st.builds(NoFace, seq=_u16, pts_offset=_pts),
    st.builds(
        Seal,
        covered_through_seq=_u16,
        counter=st.one_of(st.integers(0, 200), st.integers(0, 0xFFFFFFFF)),
        time_ms=st.one_of(st.integers(0, 20_000), st.integers(0, 0xFFFFFFFF)),
        signature=st.binary(min_size=64, max_size=64),
    ),
    st.builds(End, seq=_u16, total_frames=st.integers(0, 0xFFFFFFFF)),
    st.builds(
        packets.RegionReference,
        digest_prefix=st.binary(min_size=8, max_size=8),
        kind=st.integers(1, 255),
        frame_seq=_u16,
        points=st.lists(st.tuples(*[st.integers(-32768, 32767)] * 4), min_size=1, max_size=packets.MAX_REGION_POINTS).map(tuple),
        image=st.binary(min_size=1, max_size=300),
    ),
)


@PROPERTY
@given(any_packet)
def test_every_packet_type_round_trips(packet: Packet) -> None:
    data = bytes(packet)
    assert data[:4] == b"FL" + bytes([packet.version, packet.TYPE])
    parsed = parse_packet(data)
    assert parsed == packet and type(parsed) is type(packet)
    assert bytes(parsed) == data


@FUZZ
@given(st.binary(max_size=300))
def test_fuzz_arbitrary_bytes(data: bytes) -> None:
    _check_any_outcome(data)


@FUZZ
@given(st.sampled_from([1, 2, 3]), st.integers(0, 10), st.binary(max_size=200))
def test_fuzz_well_formed_headers(version: int, ptype: int, body: bytes) -> None:
    _check_any_outcome(b"FL" + bytes([version, ptype]) + body)


@FUZZ
@given(any_packet, st.data())
def test_fuzz_mutated_valid_packets(packet: Packet, data: st.DataObject) -> None:
    raw = bytearray(bytes(packet))
    for _ in range(data.draw(st.integers(1, 3))):
        pos = data.draw(st.integers(0, len(raw) - 1))
        raw[pos] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(raw)))
    _check_any_outcome(bytes(raw[:cut]))


# ---------------------------------------------------------------- version 2: eye channels

EYES = EyeChannels(
    steps=(0.015, 0.012),
    key_scales=bytes([30, 30, 32] * 2),
    pred_scales=bytes([12, 12, 16] * 2),
    reference=(-0.05, -0.07, 0.17, 0.07, -0.08, 0.2),
    iris_radius=(0.19, 0.2),
)
HEADER_V2 = dataclasses.replace(HEADER, extensions=((0x01, b"\x01\x02\x03"), (EYE_TAG, bytes(EYES)), (0xC0, b"future")), version=2)
KEY_VALUES_V2 = KEY_VALUES + [3, -1, -9, 0, 4, -10]
GOLDEN_V2: dict[str, Packet] = {
    "session_header_v2_eyes.bin": HEADER_V2,
    "key_frame_v2.bin": KeyFrame.from_values(7, 0, KEY_VALUES_V2, HEADER_V2.frame_scales[0], version=2),
}


@pytest.mark.parametrize("name", sorted(GOLDEN_V2))
def test_golden_v2_packets_are_byte_exact(name: str) -> None:
    data = bytes(GOLDEN_V2[name])
    assert golden(name, data) == data
    assert data[2] == 2
    parsed = parse_packet(data)
    assert parsed == GOLDEN_V2[name] and bytes(parsed) == data


def test_eye_channels_extend_the_frame() -> None:
    assert len(bytes(EYES)) == 53
    header = parse_packet(golden("session_header_v2_eyes.bin", bytes(HEADER_V2)))
    assert isinstance(header, SessionHeader)
    assert header.eye_channels == EYES and header.n_values == 6 + 16 + 6
    key, pred = header.frame_scales
    assert key == HEADER.key_scales + EYES.key_scales and pred == HEADER.pred_scales + EYES.pred_scales
    frame = parse_packet(golden("key_frame_v2.bin", bytes(GOLDEN_V2["key_frame_v2.bin"])))
    assert isinstance(frame, KeyFrame)
    assert frame.decode_values(key).tolist() == KEY_VALUES_V2
    # in version 1, tag 3 is an unassigned extension: kept verbatim, no eye values
    v1 = dataclasses.replace(HEADER_V2, version=1)
    assert v1.eye_channels is None and v1.n_values == 22 and parse_packet(bytes(v1)) == v1


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (bytes(EYES)[:-1], r"SESSION_HEADER: eye channels extension is 52 bytes \(expected 53\)"),
        (b"\x07" + bytes(EYES)[1:], "SESSION_HEADER: eye channels: count must be 6, got 7"),
        (bytes(EYES)[:1] + struct.pack("<f", 0.0) + bytes(EYES)[5:], r"SESSION_HEADER: eye steps\[0\] must be finite and > 0"),
        (bytes(EYES)[:9] + bytes([64]) + bytes(EYES)[10:], r"SESSION_HEADER: eye key_scales\[0\] = 64 is not a scale index"),
        (bytes(EYES)[:-8] + struct.pack("<f", float("nan")) + bytes(EYES)[-4:], "SESSION_HEADER: eye channels: iris_radius must be"),
        (bytes(EYES)[:-32] + struct.pack("<f", 11.0) + bytes(EYES)[-28:], "SESSION_HEADER: eye channels: reference must be"),
    ],
)
def test_malformed_eye_channels_are_refused(value: bytes, message: str) -> None:
    exts = ((0x01, b"\x01\x02\x03"), (EYE_TAG, value), (0xC0, b"future"))
    data = bytes(dataclasses.replace(HEADER, version=1, extensions=exts))
    data = data[:2] + b"\x02" + data[3:]  # the same bytes as a version-2 header
    with pytest.raises(InvalidPacket) as excinfo:
        parse_packet(data)
    assert re.match(message, str(excinfo.value)), str(excinfo.value)


# ---------------------------------------------------------------- version 3: region references

REGION = packets.RegionReference(
    digest_prefix=HEADER.reference_digest[:8],
    kind=packets.RegionKind.MOUTH_OPEN,
    frame_seq=41,
    points=tuple((8 * i, -8 * i, 4096 - i, -2048 + 3 * i) for i in range(20)),
    image=b"\xff\xd8 jpeg bytes \xff\xd9",
)


def test_golden_region_reference_is_byte_exact() -> None:
    data = golden("region_reference_v3.bin", bytes(REGION))
    assert data == bytes(REGION) and data[2:4] == b"\x03\x09"
    parsed = parse_packet(data)
    assert parsed == REGION and bytes(parsed) == data
    assert parsed.pixel_points[3].tolist() == [3.0, -3.0]
    assert np.allclose(parsed.canonical_points[2], [(4096 - 2) / 4096, (-2048 + 6) / 4096])


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (lambda b: b[:2] + b"\x02" + b[3:], "unknown packet type 0x09"),
        (lambda b: b[:4] + b[4:12] + b"\x00" + b[13:], "REGION_REFERENCE: kind 0 out of range"),
        (lambda b: b[:15] + b"\x00" + b[16:], r"REGION_REFERENCE: 0 points \(1\.\.64\)"),
        (lambda b: b[:15] + b"\x41" + b[16:], r"REGION_REFERENCE: 65 points \(1\.\.64\)"),
        (lambda b: b[: 16 + 20 * 8] + b"\x02" + b[17 + 20 * 8 :], "REGION_REFERENCE: unknown image format 2"),
        (lambda b: b[: 17 + 20 * 8], r"REGION_REFERENCE: image of 0 bytes \(1\.\.24000\)"),
        (lambda b: b + bytes(packets.MAX_REGION_IMAGE), r"REGION_REFERENCE: image of 24016 bytes \(1\.\.24000\)"),
        (lambda b: b[:30], "packet truncated: REGION_REFERENCE needs"),
    ],
)
def test_malformed_region_references_are_refused(data: Callable[[bytes], bytes], message: str) -> None:
    with pytest.raises(InvalidPacket) as excinfo:
        parse_packet(data(bytes(REGION)))
    assert re.match(message, str(excinfo.value)), str(excinfo.value)
