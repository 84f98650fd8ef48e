"""One-Euro filtering of landmark tracks (Casiez, Roussel & Vogel, CHI 2012).

Causal: each output depends only on the current and past inputs.  The filter is made
scale-invariant by expressing speeds in face sizes per second, so the same parameters
suit a 256x256 crop and a small face in a 1080p frame.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["OneEuroFilter"]


def _alpha(cutoff: np.ndarray | float, dt: float) -> np.ndarray | float:
    tau = 1.0 / (2.0 * math.pi * np.asarray(cutoff))
    return 1.0 / (1.0 + tau / dt)


class OneEuroFilter:
    """Vectorised One-Euro filter over an array of any shape.

    ``min_cutoff`` (Hz) sets smoothing at rest (lower = steadier); ``beta`` raises the
    cut-off with speed (higher = less lag on fast motion).  ``scale`` (e.g. the face's
    inter-ocular distance in pixels) normalises speeds.
    """

    def __init__(self, min_cutoff: float = 1.0, beta: float = 20.0, d_cutoff: float = 1.0) -> None:
        if min_cutoff <= 0 or d_cutoff <= 0 or beta < 0:
            raise ValueError("min_cutoff and d_cutoff must be > 0 and beta >= 0")
        self.min_cutoff = min_cutoff
        self.beta = beta
        self.d_cutoff = d_cutoff
        self.reset()

    def reset(self) -> None:
        """Forget the past (after the track is lost)."""
        self._x: np.ndarray | None = None
        self._dx: np.ndarray | None = None
        self._t: float | None = None

    def __call__(self, x: np.ndarray, t: float, scale: float = 1.0) -> np.ndarray:
        """Filter sample ``x`` taken at time ``t`` (seconds); returns a new array."""
        x = np.asarray(x, dtype=np.float32)
        if self._x is None or self._t is None or t <= self._t:
            self._x, self._dx, self._t = x.copy(), np.zeros_like(x), t
            return x.copy()
        dt = t - self._t
        dx = (x - self._x) / dt
        self._dx = self._dx + _alpha(self.d_cutoff, dt) * (dx - self._dx)
        speed = np.abs(self._dx) / max(scale, 1e-6)
        a = _alpha(self.min_cutoff + self.beta * speed, dt)
        self._x = (self._x + a * (x - self._x)).astype(np.float32)
        self._t = t
        return self._x.copy()
