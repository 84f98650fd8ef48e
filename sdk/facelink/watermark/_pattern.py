"""Mark keys, keyed cell patterns and the frame-relative cell grid.

Everything a third party needs to reproduce the patterns is here and in
``docs/provenance.md``: patterns are bits of SHAKE-256 over the mark key and a
label, laid on a grid of ``GRID x GRID`` cells that spans the whole frame
(whatever its size), so a rescaled frame carries the same pattern.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from ._ecc import COUNTER_CODE, ID_CODE

__all__ = [
    "CHIPS",
    "EPOCH_FRAMES",
    "GRID",
    "PAYLOAD_GRID",
    "PUBLIC_MARK_KEY",
    "SLOTS",
    "CellGrid",
    "MarkKey",
]

#: cells per frame side of the sync layer: a GRID x GRID field of cells stretched over the frame
GRID = 16
#: cells per frame side of the payload layer: coarser (lower spatial frequency) than the sync
#: layer because the payload needs a per-chip SNR that survives heavy compression of small frames
#: (H.264 at CRF 28 on a 128x128 frame keeps about 39 % of an 8x8-grid mark, 18 % of a 16x16-grid one)
PAYLOAD_GRID = 8
#: frame slots: frame ``i`` carries the chip pattern of slot ``i % SLOTS``
SLOTS = 64
#: the payload's frame counter is ``(frame_index // EPOCH_FRAMES) % 256``
EPOCH_FRAMES = 64
#: chips: the identity word's coded bits (0..257), then the counter word's (258..323)
CHIPS = ID_CODE.coded_bits + COUNTER_CODE.coded_bits
#: the order in which cells are dealt chips: identity chips twice, counter chips once, so the
#: identity word (accumulated over the whole clip) gets 89 % of the payload energy
CHIP_CYCLE = np.concatenate([np.arange(ID_CODE.coded_bits)] * 2 + [np.arange(ID_CODE.coded_bits, CHIPS)])
CHIP_CYCLE.setflags(write=False)
_DOMAIN = b"FaceLink watermark v1\x00"
#: the published seed of the public FaceLink mark (anyone may detect it; see docs/provenance.md)
PUBLIC_MARK_SEED = b"FaceLink public mark key v1"


def _shake(key: bytes, label: str, n: int) -> bytes:
    h = hashlib.shake_256(_DOMAIN + len(key).to_bytes(2, "big") + key + label.encode("ascii"))
    return h.digest(n)


def _signs(key: bytes, label: str, n: int) -> np.ndarray:
    bits = np.unpackbits(np.frombuffer(_shake(key, label, (n + 7) // 8), dtype=np.uint8))[:n]
    return (1.0 - 2.0 * bits).astype(np.float32)


@dataclass(frozen=True, eq=False)
class MarkKey:
    """A marking key: the seed of every pattern.  The public key is :data:`PUBLIC_MARK_KEY`.

    ``MarkKey.generate()`` makes a per-deployment key (32 random bytes); ``hex()``
    and ``MarkKey.from_hex()`` move it through configuration files and ``--mark-key``.
    """

    seed: bytes
    #: (SLOTS, GRID*GRID) sync signs
    sync: np.ndarray = field(init=False, repr=False)
    #: (SLOTS, PAYLOAD_GRID**2) chip signs and chip index of every payload cell
    slot_sign: np.ndarray = field(init=False, repr=False)
    slot_chip: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.seed, (bytes, bytearray)):
            raise TypeError(f"mark key seed must be bytes, got {type(self.seed).__name__}")
        if not 1 <= len(self.seed) <= 1024:
            raise ValueError(f"mark key seed must be 1..1024 bytes, got {len(self.seed)}")
        seed = bytes(self.seed)
        object.__setattr__(self, "seed", seed)
        sync = np.stack([_signs(seed, f"slot/{s}/sync", GRID * GRID) for s in range(SLOTS)])
        n = PAYLOAD_GRID * PAYLOAD_GRID
        signs = np.stack([_signs(seed, f"slot/{s}/psign", n) for s in range(SLOTS)])
        chips = np.empty((SLOTS, n), dtype=np.int32)
        for s in range(SLOTS):
            order = np.argsort(np.frombuffer(_shake(seed, f"slot/{s}/porder", 4 * n), dtype=">u4"), kind="stable")
            chips[s, order] = CHIP_CYCLE[(s * n + np.arange(n)) % CHIP_CYCLE.size]
        for a in (sync, signs, chips):
            a.setflags(write=False)
        object.__setattr__(self, "sync", sync)
        object.__setattr__(self, "slot_sign", signs)
        object.__setattr__(self, "slot_chip", chips)

    @classmethod
    def generate(cls) -> MarkKey:
        """A fresh random per-deployment key."""
        return cls(os.urandom(32))

    @classmethod
    def from_hex(cls, text: str) -> MarkKey:
        """A key from its hex form (at least 16 bytes); ``"public"`` gives the public key."""
        if not isinstance(text, str):
            raise TypeError(f"mark key must be given as a hex string, got {type(text).__name__}")
        t = text.strip()
        if t.lower() == "public":
            return PUBLIC_MARK_KEY
        try:
            raw = bytes.fromhex(t)
        except ValueError:
            raise ValueError("mark key must be hex digits (e.g. from MarkKey.generate().hex()) or 'public'") from None
        if len(raw) < 16:
            raise ValueError(f"mark key must hold at least 16 bytes, got {len(raw)}")
        return cls(raw)

    def hex(self) -> str:
        return self.seed.hex()

    @property
    def is_public(self) -> bool:
        return self.seed == PUBLIC_MARK_SEED

    @property
    def fingerprint(self) -> str:
        """Short hex id of the key (first 4 bytes of SHA-256 of the seed): safe to show and log."""
        return hashlib.sha256(self.seed).hexdigest()[:8]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, MarkKey) and other.seed == self.seed

    def __hash__(self) -> int:
        return hash(self.seed)

    def __repr__(self) -> str:
        return "MarkKey(public)" if self.is_public else f"MarkKey(fingerprint={self.fingerprint})"


PUBLIC_MARK_KEY = MarkKey(PUBLIC_MARK_SEED)


@dataclass(frozen=True)
class CellGrid:
    """How ``cells x cells`` cells cover a frame of ``height x width`` pixels.

    Cell ``(r, c)`` covers rows ``[r*H/cells, (r+1)*H/cells)`` and likewise for columns.
    Within a cell the mark has the shape ``sin(pi*u) * sin(pi*v)`` with ``u, v`` the
    position inside the cell in [0, 1): zero at cell borders, largest in the middle.
    """

    height: int
    width: int
    cells: int
    row_cell: np.ndarray  # (H,) cell row of each pixel row
    col_cell: np.ndarray  # (W,) cell column of each pixel column
    row_bump: np.ndarray  # (H,) float32
    col_bump: np.ndarray  # (W,) float32
    bump: np.ndarray  # (H, W) float32 outer product
    bump_ms: float  # mean square of ``bump``


def _axis(n: int, cells: int) -> tuple[np.ndarray, np.ndarray]:
    u = (np.arange(n, dtype=np.float64) + 0.5) * cells / n
    cell = np.minimum(np.floor(u).astype(np.int64), cells - 1)
    return cell, np.sin(np.pi * (u - cell)).astype(np.float32)


@lru_cache(maxsize=8)
def cell_grid(height: int, width: int, cells: int = GRID) -> CellGrid:
    """The (cached) grid of ``cells x cells`` cells over a frame size."""
    rc, rb = _axis(height, cells)
    cc, cb = _axis(width, cells)
    bump = np.multiply.outer(rb, cb).astype(np.float32)
    for a in (rc, rb, cc, cb, bump):
        a.setflags(write=False)
    return CellGrid(height, width, cells, rc, cc, rb, cb, bump, float(np.mean(bump.astype(np.float64) ** 2)))
