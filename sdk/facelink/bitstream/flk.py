"""The ``.flk`` stream file: the wire packets of a session, length-prefixed.

Layout: the 8-byte magic :data:`FLK_MAGIC`, then records, each an unsigned
LEB128 length (1 .. :data:`MAX_RECORD_SIZE`, minimally encoded, at most 3
bytes) followed by that many bytes of one packet.  There is no index, count or
trailer, so a file cut exactly at a record boundary reads as a shorter valid
sequence; the stream's own ``End`` packet says whether it ended cleanly.  A cut
anywhere else raises :class:`~facelink.errors.InvalidPacket`.

The container does not look inside records; parse them with
:func:`facelink.bitstream.parse_packet`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from types import TracebackType
from typing import BinaryIO, Union

from facelink.bitstream._varint import VarintError, decode_uvarint, encode_uvarint
from facelink.bitstream.packets import (
    End,
    KeyFrame,
    NoFace,
    Packet,
    PredictedFrame,
    ReferenceChunk,
    RegionReference,
    Seal,
    SessionHeader,
)
from facelink.errors import InvalidPacket

__all__ = [
    "FLK_MAGIC",
    "FlkWriter",
    "MAX_RECORD_SIZE",
    "PathOrFile",
    "iter_flk",
    "read_flk",
    "write_flk",
]

#: first 8 bytes of every .flk file (PNG-style: high bit, name, CR LF, ^Z, LF)
FLK_MAGIC = b"\x89FLK\r\n\x1a\n"
#: largest record, bytes (1 MiB)
MAX_RECORD_SIZE = 1 << 20
_LENGTH_VARINT_BYTES = 3  # 2**21 - 1 >= MAX_RECORD_SIZE

#: a filesystem path, or a binary file object opened by the caller (not closed here)
PathOrFile = Union[str, os.PathLike[str], BinaryIO]

_PACKET_CLASSES = (SessionHeader, ReferenceChunk, KeyFrame, PredictedFrame, NoFace, Seal, End, RegionReference)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _record(packet: bytes | Packet) -> bytes:
    """Length prefix + packet bytes; TypeError/ValueError for what cannot be stored."""
    if isinstance(packet, (bytes, bytearray, memoryview)):
        data = bytes(packet)
    elif isinstance(packet, _PACKET_CLASSES):
        data = bytes(packet)
    else:
        raise TypeError(f"packet must be bytes or a Packet, got {type(packet).__name__}")
    if not 1 <= len(data) <= MAX_RECORD_SIZE:
        raise ValueError(f"a .flk record holds 1..{MAX_RECORD_SIZE} bytes, got {len(data)}")
    return encode_uvarint(len(data)) + data


class FlkWriter:
    """Streaming ``.flk`` writer; writes the magic on creation.

    Use as a context manager.  A path is opened (truncating) and closed by the
    writer; a file object is written to and flushed on close, but left open.
    """

    def __init__(self, target: PathOrFile) -> None:
        if isinstance(target, (str, os.PathLike)):
            self._file: BinaryIO = open(target, "wb")  # closed in close()
            self._owns = True
        elif hasattr(target, "write"):
            self._file = target
            self._owns = False
        else:
            raise TypeError(f"target must be a path or a binary file object, got {type(target).__name__}")
        self._closed = False
        #: records written so far
        self.records = 0
        self._file.write(FLK_MAGIC)

    def write(self, packet: bytes | Packet) -> int:
        """Append one packet; returns the record size in bytes (length prefix included)."""
        if self._closed:
            raise ValueError("write to a closed FlkWriter")
        record = _record(packet)
        self._file.write(record)
        self.records += 1
        return len(record)

    def close(self) -> None:
        """Flush, and close the file if the writer opened it.  Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._owns:
            self._file.close()
        else:
            self._file.flush()

    def __enter__(self) -> FlkWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def write_flk(target: PathOrFile, packets: Iterable[bytes | Packet]) -> int:
    """Write a whole ``.flk`` file; returns the number of records."""
    with FlkWriter(target) as writer:
        for packet in packets:
            writer.write(packet)
        return writer.records


def _read_exact(source: BinaryIO, n: int) -> bytes:
    """Read up to ``n`` bytes, looping over short reads; fewer only at end of file."""
    chunks = []
    got = 0
    while got < n:
        chunk = source.read(n - got)
        if not chunk:
            break
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def _iter_records(source: BinaryIO) -> Iterator[bytes]:
    head = _read_exact(source, len(FLK_MAGIC))
    if head != FLK_MAGIC:
        if FLK_MAGIC.startswith(head):
            missing = len(FLK_MAGIC) - len(head)
            raise InvalidPacket(f"flk truncated: file magic needs {_plural(missing, 'more byte')}")
        raise InvalidPacket(f"not a .flk file: bad magic {head.hex()}")
    offset = len(FLK_MAGIC)
    index = 0
    while True:
        prefix = _read_exact(source, 1)
        if not prefix:
            return
        while prefix[-1] & 0x80 and len(prefix) < _LENGTH_VARINT_BYTES:
            more = _read_exact(source, 1)
            if not more:
                raise InvalidPacket(f"flk truncated: record {index} at offset {offset}: length is cut off")
            prefix += more
        where = f"flk record {index} at offset {offset}"
        try:
            length, _ = decode_uvarint(prefix, 0, _LENGTH_VARINT_BYTES)
        except VarintError as exc:
            if exc.reason == "non-minimal":
                raise InvalidPacket(f"{where}: length varint is not minimally encoded") from None
            raise InvalidPacket(f"{where}: length exceeds {MAX_RECORD_SIZE} bytes") from None
        if length == 0:
            raise InvalidPacket(f"{where}: empty record")
        if length > MAX_RECORD_SIZE:
            raise InvalidPacket(f"{where}: length {length} exceeds {MAX_RECORD_SIZE} bytes")
        data = _read_exact(source, length)
        if len(data) < length:
            missing = length - len(data)
            raise InvalidPacket(
                f"flk truncated: record {index} at offset {offset} needs {_plural(missing, 'more byte')}"
            )
        yield data
        offset += len(prefix) + length
        index += 1


def _iter_path(path: str | os.PathLike[str]) -> Iterator[bytes]:
    with open(path, "rb") as f:
        yield from _iter_records(f)


def iter_flk(source: PathOrFile) -> Iterator[bytes]:
    """Yield the packet bytes of each record; InvalidPacket on a malformed file.

    Reads incrementally and never more than :data:`MAX_RECORD_SIZE` bytes per
    record.  A path is opened on the first ``next`` and closed when the
    iterator finishes or is closed; a file object is read from its current
    position and left open.
    """
    if isinstance(source, (str, os.PathLike)):
        return _iter_path(source)
    if hasattr(source, "read"):
        return _iter_records(source)
    raise TypeError(f"source must be a path or a binary file object, got {type(source).__name__}")


def read_flk(source: PathOrFile) -> list[bytes]:
    """All records of a ``.flk`` file as a list (see :func:`iter_flk`)."""
    return list(iter_flk(source))
