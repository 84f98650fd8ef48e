"""Content fingerprints: what the receiver signs about the *pixels* it rendered, and the check of a video against them.

Pure core: arrays in, arrays and dataclasses out; no files, clocks or codecs.

The watermark's payload can be stamped on any video by anyone (the mark key is public),
so a manifest that only names a session proves nothing about the pixels beside it.  The
receiver therefore signs, in the manifest, a compact perceptual fingerprint of every frame
it wrote, and ``facelink verify`` compares it with the video:

* per frame: the luma (BT.601) averaged over a 16 x 16 grid of cells laid relative to the
  frame (area averages, so a rescaled copy lands on the same cells);
* per segment of ``segment_frames`` consecutive output frames (8, doubled until the whole
  output fits in :data:`MAX_SEGMENTS` segments): the mean of its frames' grids, rounded to
  integer grey levels (one byte per cell, 256 bytes per segment);
* stored as ``base64(zlib(first grid, then each grid minus the previous one, mod 256))``.

A video matches when there is an alignment (the recording's frame index of its first
frame) under which *every* segment it covers agrees with the signed one, after one gain
(0.8 to 1.25) and offset (at most 32 grey levels) is taken out (a re-encode's level drift,
TV/PC range confusion; the medians of per-segment fits, so a spliced-in minority cannot
move them): RMS over the 256 cells at most :data:`TOL_RMS` and no cell off by more than
:data:`TOL_MAX` grey levels.  Segments the video covers only in part (an excerpt cut
inside a segment: fewer than ``segment_frames`` frames at either end) are compared
coarsely (RMS at most 5x: another scene fails, motion inside the segment passes) and
counted in ``edge_frames``.  Calibration: ``benchmarks/provenance_forgery.py``.
"""

from __future__ import annotations

import base64
import zlib
from dataclasses import dataclass

import numpy as np

__all__ = [
    "CONTENT_METHOD",
    "GRID",
    "MAX_SEGMENTS",
    "SEGMENT_FRAMES",
    "TOL_MAX",
    "TOL_RMS",
    "ContentFingerprint",
    "ContentLog",
    "ContentMatch",
    "frame_grid",
    "match_content",
]

CONTENT_METHOD = "luma-grid16-seg-v1"
#: cells per side of the per-frame luma grid
GRID = 16
#: frames per segment to start with (doubled while the output has more than MAX_SEGMENTS segments)
SEGMENT_FRAMES = 8
#: most segments one manifest holds (256 bytes each before compression)
MAX_SEGMENTS = 8192
#: most segments a receiver keeps while recording (halved by merging pairs beyond)
_LIVE_SEGMENTS = 2 * MAX_SEGMENTS
#: a segment matches when the RMS of its 256 cell differences is at most this (grey levels) ...
TOL_RMS = 3.0
#: ... and no cell differs by more than this
TOL_MAX = 10.0
#: brightness offset (grey levels) and gain range taken out before comparing
TOL_OFFSET = 32.0
_GAIN = (0.8, 1.25)
#: segments the video covers only in part (an excerpt cut inside a segment: the mean of fewer
#: frames, which differs from the whole segment's mean by the motion in it) are checked
#: coarsely: RMS at most this many times TOL_RMS (another scene fails), no per-cell bound
_EDGE_RMS, _EDGE_MAX = 5.0, np.inf
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float64)
_SEG_BYTES = GRID * GRID
_MAX_CANDIDATES = 16


def _area_matrix(n: int, cells: int) -> np.ndarray:
    """(cells, n) weights: row c averages the pixels [c n / cells, (c + 1) n / cells) with fractional edges."""
    edges = np.arange(cells + 1, dtype=np.float64) * n / cells
    pix = np.arange(n + 1, dtype=np.float64)
    lo = np.maximum(pix[None, :-1], edges[:-1, None])
    hi = np.minimum(pix[None, 1:], edges[1:, None])
    w = np.clip(hi - lo, 0.0, None)
    return w / w.sum(axis=1, keepdims=True)


_MATS: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}


def frame_grid(image: np.ndarray) -> np.ndarray:
    """(GRID, GRID) float64 luma cell means of an (H, W, 3) RGB or (H, W) grey uint8 frame."""
    if not isinstance(image, np.ndarray):
        raise TypeError(f"image must be a numpy array, got {type(image).__name__}")
    if image.ndim == 3 and image.shape[2] >= 3:
        y = image[..., :3].astype(np.float64) @ _LUMA
    elif image.ndim == 2:
        y = image.astype(np.float64)
    else:
        raise ValueError(f"image must be (H, W, 3) or (H, W), got shape {image.shape}")
    h, w = y.shape
    if h < GRID or w < GRID:
        raise ValueError(f"frame {w}x{h} is smaller than the {GRID}x{GRID} content grid")
    mats = _MATS.get((h, w))
    if mats is None:
        mats = _MATS[(h, w)] = (_area_matrix(h, GRID), _area_matrix(w, GRID))
    return mats[0] @ y @ mats[1].T


@dataclass(frozen=True)
class ContentFingerprint:
    """The signed fingerprint of an output video: ``frames`` frames in segments of ``segment_frames``."""

    frames: int
    segment_frames: int
    grids: np.ndarray  # (segments, GRID, GRID) uint8

    @property
    def segments(self) -> int:
        return int(self.grids.shape[0])

    def bounds(self, k: int) -> tuple[int, int]:
        """Output frames [start, stop) of segment ``k``."""
        return k * self.segment_frames, min((k + 1) * self.segment_frames, self.frames)

    def as_body(self) -> dict:
        flat = self.grids.reshape(self.segments, _SEG_BYTES).astype(np.int16)
        delta = np.diff(flat, axis=0, prepend=np.zeros((1, _SEG_BYTES), np.int16)) % 256
        data = base64.b64encode(zlib.compress(delta.astype(np.uint8).tobytes(), 9)).decode("ascii")
        return {
            "method": CONTENT_METHOD,
            "grid": GRID,
            "segment_frames": self.segment_frames,
            "frames": self.frames,
            "segments": self.segments,
            "data": data,
        }

    @classmethod
    def from_body(cls, body: dict) -> ContentFingerprint:
        """Decode ``body.content`` (already type-checked by the manifest parser); ValueError if inconsistent."""
        if body["method"] != CONTENT_METHOD or body["grid"] != GRID:
            raise ValueError(f"content fingerprint method {str(body['method'])[:40]!r} / grid {body['grid']} is not {CONTENT_METHOD} / {GRID}")
        frames, seg, n = body["frames"], body["segment_frames"], body["segments"]
        if seg < 1 or frames < 1 or n != -(-frames // seg) or n > MAX_SEGMENTS:
            raise ValueError("content fingerprint: frames, segment_frames and segments disagree")
        try:
            raw = base64.b64decode(body["data"].encode("ascii"), validate=True)
            d = zlib.decompressobj()
            flat = d.decompress(raw, n * _SEG_BYTES + 1)
        except (ValueError, zlib.error):
            raise ValueError("content fingerprint data is not base64 zlib") from None
        if len(flat) != n * _SEG_BYTES or d.unconsumed_tail or not d.eof or d.unused_data:
            raise ValueError("content fingerprint data has the wrong length")
        delta = np.frombuffer(flat, np.uint8).reshape(n, _SEG_BYTES).astype(np.int64)
        grids = (np.cumsum(delta, axis=0) % 256).astype(np.uint8).reshape(n, GRID, GRID)
        return cls(frames, seg, grids)


class ContentLog:
    """Accumulates the output frames' grids, in output order, into segments (the receiver side)."""

    def __init__(self, segment_frames: int = SEGMENT_FRAMES) -> None:
        self.segment_frames = segment_frames
        self.frames = 0
        self._sums: list[np.ndarray] = []
        self._counts: list[int] = []

    def add(self, image: np.ndarray) -> None:
        """Record one frame exactly as it is written to the output."""
        self.add_grid(frame_grid(image))

    def add_grid(self, grid: np.ndarray) -> None:
        if not self._counts or self._counts[-1] == self.segment_frames:
            self._sums.append(np.zeros((GRID, GRID), np.float64))
            self._counts.append(0)
        self._sums[-1] += grid
        self._counts[-1] += 1
        self.frames += 1
        if len(self._sums) > _LIVE_SEGMENTS:
            self._merge()

    def _merge(self) -> None:
        sums, counts = self._sums, self._counts
        self._sums = [sums[i] + sums[i + 1] if i + 1 < len(sums) else sums[i] for i in range(0, len(sums), 2)]
        self._counts = [counts[i] + (counts[i + 1] if i + 1 < len(counts) else 0) for i in range(0, len(counts), 2)]
        self.segment_frames *= 2

    def fingerprint(self) -> ContentFingerprint | None:
        """The fingerprint of everything recorded so far (None before the first frame)."""
        if not self.frames:
            return None
        sums, counts, seg = list(self._sums), list(self._counts), self.segment_frames
        while len(sums) > MAX_SEGMENTS:
            sums = [sums[i] + sums[i + 1] if i + 1 < len(sums) else sums[i] for i in range(0, len(sums), 2)]
            counts = [counts[i] + (counts[i + 1] if i + 1 < len(counts) else 0) for i in range(0, len(counts), 2)]
            seg *= 2
        grids = np.stack([s / c for s, c in zip(sums, counts)])
        return ContentFingerprint(self.frames, seg, np.clip(np.rint(grids), 0, 255).astype(np.uint8))


@dataclass(frozen=True)
class ContentMatch:
    """The comparison of a video's frames with a signed fingerprint."""

    matched: bool
    frames: int  # frames of the video compared
    offset: int | None  # the recording's frame index of the video's first frame (best alignment)
    recording_frames: int
    segments_checked: int
    segments_failed: int
    worst_rms: float | None
    worst_max: float | None
    reason: str
    gain: float | None = None  # levels of the video -> signed levels (1: unchanged)
    level_offset: float | None = None
    edge_frames: int = 0  # frames in segments the video covers only in part (checked coarsely)

    @property
    def whole(self) -> bool:
        """The video covers the whole recording (not an excerpt)."""
        return self.matched and self.offset == 0 and self.frames == self.recording_frames

    def as_dict(self) -> dict:
        return {
            "matched": self.matched,
            "whole": self.whole,
            "frames": self.frames,
            "offset": self.offset,
            "recording_frames": self.recording_frames,
            "segments_checked": self.segments_checked,
            "segments_failed": self.segments_failed,
            "worst_rms": None if self.worst_rms is None else round(self.worst_rms, 2),
            "worst_max": None if self.worst_max is None else round(self.worst_max, 2),
            "gain": None if self.gain is None else round(self.gain, 3),
            "level_offset": None if self.level_offset is None else round(self.level_offset, 2),
            "edge_frames": self.edge_frames,
            "tolerance": {"rms": TOL_RMS, "max": TOL_MAX},
            "reason": self.reason,
        }


def _evaluate(fp: ContentFingerprint, ref: np.ndarray, csum: np.ndarray, m: int, o: int) -> tuple:
    """(checked, failed, worst rms, worst max, badness, gain, offset, edge frames) of the video at offset ``o``.

    A copy may be uniformly brighter or darker, or have its levels stretched (TV / PC range
    confusion, a re-encode's rounding drift of a grey level or two): one gain and offset
    for the whole video, fitted by least squares and bounded, is taken out first; what
    must match within tolerance is every segment's structure.
    """
    s = fp.segment_frames
    ks = np.arange(o // s, (o + m - 1) // s + 1)
    a = np.minimum(ks * s, fp.frames)
    b = np.minimum((ks + 1) * s, fp.frames)
    lo, hi = np.maximum(a, o), np.minimum(b, o + m)
    means = (csum[hi - o] - csum[lo - o]) / (hi - lo)[:, None, None]
    target = ref[ks]
    edge = (lo != a) | (hi != b)
    use = ~edge if (~edge).any() else np.ones_like(edge)
    # per-segment least-squares fits, then the median over segments: a spliced-in minority
    # of foreign segments cannot drag the levels of the genuine ones
    x = means[use].reshape(int(use.sum()), -1)
    y = target[use].reshape(int(use.sum()), -1)
    xc = x - x.mean(axis=1, keepdims=True)
    yc = y - y.mean(axis=1, keepdims=True)
    vx = np.sum(xc * xc, axis=1)
    ok = vx > 1e-6 * x.shape[1]
    gains = np.sum(xc * yc, axis=1)[ok] / vx[ok]
    gain = float(np.median(gains)) if gains.size else 1.0
    gain = min(max(gain, _GAIN[0]), _GAIN[1])
    offset = float(np.median(np.mean(y - gain * x, axis=1)))
    offset = min(max(offset, -TOL_OFFSET), TOL_OFFSET)
    d = (gain * means + offset - target).reshape(len(ks), -1)
    rms = np.sqrt(np.mean(d * d, axis=1))
    mx = np.max(np.abs(d), axis=1)
    tr = np.where(edge, TOL_RMS * _EDGE_RMS, TOL_RMS)
    tm = np.where(edge, TOL_MAX * _EDGE_MAX, TOL_MAX)
    failed = int(np.count_nonzero((rms > tr) | (mx > tm)))
    badness = float(max(np.max(rms / tr), np.max(np.where(np.isfinite(tm), mx / tm, 0.0))))
    full = ~edge
    worst_rms = float(rms[full].max()) if full.any() else float(rms.max())
    worst_max = float(mx[full].max()) if full.any() else float(mx.max())
    edge_frames = int(np.sum((hi - lo)[edge]))
    return len(ks), failed, worst_rms, worst_max, badness, gain, offset, edge_frames


def match_content(fp: ContentFingerprint, grids: np.ndarray, *, hints: tuple[int, ...] = ()) -> ContentMatch:
    """Does the video whose per-frame grids (:func:`frame_grid`) are ``grids`` show what ``fp`` signed?

    Alignments tried: 0 (a whole copy), ``hints`` (e.g. from the watermark's frame counter)
    and the best few found by a coarse search over every offset.  The video must lie
    inside the recording: frames beyond it can match nothing.
    """
    g = np.asarray(grids, dtype=np.float64)
    m = int(g.shape[0]) if g.ndim == 3 else 0
    if m == 0:
        return ContentMatch(False, 0, None, fp.frames, 0, 0, None, None, "no frames to compare", None, None)
    if g.shape[1:] != (GRID, GRID):
        raise ValueError(f"grids must be (n, {GRID}, {GRID})")
    if m > fp.frames:
        return ContentMatch(
            False, m, None, fp.frames, 0, 0, None, None,
            f"the video has {m} frames, the signed recording {fp.frames}: it holds frames the receiver did not write", None, None,
        )  # fmt: skip
    ref = fp.grids.astype(np.float64)
    csum = np.concatenate([np.zeros((1, GRID, GRID)), np.cumsum(g, axis=0)])
    last = fp.frames - m
    cands = {0} | {h for h in hints if 0 <= h <= last}
    if last > 0:
        cands |= set(_screen(fp, ref, g, last))
    best = None
    for o in sorted(cands):
        r = _evaluate(fp, ref, csum, m, o)
        if not np.isfinite(r[4]):
            continue
        if best is None or r[4] < best[1][4]:
            best = (o, r)
    o, (checked, failed, wr, wm, _, gain, offset, edge) = best  # type: ignore[misc]
    if failed == 0:
        reason = "every segment within tolerance"
        return ContentMatch(True, m, o, fp.frames, checked, 0, wr, wm, reason, gain, offset, edge)
    reason = f"{failed} of {checked} segments differ from the signed content (best alignment: recording frame {o})"
    return ContentMatch(False, m, o, fp.frames, checked, failed, wr, wm, reason, gain, offset, edge)


def _screen(fp: ContentFingerprint, ref: np.ndarray, g: np.ndarray, last: int) -> list[int]:
    """The offsets whose rough distance (a few video frames against their segment means) is smallest."""
    m = g.shape[0]
    probe = np.unique(np.linspace(0, min(m, 8 * fp.segment_frames) - 1, num=min(m, 8)).astype(np.int64))
    pg = g[probe].reshape(len(probe), -1)
    flat = ref.reshape(fp.segments, -1)
    scores = np.empty(last + 1)
    step = 1024
    for start in range(0, last + 1, step):
        offs = np.arange(start, min(last + 1, start + step))
        seg = (offs[:, None] + probe[None, :]) // fp.segment_frames  # (n_off, n_probe)
        d = flat[seg] - pg[None, :, :]
        scores[start : start + len(offs)] = np.sqrt(np.mean(d * d, axis=(1, 2)))
    k = min(_MAX_CANDIDATES, last + 1)
    return [int(i) for i in np.argpartition(scores, k - 1)[:k]]
