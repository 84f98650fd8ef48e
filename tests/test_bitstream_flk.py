"""The .flk container: golden files, round trips, every truncation, bounded reads, fuzz."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from facelink.bitstream import (
    FLK_MAGIC,
    MAX_RECORD_SIZE,
    End,
    FlkWriter,
    KeyFrame,
    NoFace,
    PredictedFrame,
    ReferenceChunk,
    SessionHeader,
    iter_flk,
    parse_packet,
    read_flk,
    write_flk,
)
from facelink.bitstream._varint import encode_uvarint
from facelink.errors import InvalidPacket

from _support import FUZZ, PROPERTY, golden  # noqa: E402

DATA = Path(__file__).parent / "data" / "bitstream"



HEADER = SessionHeader(
    session_id=b"flk-test-session",
    created_us=1_700_000_000_000_000,
    width=640,
    height=480,
    fps_num=30,
    fps_den=1,
    key_interval=3,
    n_coeffs=2,
    basis_id=b"basis-02",
    steps=(0.5, 1.0, 0.25, 0.125),
    key_scales=bytes([45, 45, 45, 48, 48, 35, 40, 40]),
    pred_scales=bytes([18, 18, 18, 21, 21, 10, 16, 16]),
    reference_digest=b"\x42" * 32,
    reference_size=200,
    version=1,
)
# a version-1 stream: the container does not depend on the packet version, and this vector
# predates version 2 (old files must keep reading)
PACKETS = [
    HEADER,
    ReferenceChunk(b"\x42" * 8, 0, 2, bytes(range(150)), version=1),
    ReferenceChunk(b"\x42" * 8, 1, 2, bytes(range(50)), version=1),
    KeyFrame.from_values(0, 0, [10, -20, 3, 60, -5, 2, 9, -9], HEADER.key_scales, version=1),
    PredictedFrame.from_values(1, 0, [1, 0, 0, -1, 0, 0, 2, 0], HEADER.pred_scales, version=1),
    NoFace(2, version=1),
    PredictedFrame.from_values(3, 1, [0] * 8, HEADER.pred_scales, version=1),
    End(3, 4, version=1),
]
RECORDS = [bytes(p) for p in PACKETS]


def stream_bytes() -> bytes:
    buf = io.BytesIO()
    write_flk(buf, PACKETS)
    return buf.getvalue()


def record_boundaries(data: bytes) -> list[int]:
    """File offsets at which a record ends (the magic counts as the first boundary)."""
    bounds = [len(FLK_MAGIC)]
    for record in RECORDS:
        bounds.append(bounds[-1] + len(encode_uvarint(len(record))) + len(record))
    assert bounds[-1] == len(data)
    return bounds


# ---------------------------------------------------------------- golden files


def test_golden_stream_is_byte_exact() -> None:
    data = stream_bytes()
    assert data.startswith(b"\x89FLK\r\n\x1a\n")
    assert golden("stream_flk.bin", data) == data
    assert read_flk(io.BytesIO(data)) == RECORDS
    assert [parse_packet(r) for r in read_flk(io.BytesIO(data))] == PACKETS


CORRUPT: dict[str, tuple[bytes, str]] = {
    "empty_flk.bin": (b"", "flk truncated: file magic needs 8 more bytes"),
    "truncated_magic_flk.bin": (FLK_MAGIC[:5], "flk truncated: file magic needs 3 more bytes"),
    "bad_magic_flk.bin": (b"\x89PNG\r\n\x1a\n" + b"\x01\x00", "not a .flk file: bad magic 89504e470d0a1a0a"),
    "truncated_record_flk.bin": (
        FLK_MAGIC + b"\x0a" + bytes(End(1, 2, version=1)) + b"\x0a" + bytes(End(1, 2, version=1))[:4],
        "flk truncated: record 1 at offset 19 needs 6 more bytes",
    ),
    "truncated_length_flk.bin": (
        FLK_MAGIC + b"\x80",
        "flk truncated: record 0 at offset 8: length is cut off",
    ),
    "oversize_flk.bin": (
        FLK_MAGIC + encode_uvarint(MAX_RECORD_SIZE + 1) + b"FL",
        "flk record 0 at offset 8: length 1048577 exceeds 1048576 bytes",
    ),
    "overlong_length_flk.bin": (
        FLK_MAGIC + b"\xff\xff\xff\x7f" + b"FL",
        "flk record 0 at offset 8: length exceeds 1048576 bytes",
    ),
    "nonminimal_length_flk.bin": (
        FLK_MAGIC + b"\x8a\x00" + bytes(End(1, 2, version=1)),
        "flk record 0 at offset 8: length varint is not minimally encoded",
    ),
    "empty_record_flk.bin": (FLK_MAGIC + b"\x00", "flk record 0 at offset 8: empty record"),
}


@pytest.mark.parametrize("name", sorted(CORRUPT))
def test_corrupt_files_raise_exact_messages(name: str, tmp_path: Path) -> None:
    data, message = CORRUPT[name]
    assert golden(name, data) == data
    with pytest.raises(InvalidPacket) as excinfo:
        read_flk(io.BytesIO(data))
    assert str(excinfo.value) == message
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(InvalidPacket):
        read_flk(path)


def test_valid_records_before_an_error_are_yielded() -> None:
    data, _ = CORRUPT["truncated_record_flk.bin"]
    records = iter_flk(io.BytesIO(data))
    assert next(records) == bytes(End(1, 2, version=1))
    with pytest.raises(InvalidPacket):
        next(records)


# ---------------------------------------------------------------- writing and reading


def test_path_round_trip_and_streaming_writer(tmp_path: Path) -> None:
    path = tmp_path / "stream.flk"
    assert write_flk(path, PACKETS) == len(PACKETS)
    assert path.read_bytes() == stream_bytes()
    assert read_flk(path) == RECORDS
    assert read_flk(str(path)) == RECORDS

    other = tmp_path / "streamed.flk"
    with FlkWriter(other) as writer:
        sizes = [writer.write(p) for p in PACKETS[:3]]
        for raw in RECORDS[3:]:
            writer.write(bytearray(raw))
        assert writer.records == len(PACKETS)
    assert sizes == [len(encode_uvarint(len(r))) + len(r) for r in RECORDS[:3]]
    assert other.read_bytes() == stream_bytes()
    with pytest.raises(ValueError, match="write to a closed FlkWriter"):
        writer.write(RECORDS[0])
    writer.close()  # idempotent


def test_writer_leaves_caller_file_open() -> None:
    buf = io.BytesIO()
    with FlkWriter(buf) as writer:
        writer.write(End(0, 1))
    assert not buf.closed
    assert buf.getvalue() == FLK_MAGIC + b"\x0a" + bytes(End(0, 1))


def test_empty_stream_is_just_the_magic() -> None:
    buf = io.BytesIO()
    assert write_flk(buf, []) == 0
    assert buf.getvalue() == FLK_MAGIC
    assert read_flk(io.BytesIO(FLK_MAGIC)) == []


def test_largest_record_round_trips() -> None:
    record = b"FL" + bytes(MAX_RECORD_SIZE - 2)
    buf = io.BytesIO()
    write_flk(buf, [record])
    assert len(buf.getvalue()) == 8 + 3 + MAX_RECORD_SIZE
    assert read_flk(io.BytesIO(buf.getvalue())) == [record]


@pytest.mark.parametrize(
    ("packet", "error", "message"),
    [
        (b"", ValueError, "a .flk record holds 1..1048576 bytes, got 0"),
        (bytes(MAX_RECORD_SIZE + 1), ValueError, "a .flk record holds 1..1048576 bytes, got 1048577"),
        (5, TypeError, "packet must be bytes or a Packet, got int"),
        ("FL", TypeError, "packet must be bytes or a Packet, got str"),
    ],
)
def test_writer_rejects_what_it_cannot_store(packet: object, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        write_flk(io.BytesIO(), [packet])  # type: ignore[list-item]


def test_bad_targets_and_sources() -> None:
    with pytest.raises(TypeError, match="target must be a path or a binary file object, got int"):
        FlkWriter(3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="source must be a path or a binary file object, got int"):
        iter_flk(3)  # type: ignore[arg-type]


class TrickleReader(io.RawIOBase):
    """Returns at most one byte per read and records every requested size."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0
        self.requested: list[int] = []

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        self.requested.append(size)
        out = self._data[self._pos : self._pos + min(size, 1)]
        self._pos += len(out)
        return out


def test_short_reads_are_handled() -> None:
    assert read_flk(TrickleReader(stream_bytes())) == RECORDS


def test_oversize_length_is_rejected_before_reading() -> None:
    source = TrickleReader(FLK_MAGIC + encode_uvarint(2_000_000) + bytes(100))
    with pytest.raises(InvalidPacket, match="length 2000000 exceeds 1048576 bytes"):
        read_flk(source)
    assert max(source.requested) <= len(FLK_MAGIC)


def test_reads_are_bounded_by_the_record_size() -> None:
    source = TrickleReader(stream_bytes())
    read_flk(source)
    assert max(source.requested) <= max(len(r) for r in RECORDS)


# ---------------------------------------------------------------- truncation and corruption


def test_every_truncation_is_invalid_or_a_record_prefix() -> None:
    data = stream_bytes()
    bounds = record_boundaries(data)
    for cut in range(len(data)):
        if cut in bounds:
            assert read_flk(io.BytesIO(data[:cut])) == RECORDS[: bounds.index(cut)]
        else:
            with pytest.raises(InvalidPacket):
                read_flk(io.BytesIO(data[:cut]))


def _records_or_invalid(data: bytes) -> list[bytes] | None:
    try:
        return read_flk(io.BytesIO(data))
    except InvalidPacket:
        return None


def test_every_single_byte_change_raises_only_invalid_packet() -> None:
    data = stream_bytes()
    for pos in range(len(data)):
        for flip in (0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80, 0xFF):
            mutated = data[:pos] + bytes([data[pos] ^ flip]) + data[pos + 1 :]
            records = _records_or_invalid(mutated)
            if records is not None:
                assert pos >= len(FLK_MAGIC)
                # records re-serialise to the same file: the container is canonical
                buf = io.BytesIO()
                write_flk(buf, records)
                assert buf.getvalue() == mutated


@FUZZ
@given(st.binary(max_size=400))
def test_fuzz_arbitrary_bytes(data: bytes) -> None:
    _records_or_invalid(data)
    _records_or_invalid(FLK_MAGIC + data)


@PROPERTY
@given(st.lists(st.binary(min_size=1, max_size=300), max_size=20))
def test_any_records_round_trip(records: list[bytes]) -> None:
    buf = io.BytesIO()
    write_flk(buf, records)
    assert read_flk(io.BytesIO(buf.getvalue())) == records
