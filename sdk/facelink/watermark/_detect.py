"""Detection: keyed correlation with an exact null distribution, searched over geometry and time.

Per frame (:func:`cell_vectors`): luma resampled to a ``WORK x WORK`` working frame
(the pattern is frame-relative, so any rescale lands on the same grid), then
bump-weighted sums per cell for each centred geometry hypothesis in :data:`CROPS`: of
the sync layer's GRID x GRID cells after a local mean is removed, and of the payload
layer's PAYLOAD_GRID x PAYLOAD_GRID cells after the frame mean is removed.  The
working luma itself is kept for the geometry searches.

Per window of up to 64 frames (:class:`WatermarkDetector`): a temporal high-pass
``d_j = v_j - (v_{j-1} + v_{j+1}) / 2`` removes the static picture (a talking
head's background is a still image; the sync pattern changes every frame), each
cell is divided by its RMS over the window (a weight computed from ``d`` alone) and clipped.  For
every hypothesis (geometry, mirror, frame-rate pattern of :data:`TIME_HYPOTHESES`,
first slot) the statistic is

    z = sum_s <P_s, D_s> / sqrt(sum_s ||D_s||^2),   D_s = sum of the frames given slot s

with ``P_s`` the key's sync signs.  Under "no mark" (or another key's mark) the
signs are fair coins independent of ``D``, so ``z`` has mean 0 and variance 1 and
is Gaussian to a very good approximation (thousands of terms); Pinelis' bound for
Rademacher sums caps the tail at 4.46 x the Gaussian one whatever the video.

Geometries: the centred crops above; a rotated lattice estimated without the key
(:func:`mark_lattice`); and a grid of crop scales and sub-cell offsets.  The last two
score every whole-cell shift and slot at once with a 3-D FFT (slot x rows x columns).
The p-value is a weighted Bonferroni bound over the four hypothesis families
(:data:`FAMILY_SHARES`) and the windows.
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
    "CROP_SCALES",
    "MAX_FRAMES",
    "MIN_FRAMES",
    "P_THRESHOLD",
    "RATES",
    "STRIDES",
    "TIME_HYPOTHESES",
    "Detection",
    "WatermarkDetector",
    "cell_vectors",
    "detect",
    "mark_lattice",
    "window_statistics",
]

#: a video is called synthetic when the p-value is below this
P_THRESHOLD = 1e-6
#: working resolution (pixels per side) of the detector
WORK = 128
#: geometry hypotheses: the visible part of the marked frame, as a fraction of its side, centred
#: (< 1: the video was cropped; > 1: the marked frame sits inside a larger picture)
CROPS: tuple[float, ...] = (1.0, 0.97, 0.94, 0.91, 0.88, 0.85, 0.82, 0.79, 0.76, 1.04, 1.08, 1.12)
#: frame-rate hypotheses (p, q): p source frames per q frames of the video.  1/1 every frame
#: kept, 2/1 every other frame dropped (60->30, 30->15 fps), 6/5 = 30->25 fps, 5/4 = 30->24 fps
#: (frames dropped by nearest-frame resampling, or blended: a blend counts for its nearer frame)
RATES: tuple[tuple[int, int], ...] = ((1, 1), (2, 1), (6, 5), (5, 4))
#: time hypotheses (p, q, f): frame j of a window carries relative slot (p * j + f) // q
TIME_HYPOTHESES: tuple[tuple[int, int, int], ...] = tuple((p, q, f) for p, q in RATES for f in range(q))
#: the rates as source frames per video frame (``Detection.stride``)
STRIDES: tuple[float, ...] = tuple(p / q for p, q in RATES)
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
# lattice search (any rotation, scale, shift, mirror): see mark_lattice
_MAX_ROTATION = 10.0  # degrees searched either way (the sector half-width adds a margin)
_LATTICE_BAND = (6.5, 19.5)  # sync-grid frequency, cycles per working frame: 0.4x to 1.2x of the frame visible
_MAX_EXTENDED = 48  # extended cell grid side (cells), beyond which a lattice is refused
_MIN_OVERLAP = 0.7  # a shift must put this share of the visible cells (or of the frame) on the marked frame
_MIN_OVERLAP_CELLS = 40
_CROP_BOX = 7  # local-mean box (half-resolution pixels) of the crop search (sync cells of 4 to 9 pixels)
#: crop search: visible fraction of the marked frame's side (geometric steps of 8 %)
CROP_SCALES: tuple[float, ...] = tuple(round(0.46 * 1.08**i, 4) for i in range(11))
#: shares of the error budget (weighted Bonferroni): the hypotheses of the first detector keep
#: half, so marks it found stay found at nearly the same z; the new searches share the rest
FAMILY_SHARES = {"base": 0.5, "centred": 0.15, "lattice": 0.1, "crop": 0.25}
_ENERGY_CLIP = 12.0  # the energy map clips each high-passed pixel's power at this many times the median


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
    return _cell_vectors_of(working_luma(_check_frame(frame)))


def _cell_vectors_of(y: np.ndarray) -> np.ndarray:
    sync = _cell_sums((y - _box(y, _HIGHPASS)).astype(np.float32), GRID)
    data = _cell_sums(y - np.float32(y.mean()), PAYLOAD_GRID)
    return np.concatenate([sync, data], axis=1)


@lru_cache(maxsize=8)
def _slot_matrix(m: int) -> np.ndarray:
    """(len(TIME_HYPOTHESES) * SLOTS, m) float32: 1 where frame j of a window gets relative slot s."""
    a = np.zeros((len(TIME_HYPOTHESES), SLOTS, m), np.float32)
    j = np.arange(m)
    for t, (p, q, f) in enumerate(TIME_HYPOTHESES):
        a[t, ((p * j + f) // q) % SLOTS, j] = 1.0
    a = a.reshape(-1, m)
    a.setflags(write=False)
    return a


def _relative_slots(t: int, m: int) -> np.ndarray:
    """Slot of each frame of a window relative to its first frame's, under time hypothesis ``t`` (not reduced mod SLOTS)."""
    p, q, f = TIME_HYPOTHESES[t]
    return (p * np.arange(m) + f) // q


@lru_cache(maxsize=4)
def _sync_patterns(key: MarkKey) -> np.ndarray:
    """(2 * SLOTS, GRID * GRID) float32: the key's sync signs, then the same mirrored left-right."""
    s = key.sync.reshape(SLOTS, GRID, GRID)
    out = np.concatenate([s, s[:, :, ::-1]]).reshape(2 * SLOTS, GRID * GRID).astype(np.float32)
    out.setflags(write=False)
    return out


def _sum_diagonals(corr: np.ndarray) -> np.ndarray:
    """``corr[..., rel, slot]`` -> ``[..., phase] = sum_rel corr[..., rel, (phase + rel) % SLOTS]``."""
    rel = np.arange(SLOTS)
    idx = (rel[None, :] + rel[:, None]) % SLOTS  # [phase, rel]
    return corr[..., rel[None, :], idx].sum(axis=-1)


def _normalise(d: np.ndarray) -> np.ndarray:
    """Each cell divided by its RMS over the window (a weight from the data alone), clipped."""
    x = d / (np.sqrt(np.mean(d * d, axis=0)) + 1e-6)
    np.clip(x, -_CLIP, _CLIP, out=x)
    return x


def window_statistics(d: np.ndarray, key: MarkKey) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The sync statistic of every centred hypothesis for one window of temporally high-passed cell vectors.

    ``d``: (frames, len(CROPS), cells) as :func:`cell_vectors` lays them out (the sync
    statistic uses the first GRID*GRID).  Returns ``z`` (len(TIME_HYPOTHESES), 2, len(CROPS),
    SLOTS), indexed by time hypothesis, mirror (0: as marked, 1: flipped left-right), crop
    and the slot of the window's first frame; the weighted, clipped cell values ``x`` (same
    shape as ``d``); and the effective number of terms of each (time, crop) sum
    (``(sum a^2)^2 / sum a^4``).  Under "no mark" every entry of ``z`` is a Rademacher sum
    with unit variance.
    """
    m, nc = d.shape[0], d.shape[1]
    x = _normalise(d)
    xs = np.ascontiguousarray(x[:, :, :_SYNC_CELLS], dtype=np.float32).reshape(m, -1)
    groups = (_slot_matrix(m) @ xs).reshape(len(TIME_HYPOTHESES), SLOTS, nc, _SYNC_CELLS)
    g2 = groups.astype(np.float64) ** 2
    e2 = g2.sum(axis=(1, 3))  # (times, crops)
    terms = e2**2 / np.maximum((g2 * g2).sum(axis=(1, 3)), 1e-300)
    corr = (groups.reshape(-1, _SYNC_CELLS) @ _sync_patterns(key).T).astype(np.float64)
    corr = corr.reshape(len(TIME_HYPOTHESES), SLOTS, nc, 2, SLOTS).transpose(0, 3, 2, 1, 4)  # (t, flip, crop, rel, slot)
    z = _sum_diagonals(corr) / np.maximum(np.sqrt(e2), 1e-300)[:, None, :, None]
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
    #: the picture was found mirrored left-right (a selfie view), when synthetic
    mirrored: bool | None = None
    #: the marked frame's rotation in the video, degrees (counter-clockwise positive), when synthetic
    rotation: float | None = None

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
            "mirrored": self.mirrored,
            "rotation": self.rotation,
            "reason": self.reason,
        }


# ------------------------------------------------------------------ lattice search (any geometry)

_FREQ = np.fft.fftfreq(WORK) * WORK  # cycles per working frame
_FY, _FX = np.meshgrid(_FREQ, _FREQ, indexing="ij")
_RING = np.rint(np.hypot(_FY, _FX)).astype(np.int64)
_RING_ORDER = np.argsort(_RING.ravel(), kind="stable")
_RING_STARTS = np.searchsorted(_RING.ravel()[_RING_ORDER], np.arange(_RING.max() + 1))
_TAPER = np.outer(np.hanning(WORK), np.hanning(WORK))
_TAN = math.tan(math.radians(_MAX_ROTATION + 4.0))
_PIX = np.arange(WORK, dtype=np.float64)


def _ring_background(mag: np.ndarray) -> np.ndarray:
    """Median magnitude of each integer-radius ring of a spectrum (index: the radius in cycles)."""
    flat = mag.ravel()[_RING_ORDER]
    return np.array([np.median(seg) if seg.size else 1.0 for seg in np.split(flat, _RING_STARTS[1:])]) + 1e-12


def _dft(e: np.ndarray, gx: np.ndarray, gy: np.ndarray) -> np.ndarray:
    """DFT of ``e`` at arbitrary frequencies (cycles per working frame): [i, j] at (gy[i], gx[j])."""
    ay = np.exp(-2j * np.pi * np.outer(gy, _PIX) / WORK)
    bx = np.exp(-2j * np.pi * np.outer(_PIX, gx) / WORK)
    return ay @ e @ bx


def _refine(e: np.ndarray, g: tuple[float, float]) -> tuple[float, float, complex]:
    """Local maximum of |DFT| near ``g`` = (gx, gy): two grid passes (1/8 then 1/50 cycle)."""
    gx, gy = g
    val = 0j
    for half, step in ((0.75, 0.125), (0.12, 0.02)):
        ox = gx + np.arange(-half, half + 1e-9, step)
        oy = gy + np.arange(-half, half + 1e-9, step)
        f = _dft(e, ox, oy)
        i, j = np.unravel_index(int(np.argmax(np.abs(f))), f.shape)
        gx, gy, val = float(ox[j]), float(oy[i]), complex(f[i, j])
    return gx, gy, val


def mark_lattice(energy: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Where the sync cells lie in a working frame, from the mark's energy map alone (no key).

    Every cell's bump is ``sin(pi u) sin(pi v)``, so the mark's power is periodic with the cell
    grid whatever the signs: its spectrum peaks at the sync grid's frequency (and the payload
    grid's, half of it) along both cell axes, rotated and scaled with the frame.  Returns
    ``(g, c)``: the sync cell coordinates of working pixel (row y, column x) are
    ``U = g[0] . (x, y) / WORK + c[0]`` (along the mark's rows) and ``V = g[1] . (x, y) / WORK + c[1]``,
    up to a whole number of cells and a left-right mirror (both searched with the key);
    None when no lattice in the searched range (rotation up to about 10 degrees, 0.45x to
    1.15x of the marked frame visible) stands out.
    """
    e = energy - energy.mean()
    et = e * _TAPER
    mag = np.abs(np.fft.fft2(et))
    ring = _ring_background(mag)
    s = mag / ring[_RING]
    r = np.hypot(_FY, _FX)
    band = (r >= _LATTICE_BAND[0] / 2) & (r <= _LATTICE_BAND[1])

    def strength(h: np.ndarray) -> float:  # spectral magnitude at h over its ring's median
        rad = int(round(float(np.hypot(*h))))
        if rad >= ring.size:
            return 0.0
        return float(np.abs(_dft(et, np.array([h[0]]), np.array([h[1]])))[0, 0]) / ring[rad]

    peaks = []
    for along, across in ((_FX, _FY), (_FY, _FX)):
        # near the axes sit the codec's block grids (and unrotated marks, which the centred and
        # crop searches handle): the lattice search looks for rotated grids only
        sector = band & (along > 0) & (np.abs(across) <= _TAN * along) & (np.abs(across) >= 1)
        if not sector.any():
            return None
        k = int(np.argmax(np.where(sector, s, -1.0)))
        peaks.append(np.array([_FX.ravel()[k], _FY.ravel()[k]]))

    def sync_of(p: np.ndarray) -> np.ndarray:
        # a peak is the payload grid's (the sync harmonic at twice its frequency) or the sync
        # grid's (the payload harmonic at half): keep the reading whose harmonic stands out more
        return 2 * p if strength(2 * p) > strength(p / 2) else p

    def turn(v: np.ndarray, to_axis: int) -> np.ndarray:  # the other axis of square cells
        return np.array([v[1], -v[0]]) if to_axis == 0 else np.array([-v[1], v[0]])

    s0, s1 = sync_of(peaks[0]), sync_of(peaks[1])
    candidates = [(s0, s1), (s0, turn(s0, 1)), (turn(s1, 0), s1)]
    best, best_score = None, -1.0
    for pair in candidates:
        g, c, score = np.zeros((2, 2)), np.zeros(2), 0.0
        for axis, sync in enumerate(pair):
            if not _LATTICE_BAND[0] <= float(np.hypot(*sync)) <= _LATTICE_BAND[1]:
                break
            gx, gy, val = _refine(et, (float(sync[0]), float(sync[1])))
            g[axis] = (gx, gy)
            c[axis] = np.angle(-val) / (2 * np.pi)
            score += strength(g[axis]) + strength(g[axis] / 2)  # both grids' peaks, both axes
        else:
            if score > best_score:
                best, best_score = (g, c), score
    return best


def _box_stack(x: np.ndarray, k: int) -> np.ndarray:
    """Mean over a k x k window of every frame of a (frames, H, W) stack (edges replicated)."""
    p = k // 2
    c = np.pad(x, ((0, 0), (p, p), (p, p)), mode="edge").cumsum(1).cumsum(2)
    c = np.pad(c, ((0, 0), (1, 0), (1, 0)))
    return (c[:, k:, k:] - c[:, :-k, k:] - c[:, k:, :-k] + c[:, :-k, :-k]) / (k * k)


@dataclass(frozen=True)
class _LatticeCells:
    u: np.ndarray  # (WORK*WORK,) sync cell coordinate along the mark's rows, shifted so floor(u).min() == 0
    v: np.ndarray
    cu: int  # extended grid size
    cv: int
    order: np.ndarray  # pixels sorted by extended cell
    starts: np.ndarray
    cells: np.ndarray  # the extended cells that own pixels
    weight: np.ndarray  # (WORK*WORK,) bump weights, in ``order``
    box: int  # local-mean box (working pixels) for the sync sums
    det: float  # determinant of the lattice matrix (cells^2 per working frame)


def _lattice_cells(g: np.ndarray, c: np.ndarray, work: int = WORK) -> _LatticeCells | None:
    """Cell layout of a ``work x work`` frame whose sync cell coordinates are ``g . (x, y) / work + c``."""
    pix = np.arange(work, dtype=np.float64)
    y, x = np.meshgrid(pix, pix, indexing="ij")
    u = ((g[0, 0] * x + g[0, 1] * y) / work + c[0]).ravel()
    v = ((g[1, 0] * x + g[1, 1] * y) / work + c[1]).ravel()
    u -= np.floor(u.min())
    v -= np.floor(v.min())
    iu, iv = np.floor(u).astype(np.int64), np.floor(v).astype(np.int64)
    cu, cv = int(iu.max()) + 1, int(iv.max()) + 1
    if max(cu, cv) > _MAX_EXTENDED:
        return None
    idx = iv * cu + iu
    order = np.argsort(idx, kind="stable")
    cells, starts = np.unique(idx[order], return_index=True)
    weight = (np.sin(np.pi * (u - iu)) * np.sin(np.pi * (v - iv)))[order]
    cell_px = work / max(float(np.hypot(*g[0])), float(np.hypot(*g[1])))
    box = max(3, 2 * int(round(0.55 * cell_px)) + 1)
    return _LatticeCells(u, v, cu, cv, order, starts, cells, weight.astype(np.float32), box, float(np.linalg.det(g)))


@lru_cache(maxsize=64)
def _grid_cells(k: float, a: float, b: float) -> _LatticeCells:
    """Cell layout of an unrotated crop showing ``k`` of the marked frame's side, cell borders offset by (a, b) cells."""
    lc = _lattice_cells(np.array([[GRID * k, 0.0], [0.0, GRID * k]]), np.array([a, b]), WORK // 2)
    if lc is None:
        raise RuntimeError(f"crop scale {k} gives too large a cell grid")
    return lc


def _fft_size(n: int) -> int:
    """Smallest 2^a 3^b 5^c >= n (fast FFT lengths)."""
    while True:
        r = n
        for f in (2, 3, 5):
            while r % f == 0:
                r //= f
        if r == 1:
            return n
        n += 1


@lru_cache(maxsize=16)
def _padded_patterns(key: MarkKey, size: int) -> tuple[np.ndarray, np.ndarray]:
    """conj(FFT) of the key's sync signs (and mirrored) zero-padded to (SLOTS, size, size)."""
    sync = key.sync.reshape(SLOTS, GRID, GRID)
    out = []
    for p in (sync, sync[:, :, ::-1]):
        pat = np.zeros((SLOTS, size, size), np.float32)
        pat[:, :GRID, :GRID] = p
        f = np.conj(np.fft.rfftn(pat))
        f.setflags(write=False)
        out.append(f)
    return out[0], out[1]


def _cyclic(n: int, extent: int, size: int) -> np.ndarray:
    """Extended-grid indices (in 0..extent-1) covered by the marked frame under cyclic shift ``n``."""
    idx = (n + np.arange(GRID)) % size
    return idx[idx < extent]


def _unwrap(n: int, extent: int, size: int) -> int:
    """The shift (``n`` or ``n - size``) whose frame covers more of the visible cells without wrapping."""
    def cover(k: int) -> int:
        return max(0, min(extent, k + GRID) - max(0, k))

    return n if cover(n) >= cover(n - size) else n - size


def _conv_shift(a: np.ndarray, b: np.ndarray, size: int) -> np.ndarray:
    """[..., nv, nu] = sum_c a[..., c] * b[c - n] over (size, size) zero-padded grids (cyclic indices)."""
    fa = np.fft.rfft2(a, s=(size, size))
    fb = np.fft.rfft2(b, s=(size, size))
    return np.fft.irfft2(fa * np.conj(fb), s=(size, size))


@dataclass(frozen=True, eq=False)
class _Window:
    start: int  # index into the high-passed frames
    z: float
    p: float
    hypotheses: int  # hypotheses searched (the Bonferroni factor of ``p``)
    time: int  # index into TIME_HYPOTHESES
    phase: int  # slot of the window's first frame
    mirrored: bool
    crop: float  # visible fraction of the marked frame's side
    rotation: float  # degrees
    weighted: np.ndarray  # (frames, PAYLOAD_GRID**2) weighted, clipped payload cells under the best hypothesis

    @property
    def rate(self) -> float:
        p, q, _ = TIME_HYPOTHESES[self.time]
        return p / q

    def relative(self) -> np.ndarray:
        return _relative_slots(self.time, self.weighted.shape[0])


def _tail(z: float, terms: float) -> float:
    if terms >= _MIN_EFFECTIVE_TERMS:
        return _phi_sf(z)
    return math.exp(-z * z / 2) if z > 0 else 1.0


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
        self._lumas: list[np.ndarray] = []  # working luma of every frame (float16), for the lattice search
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
        y = working_luma(frame)
        self._vectors.append(_cell_vectors_of(y))
        self._lumas.append(y.astype(np.float16))

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
        windows = [self._window(d[a:b], self._highpassed_lumas(a, b) if len(self._lumas) >= n else None, a) for a, b in bounds]
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
        rate = best.rate
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
            crop=round(best.crop, 3) if synthetic else None,
            stride=(int(rate) if rate == int(rate) else round(rate, 4)) if synthetic else None,
            reason=reason,
            raw_identity=raw,
            mirrored=best.mirrored if synthetic else None,
            rotation=round(best.rotation, 2) if synthetic else None,
        )

    def _highpassed_lumas(self, a: int, b: int) -> np.ndarray:
        """Temporally high-passed working lumas of high-passed frames a..b-1 (decoded frames a..b+1)."""
        y = np.stack(self._lumas[a : b + 2]).astype(np.float32)
        return y[1:-1] - 0.5 * (y[:-2] + y[2:])

    def _window(self, d: np.ndarray, dl: np.ndarray | None, start: int) -> _Window:
        """Best hypothesis of one window.

        Four families of hypotheses, all scored with the key: the centred crops at the native rate
        or every other frame, unmirrored (the searches of mark format 1's first detector); the
        same crops mirrored and at the other frame rates; the lattice estimated from the
        high-passed working frames ``dl`` (rotations, any scale and shift); and a grid of scales
        and sub-cell offsets with every whole-cell shift (large and off-centre crops).  Each
        family's p-value is Bonferroni-corrected over its own hypotheses and divided by its share
        of the error budget (:data:`FAMILY_SHARES`, summing to 1): a weighted Bonferroni bound.
        """
        m = d.shape[0]
        z, x, terms = window_statistics(d, self.key)

        def centred(zf: np.ndarray, family: str) -> dict:
            t, fl, k, ph = np.unravel_index(int(np.argmax(zf)), zf.shape)
            t = int(base_times[t]) if family == "base" else int(t)
            weighted = x[:, k, _SYNC_CELLS:].reshape(m, PAYLOAD_GRID, PAYLOAD_GRID)
            if fl and family != "base":
                weighted = weighted[:, :, ::-1]
            zb = float(zf.max())
            return dict(z=zb, terms=float(terms[t, k]), time=t, phase=int(ph), mirrored=bool(fl and family != "base"),
                        crop=CROPS[k], rotation=0.0, weighted=weighted.reshape(m, -1), family=family, hypotheses=zf.size)  # fmt: skip

        base_times = np.array([0, 1])  # every frame, every other frame
        found = [centred(z[base_times, :1], "base")]
        ext = z.copy()
        ext[base_times, 0] = -np.inf
        found.append(centred(ext, "centred"))
        found[-1]["hypotheses"] = z.size - z[base_times, :1].size
        if dl is not None and m >= MIN_FRAMES:
            lat = self._lattice_search(dl)
            if lat is not None:
                lat["family"] = "lattice"
                found.append(lat)
            crop = self._crop_search(dl)
            crop["family"] = "crop"
            found.append(crop)
        for f in found:
            share = FAMILY_SHARES[f["family"]]
            f["p"] = min(1.0, _tail(f["z"], f.get("terms", 0.0)) * f["hypotheses"] / share) if f["z"] > -math.inf else 1.0
        best = min(found, key=lambda f: (f["p"], -f["z"]))
        if "lattice" in best:
            lc, nv, nu = best["lattice"]
            best["weighted"] = self._payload_cells(best.get("frames", dl), lc, nv, nu, best["mirrored"])
        n_hyp = sum(f["hypotheses"] for f in found)
        return _Window(start, best["z"], best["p"], n_hyp, best["time"], best["phase"], best["mirrored"], best["crop"],
                       best["rotation"], np.ascontiguousarray(best["weighted"], dtype=np.float64))  # fmt: skip

    def _lattice_search(self, dl: np.ndarray) -> dict | None:
        """The lattice estimated from the window's own mark energy (no key), searched with every
        whole-cell shift, both mirror readings and every time hypothesis."""
        e2 = dl * dl
        cap = _ENERGY_CLIP * float(np.median(e2)) + 1e-6
        energy = np.minimum(e2, cap).mean(axis=0).astype(np.float64)
        lat = mark_lattice(energy)
        if lat is None:
            return None
        lc = _lattice_cells(*lat)
        if lc is None:
            return None
        found = self._shift_search(dl - _box_stack(dl, lc.box), lc, range(len(TIME_HYPOTHESES)))
        if found is not None:
            g = lat[0]
            found["rotation"] = -math.degrees(math.atan2(g[0, 1], g[0, 0]))
        return found

    def _crop_search(self, dl: np.ndarray) -> dict:
        """Crops (0.46x to 1x of the marked frame visible, anywhere in it) at the native frame rate or
        every other frame: a grid of scales and half-cell offsets, every whole-cell shift by FFT, on
        half-resolution frames and (coarse pass) the window's first half; then the best geometry
        again on the whole window with every time hypothesis."""
        m = dl.shape[0]
        half = 0.25 * (dl[:, 0::2, 0::2] + dl[:, 1::2, 0::2] + dl[:, 0::2, 1::2] + dl[:, 1::2, 1::2])
        hp = half - _box_stack(half, _CROP_BOX)
        coarse = hp[: max(MIN_FRAMES, m // 2)]
        best: dict | None = None
        n_hyp = 0
        quick = range(2)  # TIME_HYPOTHESES 0 and 1: every frame, every other frame
        for k in CROP_SCALES:
            for a in (0.0, 0.5):
                for b in (0.0, 0.5):
                    lc = _grid_cells(k, a, b)
                    f = self._shift_search(coarse, lc, quick)
                    if f is None:
                        continue
                    # counted as if every time hypothesis had been searched on the whole window
                    n_hyp += f["hypotheses"] // len(quick) * len(TIME_HYPOTHESES)
                    if best is None or f["z"] > best["z"]:
                        best = f
        if best is None:
            return dict(z=-math.inf, hypotheses=0)
        full = self._shift_search(hp, best["lattice"][0], range(len(TIME_HYPOTHESES)))
        if full is None:
            return dict(z=-math.inf, hypotheses=n_hyp)
        full["hypotheses"] = n_hyp
        full["frames"] = half
        return full

    def _shift_search(self, hp: np.ndarray, lc: _LatticeCells, times) -> dict | None:
        """Best (time, phase, mirror, whole-cell shift) for frames ``hp`` under cell layout ``lc``."""
        m = hp.shape[0]
        vals = hp.reshape(m, -1)[:, lc.order] * lc.weight
        cells = np.zeros((m, lc.cv * lc.cu), np.float32)
        cells[:, lc.cells] = np.add.reduceat(vals, lc.starts, axis=1)
        x = _normalise(cells.astype(np.float64)).astype(np.float32)
        # cyclic shifts on a grid at least as large as the visible one and the frame: every sign then
        # meets at most one visible cell under any shift (the null stays a unit Rademacher sum), and a
        # shift that puts the visible cells inside the frame (or the frame inside them) wraps nothing
        size = _fft_size(max(lc.cu, lc.cv, GRID + 2))
        times = list(times)
        a = _slot_matrix(m).reshape(len(TIME_HYPOTHESES), SLOTS, m)[times].reshape(-1, m)
        groups = (a @ x).reshape(len(times), SLOTS, lc.cv, lc.cu)
        # which shifts n put most of the visible cells on the marked frame
        frame_box = np.ones((GRID, GRID))
        vis = np.zeros(lc.cv * lc.cu)
        vis[lc.cells] = 1.0
        overlap = np.rint(_conv_shift(vis.reshape(lc.cv, lc.cu), frame_box, size))
        need = max(_MIN_OVERLAP_CELLS, _MIN_OVERLAP * min(float(vis.sum()), GRID * GRID))
        allowed = overlap >= need
        n_allowed = int(allowed.sum())
        if n_allowed == 0:
            return None
        g2 = groups.astype(np.float64) ** 2
        den2 = _conv_shift(g2.sum(axis=1), frame_box, size)  # (t, L, L)
        fg = np.fft.rfftn(groups, s=(SLOTS, size, size), axes=(1, 2, 3))
        pats = _padded_patterns(self.key, size)
        best = None
        for fl in (0, 1):
            corr = np.fft.irfftn(fg * pats[fl][None], s=(SLOTS, size, size), axes=(1, 2, 3))
            zz = corr / np.sqrt(np.maximum(den2, 1e-12))[:, None]
            zz[:, :, ~allowed] = -np.inf
            t, tau, nv, nu = np.unravel_index(int(np.argmax(zz)), zz.shape)
            zb = float(zz[t, tau, nv, nu])
            if best is None or zb > best[0]:
                best = (zb, int(t), int(tau), int(nv), int(nu), fl)
        zb, t, tau, nv, nu, fl = best
        sel = g2[t][:, _cyclic(nv, lc.cv, size)][:, :, _cyclic(nu, lc.cu, size)]
        terms = float(den2[t, nv, nu] ** 2 / max(float((sel * sel).sum()), 1e-300))
        nv, nu = _unwrap(nv, lc.cv, size), _unwrap(nu, lc.cu, size)
        scale = GRID / math.sqrt(abs(lc.det))  # marked-frame sides per working frame
        return dict(z=zb, terms=terms, time=times[t], phase=(-tau) % SLOTS, mirrored=bool(fl), crop=1.0 / scale,
                    rotation=0.0, lattice=(lc, nv, nu), hypotheses=len(times) * 2 * SLOTS * n_allowed)  # fmt: skip

    @staticmethod
    def _payload_cells(dl: np.ndarray, lc: _LatticeCells, nv: int, nu: int, mirrored: bool) -> np.ndarray:
        """(frames, PAYLOAD_GRID**2) weighted, clipped payload cell sums under a found geometry."""
        um = lc.u - nu
        if mirrored:
            um = GRID - um
        vm = lc.v - nv
        pu, pv = um / 2.0, vm / 2.0
        iu, iv = np.floor(pu).astype(np.int64), np.floor(pv).astype(np.int64)
        inside = np.flatnonzero((iu >= 0) & (iu < PAYLOAD_GRID) & (iv >= 0) & (iv < PAYLOAD_GRID))
        m = dl.shape[0]
        out = np.zeros((m, PAYLOAD_GRID * PAYLOAD_GRID))
        if inside.size:
            idx = (iv * PAYLOAD_GRID + iu)[inside]
            order = np.argsort(idx, kind="stable")
            present, starts = np.unique(idx[order], return_index=True)
            w = (np.sin(np.pi * (pu - iu)) * np.sin(np.pi * (pv - iv)))[inside][order]
            vals = dl.reshape(m, -1)[:, inside][:, order].astype(np.float64)
            vals -= vals.mean(axis=1, keepdims=True)
            out[:, present] = np.add.reduceat(vals * w, starts, axis=1)
        return _normalise(out)

    def _decode(self, windows: list[_Window]) -> tuple[WatermarkPayload | None, bool, int | None, int | None, bytes]:
        key = self.key
        id_soft = np.zeros(ID_CODE.coded_bits)
        # per 64-frame epoch: (frames, soft values, slot of the group's first frame, its position, rate)
        counters: list[tuple[int, np.ndarray, int, int, float]] = []
        for w in windows:
            m = w.weighted.shape[0]
            absolute = w.phase + w.relative()
            slots = absolute % SLOTS
            soft = np.zeros((m, CHIPS))
            for j in range(m):
                s = slots[j]
                soft[j] = np.bincount(key.slot_chip[s], weights=key.slot_sign[s] * w.weighted[j], minlength=CHIPS)
            id_soft += soft[:, : ID_CODE.coded_bits].sum(axis=0)
            epoch = absolute // EPOCH_FRAMES
            for e in np.unique(epoch):
                sel = np.flatnonzero(epoch == e)
                counters.append(
                    (len(sel), soft[sel, ID_CODE.coded_bits :].sum(axis=0), int(slots[sel[0]]), w.start + int(sel[0]), w.rate)
                )
        message, ok = ID_CODE.decode(id_soft)
        if not ok:
            return None, False, None, None, message
        payload = WatermarkPayload(message[:4], message[4:7])
        counter = first = None
        for _, soft, slot, pos, rate in sorted(counters, key=lambda c: -c[0]):
            c_msg, c_ok = COUNTER_CODE.decode(soft)
            if c_ok:
                counter = c_msg[0]
                # session index of decoded frame 0, assuming no cut before this group: the group's
                # first frame is high-passed frame ``pos``, i.e. decoded frame ``pos + 1``
                first = (counter * EPOCH_FRAMES + slot - int(round(rate * (pos + 1)))) % (256 * EPOCH_FRAMES)
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
