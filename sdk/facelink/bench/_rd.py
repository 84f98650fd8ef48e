"""Rate-quality curves: Bjøntegaard delta rate and bandwidth saving at equal quality.

Curves are (rate in kbit/s, quality) points with quality "higher is better" (negate a
distortion such as AKD before calling).  Only the *efficient* points count: a point whose
quality is not above that of every cheaper point is dropped (:func:`efficient_front`), so
the quality is strictly increasing with rate and log-rate is a function of quality.

:func:`bd_rate` is the Bjøntegaard delta rate (VCEG-M33) in its piecewise-cubic form
(as in JVET's common test conditions and VCEG-AL22): log10(rate) is interpolated as a
monotone piecewise cubic Hermite function of quality (Fritsch-Carlson slopes, "PCHIP")
and the difference of the two curves is averaged over the quality interval where both
exist.  Two points per curve suffice (the cubic then reduces to a line).  Curves that do
not overlap in quality have no BD-rate: the result says so, and :func:`rate_at_quality`
gives the bounded alternative.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["BDResult", "RateAtQuality", "bd_rate", "efficient_front", "pchip", "rate_at_quality"]


def efficient_front(kbps: Sequence[float], quality: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """The points that no cheaper point matches in quality, sorted by rate (finite, positive rates only)."""
    r = np.asarray(kbps, np.float64)
    q = np.asarray(quality, np.float64)
    if r.shape != q.shape or r.ndim != 1:
        raise ValueError("kbps and quality must be 1-D sequences of the same length")
    ok = np.isfinite(r) & np.isfinite(q) & (r > 0)
    r, q = r[ok], q[ok]
    order = np.lexsort((-q, r))  # by rate, best quality first among equal rates
    keep_r: list[float] = []
    keep_q: list[float] = []
    for i in order:
        if not keep_q or q[i] > keep_q[-1]:
            if keep_r and r[i] == keep_r[-1]:
                continue
            keep_r.append(float(r[i]))
            keep_q.append(float(q[i]))
    return np.array(keep_r), np.array(keep_q)


def _pchip_slopes(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    h = np.diff(x)
    delta = np.diff(y) / h
    n = len(x)
    d = np.zeros(n)
    if n == 2:
        d[:] = delta[0]
        return d
    for k in range(1, n - 1):
        if delta[k - 1] * delta[k] > 0:
            w1 = 2 * h[k] + h[k - 1]
            w2 = h[k] + 2 * h[k - 1]
            d[k] = (w1 + w2) / (w1 / delta[k - 1] + w2 / delta[k])

    def end(h0: float, h1: float, d0: float, d1: float) -> float:
        s = ((2 * h0 + h1) * d0 - h0 * d1) / (h0 + h1)
        if np.sign(s) != np.sign(d0):
            return 0.0
        if np.sign(d0) != np.sign(d1) and abs(s) > abs(3 * d0):
            return 3 * d0
        return float(s)

    d[0] = end(h[0], h[1], delta[0], delta[1])
    d[-1] = end(h[-1], h[-2], delta[-1], delta[-2])
    return d


def pchip(x: Sequence[float], y: Sequence[float], at: np.ndarray) -> np.ndarray:
    """Monotone piecewise cubic Hermite interpolation (Fritsch-Carlson) of y(x) at ``at`` (within [x0, xn])."""
    xs = np.asarray(x, np.float64)
    ys = np.asarray(y, np.float64)
    if len(xs) < 2 or np.any(np.diff(xs) <= 0):
        raise ValueError("pchip needs at least two points with strictly increasing x")
    d = _pchip_slopes(xs, ys)
    t = np.asarray(at, np.float64)
    k = np.clip(np.searchsorted(xs, t, side="right") - 1, 0, len(xs) - 2)
    h = xs[k + 1] - xs[k]
    s = (t - xs[k]) / h
    h00 = (1 + 2 * s) * (1 - s) ** 2
    h10 = s * (1 - s) ** 2
    h01 = s * s * (3 - 2 * s)
    h11 = s * s * (s - 1)
    return h00 * ys[k] + h10 * h * d[k] + h01 * ys[k + 1] + h11 * h * d[k + 1]


@dataclass(frozen=True)
class BDResult:
    """BD-rate of a test curve against an anchor: ``value`` (-0.5 = test needs half the rate) or None with ``note``."""

    value: float | None
    note: str
    overlap: tuple[float, float] | None

    def as_dict(self) -> dict:
        return {
            "bd_rate": None if self.value is None else round(self.value, 5),
            "note": self.note,
            "overlap": None if self.overlap is None else [round(self.overlap[0], 6), round(self.overlap[1], 6)],
        }


_SAMPLES = 2001
_trapezoid = getattr(np, "trapezoid", None) or np.trapz  # numpy 2 renamed trapz


def bd_rate(
    anchor_kbps: Sequence[float],
    anchor_quality: Sequence[float],
    test_kbps: Sequence[float],
    test_quality: Sequence[float],
) -> BDResult:
    """Average rate difference of ``test`` relative to ``anchor`` at equal quality (Bjøntegaard)."""
    ra, qa = efficient_front(anchor_kbps, anchor_quality)
    rt, qt = efficient_front(test_kbps, test_quality)
    if len(ra) < 2 or len(rt) < 2:
        which = "anchor" if len(ra) < 2 else "test"
        return BDResult(None, f"the {which} curve has fewer than two points of increasing quality", None)
    lo = max(qa[0], qt[0])
    hi = min(qa[-1], qt[-1])
    if not hi > lo:
        return BDResult(
            None,
            f"no quality overlap (test {qt[0]:.4g}..{qt[-1]:.4g}, anchor {qa[0]:.4g}..{qa[-1]:.4g})",
            None,
        )
    q = np.linspace(lo, hi, _SAMPLES)
    diff = pchip(qt, np.log10(rt), q) - pchip(qa, np.log10(ra), q)
    avg = float(_trapezoid(diff, q) / (hi - lo))
    return BDResult(10.0**avg - 1.0, "", (float(lo), float(hi)))


@dataclass(frozen=True)
class RateAtQuality:
    """The rate a curve needs for a quality: ``bound`` is "exact", "floor" (the curve's lowest
    rate already gives better quality) or "ceiling" (the quality is above the curve's best)."""

    kbps: float
    bound: str


def rate_at_quality(kbps: Sequence[float], quality: Sequence[float], target: float) -> RateAtQuality | None:
    """Interpolated rate (PCHIP in log-rate) at which the curve reaches ``target`` quality."""
    r, q = efficient_front(kbps, quality)
    if len(r) == 0 or not math.isfinite(target):
        return None
    if target <= q[0]:
        return RateAtQuality(float(r[0]), "exact" if target == q[0] else "floor")
    if target > q[-1]:
        return RateAtQuality(float(r[-1]), "ceiling")
    return RateAtQuality(float(10.0 ** pchip(q, np.log10(r), np.array([target]))[0]), "exact")
