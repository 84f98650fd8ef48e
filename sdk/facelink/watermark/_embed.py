"""Embedding: add the keyed two-layer cell pattern of a frame to its luma, at a fixed PSNR."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ._ecc import COUNTER_CODE, ID_CODE
from ._pattern import (
    EPOCH_FRAMES,
    GRID,
    PAYLOAD_GRID,
    PUBLIC_MARK_KEY,
    SLOTS,
    CellGrid,
    MarkKey,
    cell_grid,
)
from ._payload import WatermarkPayload

__all__ = ["DEFAULT_PSNR", "MIN_SIDE", "SYNC_SHARE", "Watermarker"]

#: the embedder scales every frame's mark to this PSNR (dB) before rounding
DEFAULT_PSNR = 42.5
#: share of the mark energy in the sync layer (the rest carries payload chips)
SYNC_SHARE = 0.25
#: smallest frame side that can carry a mark (2 pixels per sync cell)
MIN_SIDE = 2 * GRID


@dataclass
class _SizeState:
    sync: CellGrid
    data: CellGrid
    sync_bump: np.ndarray  # (H, W) float32: sync bump x its layer's amplitude
    data_bump: np.ndarray  # (H, W) float32: payload bump x its layer's amplitude
    mark: np.ndarray  # (H, W) float32
    tmp: np.ndarray  # (H, W) float32
    mark16: np.ndarray  # (H, W) int16
    acc: np.ndarray  # (H, W, 3) int16


def _size_state(h: int, w: int, target_ms: float) -> _SizeState:
    sync, data = cell_grid(h, w, GRID), cell_grid(h, w, PAYLOAD_GRID)
    # each layer's cell values are +-1, so its mean square is its bump's; the layers are
    # uncorrelated, so the frame's mean square is the energy-weighted sum
    scale = math.sqrt(target_ms / (SYNC_SHARE * sync.bump_ms + (1.0 - SYNC_SHARE) * data.bump_ms))
    return _SizeState(
        sync, data,
        (sync.bump * (scale * math.sqrt(SYNC_SHARE))).astype(np.float32),
        (data.bump * (scale * math.sqrt(1.0 - SYNC_SHARE))).astype(np.float32),
        np.empty((h, w), np.float32), np.empty((h, w), np.float32),
        np.empty((h, w), np.int16), np.empty((h, w, 3), np.int16),
    )  # fmt: skip


class Watermarker:
    """Marks generated frames: ``Watermarker(key, payload).embed(frame, frame_index)``.

    Frame ``i`` gets the key's sync pattern of slot ``i % 64`` on a GRID x GRID cell grid
    ("this is synthetic", and where the frame sits in time) plus payload chips (identity
    word and counter word, signs and cell positions also keyed by the slot) on a coarser
    PAYLOAD_GRID x PAYLOAD_GRID grid, in luma, scaled to ``psnr`` dB.  Buffers are reused across
    frames and reallocated only when the frame size changes.  Not thread-safe: use
    one instance per stream.
    """

    def __init__(self, key: MarkKey = PUBLIC_MARK_KEY, payload: WatermarkPayload | None = None, *, psnr: float = DEFAULT_PSNR) -> None:
        if not isinstance(key, MarkKey):
            raise TypeError(f"key must be a MarkKey, got {type(key).__name__}")
        if payload is not None and not isinstance(payload, WatermarkPayload):
            raise TypeError(f"payload must be a WatermarkPayload, got {type(payload).__name__}")
        if not isinstance(psnr, (int, float)) or not 30.0 <= float(psnr) <= 60.0:
            raise ValueError(f"psnr must be in 30..60 dB, got {psnr!r}")
        self.key = key
        self.payload = payload
        self.psnr = float(psnr)
        self._target_ms = 255.0**2 / 10 ** (self.psnr / 10)
        self._state: _SizeState | None = None
        self._chips: dict[tuple[WatermarkPayload | None, int], np.ndarray] = {}

    def _chip_values(self, payload: WatermarkPayload, counter: int) -> np.ndarray:
        k = (payload, counter)
        c = self._chips.get(k)
        if c is None:
            if len(self._chips) > 16:
                self._chips.clear()
            bits = np.concatenate([ID_CODE.encode(payload.session + payload.receiver), COUNTER_CODE.encode(bytes([counter]))])
            c = 1.0 - 2.0 * bits.astype(np.float32)
            self._chips[k] = c
        return c

    def cell_fields(self, frame_index: int, payload: WatermarkPayload | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The +-1 cell values of a frame: sync layer (GRID*GRID) and payload layer (PAYLOAD_GRID**2)."""
        payload = payload or self.payload
        if payload is None:
            raise ValueError("no payload: pass one to Watermarker(...) or to embed()")
        if isinstance(frame_index, bool) or not isinstance(frame_index, (int, np.integer)):
            raise TypeError(f"frame_index must be an int, got {type(frame_index).__name__}")
        if frame_index < 0:
            raise ValueError(f"frame_index must be >= 0, got {frame_index}")
        fi = int(frame_index)
        slot = fi % SLOTS
        chips = self._chip_values(payload, (fi // EPOCH_FRAMES) & 0xFF)
        return self.key.sync[slot], self.key.slot_sign[slot] * chips[self.key.slot_chip[slot]]

    def embed(
        self,
        frame: np.ndarray,
        frame_index: int,
        payload: WatermarkPayload | None = None,
        *,
        out: np.ndarray | None = None,
    ) -> np.ndarray:
        """The marked frame (a new array, or ``out`` filled in place; ``out`` may be ``frame``)."""
        if not isinstance(frame, np.ndarray):
            raise TypeError(f"frame must be a numpy array, got {type(frame).__name__}")
        if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
            raise ValueError(f"frame must be uint8 (H, W, 3), got {frame.dtype} {frame.shape}")
        h, w = frame.shape[:2]
        if min(h, w) < MIN_SIDE:
            raise ValueError(f"frame must be at least {MIN_SIDE}x{MIN_SIDE} pixels, got {w}x{h}")
        if out is not None and (not isinstance(out, np.ndarray) or out.dtype != np.uint8 or out.shape != frame.shape):
            raise ValueError(f"out must be a uint8 array of shape {frame.shape}")
        sync, data = self.cell_fields(frame_index, payload)
        st = self._state
        if st is None or st.mark.shape != (h, w):
            st = self._state = _size_state(h, w, self._target_ms)
        for grid, cells, bump, dst in ((st.sync, sync, st.sync_bump, st.mark), (st.data, data, st.data_bump, st.tmp)):
            n = grid.cells
            np.take(np.take(cells.reshape(n, n), grid.row_cell, axis=0), grid.col_cell, axis=1, out=dst)
            np.multiply(dst, bump, out=dst)
        np.add(st.mark, st.tmp, out=st.mark)
        np.rint(st.mark, out=st.mark)
        st.mark16[...] = st.mark
        np.add(frame, st.mark16[:, :, None], out=st.acc)
        np.clip(st.acc, 0, 255, out=st.acc)
        if out is None:
            out = np.empty_like(frame)
        out[...] = st.acc
        return out
