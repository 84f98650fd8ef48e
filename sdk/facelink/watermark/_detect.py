"""Detection: keyed correlation with an exact null distribution, searched over geometry and time.

Per frame (:func:`cell_vectors`): luma resampled to a ``WORK x WORK`` working frame
(the pattern is frame-relative, so any rescale lands on the same grid), then
bump-weighted sums per cell for each geometry hypothesis in :data:`CROPS`: of the
sync layer's GRID x GRID cells after a local mean is removed, and of the payload
layer's PAYLOAD_GRID x PAYLOAD_GRID cells after the frame mean is removed.

Per window of up to 64 frames (:class:`WatermarkDetector`): a temporal high-pass
``d_j = v_j - (v_{j-1} + v_{j+1}) / 2`` removes the static picture (a talking
head's background is a still image; the sync pattern changes every frame), each
cell is divided by its RMS over the window (a weight computed from ``d`` alone) and clipped.  For
every hypothesis (crop, first slot, stride 1 or 2) the statistic is

    z = sum_s <P_s, D_s> / sqrt(sum_s ||D_s||^2),   D_s = sum of the frames given slot s

with ``P_s`` the key's sync signs.  Under "no mark" (or another key's mark) the
signs are fair coins independent of ``D``, so ``z`` has mean 0 and variance 1 and
is Gaussian to a very good approximation (thousands of terms); Pinelis' bound for
Rademacher sums caps the tail at 4.46 x the Gaussian one whatever the video.  The
p-value is Bonferroni-corrected over hypotheses and windows.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from PIL import Image

from ._ecc import COUNTER_CODE, ID_CODE
from ._pattern import CHIPS, EPOCH_FRAMES, GRID, PAYLOAD_GRID, PUBLIC_MARK_KEY, SLOTS, MarkKey
from ._payload import WatermarkPayload

__all__ = [
    "CROPS",
    "MAX_FRAMES",
    "MIN_FRAMES",
    "P_THRESHOLD",
    "STRIDES",
    "Detection",
    "WatermarkDetector",
    "cell_vectors",
    "detect",
    "window_statistics",
]

#: a video is called synthetic when the p-value is below this
P_THRESHOLD = 1e-6
#: working resolution (pixels per side) of the detector
WORK = 128
#: geometry hypotheses: the visible part of the marked frame, as a fraction of its side, centred
#: (< 1: the video was cropped; > 1: the marked frame sits inside a larger picture)
CROPS: tuple[float, ...] = (1.0, 0.97, 0.94, 0.91, 0.88, 0.85, 0.82, 0.79, 0.76, 1.04, 1.08, 1.12)
#: time hypotheses: 1 = every frame kept, 2 = every other frame dropped
STRIDES: tuple[int, ...] = (1, 2)
#: fewer decoded frames than this: no decision ("too short")
MIN_FRAMES = 8
#: frames per analysis window (the slot period: no two frames of a window share a slot at stride 1)
WINDOW = SLOTS
#: frames a detector keeps by default (about 30 s at 30 fps); later frames are ignored
MAX_FRAMES = 900
#: a window whose z is at least this has its chips used for the payload
_PAYLOAD_MIN_Z = 4.0
_HIGHPASS = 9  # box size (working pixels) of the local mean removed before the sync correlation
_SYNC_CELLS = GRID * GRID  # cell_vectors' columns: sync cells first, then payload cells
_CLIP = 3.0  # clip weighted cell values at this many robust standard deviations
_MIN_EFFECTIVE_TERMS = 2000  # below this, the p-value uses the distribution-free bound exp(-z^2/2)
_FRAMES_PER_SECOND_HINT = 25


def _phi_sf(z: float) -> float:
    """Upper tail of N(0, 1)."""
    return 0.5 * math.erfc(z / math.sqrt(2.0))


@dataclass(frozen=True)
class _AxisMap:
    """Working pixels -> cells along one axis for one geometry hypothesis."""

    index: np.ndarray  # working pixels that fall inside the marked frame
    weight: np.ndarray  # their bump weights, float32
    starts: np.ndarray  # offsets into ``index`` where each present cell begins
    cells: np.ndarray  # the present cells (cells cut off by a crop own no pixels)


@lru_cache(maxsize=4)
def _axis_maps(work: int, cells: int) -> tuple[_AxisMap, ...]:
    """One :class:`_AxisMap` per entry of :data:`CROPS` (rows and columns use the same map)."""
    maps = []
    y = (np.arange(work) + 0.5) / work
    for k in CROPS:
        u = ((1.0 - k) / 2.0 + k * y) * cells
        inside = np.flatnonzero((u >= 0) & (u < cells))
        cell = np.floor(u[inside]).astype(np.int64)
        present, starts = np.unique(cell, return_index=True)
        w = np.sin(np.pi * (u[inside] - cell)).astype(np.float32)
        for arr in (inside, w, starts, present):
            arr.setflags(write=False)
        maps.append(_AxisMap(inside, w, starts, present))
    return tuple(maps)


def _box(x: np.ndarray, k: int) -> np.ndarray:
    """Mean over a k x k window (edges replicated)."""
    p = k // 2
    c = np.pad(x.astype(np.float64), p, mode="edge").cumsum(0).cumsum(1)
    c = np.pad(c, ((1, 0), (1, 0)))
    return (c[k:, k:] - c[:-k, k:] - c[k:, :-k] + c[:-k, :-k]) / (k * k)


def working_luma(frame: np.ndarray) -> np.ndarray:
    """Luma of an RGB uint8 frame (or a 2-D luma array) resampled to WORK x WORK, float32."""
    if frame.ndim == 3:
        im = Image.fromarray(np.ascontiguousarray(frame), "RGB").convert("L").convert("F")
    else:
        im = Image.fromarray(np.ascontiguousarray(frame, dtype=np.float32), "F")
    method = Image.Resampling.BOX if min(im.size) >= WORK else Image.Resampling.BILINEAR
    return np.asarray(im.resize((WORK, WORK), method), dtype=np.float32)


def _check_frame(frame: object) -> np.ndarray:
    if not isinstance(frame, np.ndarray):
        raise TypeError(f"frame must be a numpy array, got {type(frame).__name__}")
    if frame.ndim == 3 and frame.shape[2] == 3 and frame.dtype == np.uint8:
        return frame
    if frame.ndim == 2 and frame.dtype in (np.uint8, np.float32, np.float64):
        return frame
    raise ValueError(f"frame must be uint8 (H, W, 3) RGB or a 2-D luma array, got {frame.dtype} {frame.shape}")


def _cell_sums(r: np.ndarray, cells: int) -> np.ndarray:
    out = np.zeros((len(CROPS), cells, cells), np.float32)
    for h, a in enumerate(_axis_maps(WORK, cells)):
        rows = np.add.reduceat(r[a.index] * a.weight[:, None], a.starts, axis=0)  # (present, WORK)
        sums = np.add.reduceat(rows[:, a.index] * a.weight[None, :], a.starts, axis=1)
        out[h][np.ix_(a.cells, a.cells)] = sums
    return out.reshape(len(CROPS), -1)


def cell_vectors(frame: np.ndarray) -> np.ndarray:
    """(len(CROPS), GRID**2 + PAYLOAD_GRID**2) float32: bump-weighted cell sums of one frame.

    The first GRID**2 columns are the sync cells (local mean removed), the rest the
    payload cells (frame mean removed: a local mean as wide as a payload cell would
    take away much of the cell's own bump).
    """
    y = working_luma(_check_frame(frame))
    sync = _cell_sums((y - _box(y, _HIGHPASS)).astype(np.float32), GRID)
    data = _cell_sums(y - np.float32(y.mean()), PAYLOAD_GRID)
    return np.concatenate([sync, data], axis=1)


def window_statistics(d: np.ndarray, key: MarkKey) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The sync statistic of every hypothesis for one window of temporally high-passed cell vectors.

    ``d``: (frames, len(CROPS), cells) as :func:`cell_vectors` lays them out (the sync
    statistic uses the first GRID*GRID).  Returns ``z`` (len(STRIDES), len(CROPS), SLOTS),
    indexed by stride, crop and the slot of the window's first frame; the weighted, clipped
    cell values ``x`` (same shape as ``d``); and the effective number of terms of each
    (stride, crop) sum (``(sum a^2)^2 / sum a^4``).  Under "no mark" every entry of ``z`` is
    a Rademacher sum with unit variance.
    """
    m = d.shape[0]
    rms = np.sqrt(np.mean(d * d, axis=0)) + 1e-6  # (crops, cells), from the data alone
    x = d / rms
    np.clip(x, -_CLIP, _CLIP, out=x)
    xs = x[:, :, :_SYNC_CELLS]
    phase_slot = (np.arange(SLOTS)[:, None] + np.arange(SLOTS)[None, :]) % SLOTS  # [phase, rel]
    z = np.empty((len(STRIDES), len(CROPS), SLOTS))
    terms = np.empty((len(STRIDES), len(CROPS)))
    for i, stride in enumerate(STRIDES):
        period = SLOTS // math.gcd(stride, SLOTS)  # frames before a slot repeats
        rel = (stride * np.arange(m)) % SLOTS  # slot of frame j relative to the window's first
        groups = np.zeros((SLOTS,) + xs.shape[1:])  # (SLOTS rel, crops, cells)
        for c in range(0, m, period):
            groups[rel[c : c + period]] += xs[c : c + period]
        g2 = groups * groups
        e2 = np.sum(g2, axis=(0, 2))
        den = np.sqrt(e2)  # (crops,)
        terms[i] = e2**2 / np.maximum(np.sum(g2 * g2, axis=(0, 2)), 1e-300)
        corr = np.matmul(groups.reshape(-1, _SYNC_CELLS).astype(np.float32), key.sync.T)
        corr = corr.reshape(SLOTS, len(CROPS), SLOTS).astype(np.float64)  # (rel, crops, slot)
        num = corr[np.arange(SLOTS)[None, :], :, phase_slot].sum(axis=1)  # (phase, crops)
        z[i] = num.T / np.maximum(den, 1e-300)[:, None]
    return z, x, terms


@dataclass(frozen=True)
class Detection:
    """What :class:`WatermarkDetector` found.  ``as_dict()`` gives the JSON fields of ``facelink verify``."""

    synthetic: bool
    p_value: float | None
    z: float | None
    frames_analyzed: int
    frames_marked: int
    payload: WatermarkPayload | None
    payload_bits_ok: bool
    counter: int | None
    first_frame_index: int | None
    crop: float | None
    stride: int | None
    reason: str | None
    #: the decoded identity word even when its CRC failed (diagnostics, bit-error counts); not reported
    raw_identity: bytes | None = None

    def as_dict(self) -> dict:
        return {
            "synthetic": self.synthetic,
            "p_value": self.p_value,
            "z": None if self.z is None else round(self.z, 3),
            "threshold": P_THRESHOLD,
            "frames_analyzed": self.frames_analyzed,
            "frames_marked": self.frames_marked,
            "session": self.payload.session.hex() if self.payload else None,
            "receiver": self.payload.receiver.hex() if self.payload else None,
            "payload_bits_ok": self.payload_bits_ok,
            "counter": self.counter,
            "first_frame_index": self.first_frame_index,
            "crop": self.crop,
            "stride": self.stride,
            "reason": self.reason,
        }


@dataclass(frozen=True, eq=False)
class _Window:
    start: int  # index into the high-passed frames
    z: float
    p: float
    crop: int
    phase: int
    stride: int
    weighted: np.ndarray  # (frames, PAYLOAD_GRID**2) weighted, clipped payload cells of the chosen crop


class WatermarkDetector:
    """Feed decoded frames in order with :meth:`add`; :meth:`result` says whether they carry the mark.

    ``key`` is the mark key to look for (the public FaceLink key by default).  At most
    ``max_frames`` frames are kept; later ones are counted but ignored.
    """

    def __init__(self, key: MarkKey = PUBLIC_MARK_KEY, *, max_frames: int = MAX_FRAMES) -> None:
        if not isinstance(key, MarkKey):
            raise TypeError(f"key must be a MarkKey, got {type(key).__name__}")
        if isinstance(max_frames, bool) or not isinstance(max_frames, int) or max_frames < MIN_FRAMES:
            raise ValueError(f"max_frames must be an int >= {MIN_FRAMES}, got {max_frames!r}")
        self.key = key
        self.max_frames = max_frames
        self._vectors: list[np.ndarray] = []
        self._too_small = False

    @property
    def frames(self) -> int:
        return len(self._vectors)

    @property
    def full(self) -> bool:
        return len(self._vectors) >= self.max_frames

    def add(self, frame: np.ndarray) -> None:
        """Analyse one frame (RGB uint8 or 2-D luma); frames must come in display order."""
        frame = _check_frame(frame)
        if self.full:
            return
        if min(frame.shape[:2]) < GRID:
            self._too_small = True
            return
        self._vectors.append(cell_vectors(frame))

    def result(self) -> Detection:
        n = len(self._vectors)
        if self._too_small and n == 0:
            return _negative(0, f"frames too small: need at least {GRID}x{GRID} pixels")
        if n < MIN_FRAMES:
            return _negative(n, f"too short: {n} frame{'s' if n != 1 else ''}, need at least {MIN_FRAMES}")
        v = np.stack(self._vectors).astype(np.float64)  # (n, crops, cells)
        d = v[1:-1] - 0.5 * (v[:-2] + v[2:])
        starts = list(range(0, len(d), WINDOW))
        if len(starts) > 1 and len(d) - starts[-1] < WINDOW // 2:
            starts.pop()  # a short tail joins the window before it
        bounds = [(s, starts[i + 1] if i + 1 < len(starts) else len(d)) for i, s in enumerate(starts)]
        windows = [self._window(d[a:b], a) for a, b in bounds]
        n_tests = len(windows)
        best = min(windows, key=lambda w: w.p)
        p_value = min(1.0, best.p * n_tests)
        synthetic = p_value < P_THRESHOLD
        frames_marked = sum(b - a for w, (a, b) in zip(windows, bounds) if min(1.0, w.p * n_tests) < P_THRESHOLD)
        if synthetic:
            frames_marked += 2  # the first and last frame enter through their neighbours' filters
        payload, ok, counter, first, raw = (None, False, None, None, None)
        if synthetic:
            payload, ok, counter, first, raw = self._decode([w for w in windows if w.z >= _PAYLOAD_MIN_Z])
        reason = None
        if not synthetic:
            seconds = n / _FRAMES_PER_SECOND_HINT
            reason = "no FaceLink mark found for this key"
            if seconds < 2.0:
                reason = f"too short for a reliable negative: {n} frames (about {seconds:.1f} s); 2 s or more is needed"
        return Detection(
            synthetic=synthetic,
            p_value=float(p_value),
            z=float(best.z),
            frames_analyzed=n,
            frames_marked=min(frames_marked, n) if synthetic else 0,
            payload=payload,
            payload_bits_ok=ok,
            counter=counter,
            first_frame_index=first,
            crop=CROPS[best.crop] if synthetic else None,
            stride=best.stride if synthetic else None,
            reason=reason,
            raw_identity=raw,
        )

    def _window(self, d: np.ndarray, start: int) -> _Window:
        """Best hypothesis of one window of high-passed frames (m, crops, cells)."""
        z, x, terms = window_statistics(d, self.key)
        s, k, ph = np.unravel_index(int(np.argmax(z)), z.shape)
        zb = float(z[s, k, ph])
        if terms[s, k] >= _MIN_EFFECTIVE_TERMS:
            tail = _phi_sf(zb)
        else:
            tail = math.exp(-zb * zb / 2) if zb > 0 else 1.0
        return _Window(start, zb, min(1.0, tail * z.size), int(k), int(ph), STRIDES[s], x[:, k, _SYNC_CELLS:])

    def _decode(self, windows: list[_Window]) -> tuple[WatermarkPayload | None, bool, int | None, int | None, bytes]:
        key = self.key
        id_soft = np.zeros(ID_CODE.coded_bits)
        # per 64-frame epoch: (frames, soft values, slot of the group's first frame, its position, stride)
        counters: list[tuple[int, np.ndarray, int, int, int]] = []
        for w in windows:
            m = w.weighted.shape[0]
            slots = (w.phase + w.stride * np.arange(m)) % SLOTS
            soft = np.zeros((m, CHIPS))
            for j in range(m):
                s = slots[j]
                soft[j] = np.bincount(key.slot_chip[s], weights=key.slot_sign[s] * w.weighted[j], minlength=CHIPS)
            id_soft += soft[:, : ID_CODE.coded_bits].sum(axis=0)
            absolute = w.phase + w.stride * np.arange(m)
            epoch = absolute // EPOCH_FRAMES
            for e in np.unique(epoch):
                sel = np.flatnonzero(epoch == e)
                counters.append(
                    (len(sel), soft[sel, ID_CODE.coded_bits :].sum(axis=0), int(slots[sel[0]]), w.start + int(sel[0]), w.stride)
                )
        message, ok = ID_CODE.decode(id_soft)
        if not ok:
            return None, False, None, None, message
        payload = WatermarkPayload(message[:4], message[4:7])
        counter = first = None
        for _, soft, slot, pos, stride in sorted(counters, key=lambda c: -c[0]):
            c_msg, c_ok = COUNTER_CODE.decode(soft)
            if c_ok:
                counter = c_msg[0]
                # session index of decoded frame 0, assuming no cut before this group: the group's
                # first frame is high-passed frame ``pos``, i.e. decoded frame ``pos + 1``
                first = (counter * EPOCH_FRAMES + slot - stride * (pos + 1)) % (256 * EPOCH_FRAMES)
                break
        return payload, True, counter, first, message


def _negative(n: int, reason: str) -> Detection:
    return Detection(False, None, None, n, 0, None, False, None, None, None, None, reason, None)


def detect(frames: Iterable[np.ndarray], key: MarkKey = PUBLIC_MARK_KEY, *, max_frames: int = MAX_FRAMES) -> Detection:
    """Run a :class:`WatermarkDetector` over an iterable of frames (RGB uint8 or 2-D luma arrays)."""
    det = WatermarkDetector(key, max_frames=max_frames)
    for f in frames:
        if det.full:
            break
        det.add(f)
    return det.result()
