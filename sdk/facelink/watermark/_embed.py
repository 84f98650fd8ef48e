"""Embedding: add the keyed cell pattern of a frame to its luma, strength following the texture."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ._ecc import COUNTER_CODE, ID_CODE
from ._pattern import (
    EPOCH_FRAMES,
    GRID,
    PUBLIC_MARK_KEY,
    SLOTS,
    CellGrid,
    MarkKey,
    cell_grid,
)
from ._payload import WatermarkPayload

__all__ = ["DEFAULT_PSNR", "MIN_SIDE", "SYNC_SHARE", "Watermarker", "strength_map"]

#: the embedder scales every frame's mark to this PSNR (dB) before rounding
DEFAULT_PSNR = 42.5
#: share of the mark energy in the sync pattern (the rest carries payload chips)
SYNC_SHARE = 0.25
#: smallest frame side that can carry a mark (2 pixels per cell)
MIN_SIDE = 2 * GRID
#: strength range, relative to a frame's mean strength, of the content-adaptive map
_LAMBDA_RANGE = (0.35, 2.2)
#: largest mark amplitude in grey levels (after scaling to the PSNR target)
_MAX_AMPLITUDE = 14.0
_ACTIVITY_SAMPLES = 4  # activity samples per cell side


@dataclass
class _SizeState:
    grid: CellGrid
    rstep: int
    cstep: int
    rstarts: np.ndarray
    cstarts: np.ndarray
    counts: np.ndarray
    mark: np.ndarray  # (H, W) float32
    mark16: np.ndarray  # (H, W) int16
    acc: np.ndarray  # (H, W, 3) int16


def _starts(cells: np.ndarray) -> np.ndarray:
    return np.flatnonzero(np.r_[True, cells[1:] != cells[:-1]])


def strength_map(frame: np.ndarray, state: _SizeState | None = None) -> np.ndarray:
    """Relative mark strength per cell (GRID x GRID, mean 1): higher where the frame is textured."""
    if state is None:
        state = _size_state(frame.shape[0], frame.shape[1])
    g = frame[:: state.rstep, :: state.cstep, 1].astype(np.float32)
    act = np.zeros_like(g)
    dx = np.abs(np.diff(g, axis=1))
    dy = np.abs(np.diff(g, axis=0))
    act[:, :-1] += dx
    act[:, 1:] += dx
    act[:-1] += dy
    act[1:] += dy
    cells = np.add.reduceat(np.add.reduceat(act, state.rstarts, axis=0), state.cstarts, axis=1) / state.counts
    ref = float(np.mean(cells)) + 2.0
    lam = np.sqrt((cells + 1.0) / ref)
    lam /= float(np.mean(lam))
    np.clip(lam, *_LAMBDA_RANGE, out=lam)
    return lam.astype(np.float32)


def _size_state(h: int, w: int) -> _SizeState:
    grid = cell_grid(h, w)
    rstep = max(1, h // (GRID * _ACTIVITY_SAMPLES))
    cstep = max(1, w // (GRID * _ACTIVITY_SAMPLES))
    rc = grid.row_cell[::rstep]
    cc = grid.col_cell[::cstep]
    rstarts, cstarts = _starts(rc), _starts(cc)
    counts = np.multiply.outer(np.diff(np.r_[rstarts, rc.size]), np.diff(np.r_[cstarts, cc.size])).astype(np.float32)
    return _SizeState(
        grid, rstep, cstep, rstarts, cstarts, counts,
        np.empty((h, w), np.float32), np.empty((h, w), np.int16), np.empty((h, w, 3), np.int16),
    )  # fmt: skip


class Watermarker:
    """Marks generated frames: ``Watermarker(key, payload).embed(frame, frame_index)``.

    Frame ``i`` gets the key's sync pattern of slot ``i % 64`` ("this is synthetic",
    and where the frame sits in time) plus payload chips (identity word and counter
    word, signs and cell positions also keyed by the slot), in luma, with a
    content-adaptive strength scaled to ``psnr`` dB.  Buffers are reused across
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
        self._sync_gain = math.sqrt(SYNC_SHARE)
        self._data_gain = math.sqrt(1.0 - SYNC_SHARE)

    def _chip_values(self, payload: WatermarkPayload, counter: int) -> np.ndarray:
        k = (payload, counter)
        c = self._chips.get(k)
        if c is None:
            if len(self._chips) > 16:
                self._chips.clear()
            bits = np.concatenate([ID_CODE.encode(payload.session + payload.receiver), COUNTER_CODE.encode(bytes([counter]))])
            c = (1.0 - 2.0 * bits.astype(np.float32)) * self._data_gain
            self._chips[k] = c
        return c

    def cell_field(self, frame_index: int, payload: WatermarkPayload | None = None) -> np.ndarray:
        """The unit-strength cell values (GRID*GRID) of a frame: sync pattern + payload chips."""
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
        return self._sync_gain * self.key.sync[slot] + self.key.slot_sign[slot] * chips[self.key.slot_chip[slot]]

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
        field = self.cell_field(frame_index, payload)
        st = self._state
        if st is None or st.mark.shape != (h, w):
            st = self._state = _size_state(h, w)
        lam = strength_map(frame, st).reshape(-1)
        cells = lam * field
        scale = math.sqrt(self._target_ms / (float(np.dot(cells, cells)) / cells.size * st.grid.bump_ms))
        peak = float(np.max(np.abs(cells))) * scale
        if peak > _MAX_AMPLITUDE:
            scale *= _MAX_AMPLITUDE / peak
        cells = (cells * scale).reshape(GRID, GRID)
        g = st.grid
        np.multiply(np.take(np.take(cells, g.row_cell, axis=0), g.col_cell, axis=1), g.bump, out=st.mark)
        np.rint(st.mark, out=st.mark)
        st.mark16[...] = st.mark
        np.add(frame, st.mark16[:, :, None], out=st.acc)
        np.clip(st.acc, 0, 255, out=st.acc)
        if out is None:
            out = np.empty_like(frame)
        out[...] = st.acc
        return out
