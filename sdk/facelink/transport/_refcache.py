"""Receiver-side cache of reference blobs by SHA-256, so a restart or a re-join needs no re-download."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from .. import bitstream as bs
from ..security import facelink_home

__all__ = ["ReferenceCache", "reference_chunks"]

#: chunk size used when replaying a cached blob into a decoder (any size works)
_CHUNK = 16_000


def reference_chunks(blob: bytes, version: int = bs.BITSTREAM_VERSION) -> list[bytes]:
    """The blob as REFERENCE_CHUNK packets of bitstream ``version`` (the session's), as a sender would send it."""
    digest = hashlib.sha256(blob).digest()
    n = max(1, -(-len(blob) // _CHUNK))
    return [bytes(bs.ReferenceChunk(digest[:8], i, n, blob[i * _CHUNK : (i + 1) * _CHUNK], version=version)) for i in range(n)]


class ReferenceCache:
    """Blobs stored as ``DIR/<sha256 hex>``; checked against their name on every read.

    Bounded: beyond ``max_entries`` or ``max_bytes`` the least recently used entries go.
    """

    def __init__(self, directory: str | os.PathLike[str] | None = None, *, max_entries: int = 64, max_bytes: int = 256 << 20) -> None:
        self.directory = Path(directory) if directory is not None else facelink_home() / "refcache"
        self.max_entries = max_entries
        self.max_bytes = max_bytes

    def _path(self, digest: bytes) -> Path:
        return self.directory / digest.hex()

    def get(self, digest: bytes) -> bytes | None:
        """The blob with this SHA-256, or None (a corrupt entry is removed)."""
        if len(digest) != 32:
            return None
        p = self._path(digest)
        try:
            blob = p.read_bytes()
        except OSError:
            return None
        if hashlib.sha256(blob).digest() != digest:
            p.unlink(missing_ok=True)
            return None
        try:
            os.utime(p)  # LRU order by mtime
        except OSError:
            pass
        return blob

    def put(self, blob: bytes) -> Path | None:
        """Store a blob (atomically); returns its path, or None if the cache cannot be written."""
        if len(blob) > self.max_bytes:
            return None
        digest = hashlib.sha256(blob).digest()
        p = self._path(digest)
        if p.exists():
            return p
        try:
            self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd, tmp = tempfile.mkstemp(prefix=".ref.", dir=self.directory)
            with os.fdopen(fd, "wb") as f:
                f.write(blob)
            os.replace(tmp, p)
        except OSError:
            return None
        self._evict()
        return p

    def _evict(self) -> None:
        try:
            entries = sorted(
                (q for q in self.directory.iterdir() if len(q.name) == 64 and not q.name.startswith(".")),
                key=lambda q: q.stat().st_mtime,
            )
        except OSError:
            return
        total = sum(q.stat().st_size for q in entries)
        while entries and (len(entries) > self.max_entries or total > self.max_bytes):
            q = entries.pop(0)
            total -= q.stat().st_size
            q.unlink(missing_ok=True)
