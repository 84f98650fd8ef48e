"""What speech does not determine: head motion, blinks and gaze, made up naturally.

The lips follow the speech (:mod:`._model`); a head that only moves its lips looks dead, and
one that loops a recorded motion looks mechanical.  :class:`IdleMotion` draws, from a seeded
random generator, motion with the statistics of people talking to a camera:

* **Head**: per axis the sum of two Ornstein-Uhlenbeck processes (a slow drift, time constant
  ``SLOW_S``, and faster sway, ``FAST_S``) plus small nods on the speech's stressed syllables
  (rises of its loudness).  Amplitudes (``HEAD_STD_DEG``) are the median per-clip standard
  deviations of yaw, pitch and roll over the training persons' talking clips (tracked by
  FaceLink), halved for ``calm`` and 1.5x for ``lively``.
* **Blinks**: intervals from a gamma distribution (mean ``BLINK_MEAN_S``: about 17 a minute,
  in the range reported for conversation), never closer than 0.8 s; each blink closes in
  ~70 ms, stays shut ~40 ms and opens in ~130 ms, both eyes together.
* **Gaze**: fixations held 0.6-3 s with small saccades between them (a few hundredths of an
  eye width), the eyes otherwise on the camera.

Nothing repeats: the processes are continuous random walks, so a ten-minute clip never loops.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["MOTION_STYLES", "IdleMotion", "MotionFrame"]

#: standard deviation of yaw, pitch, roll (degrees) of a talking head, median over training clips
HEAD_STD_DEG = np.array([3.0, 2.2, 1.4])
SLOW_S, FAST_S = 2.5, 0.45
#: share of each axis' variance in the slow process
SLOW_SHARE = 0.7
#: nod (pitch, degrees) per unit rise of the normalised loudness
NOD_DEG = 1.2
BLINK_MEAN_S = 3.5
BLINK_MIN_S = 0.8
#: blink profile: closing, shut, opening (seconds)
BLINK_PHASES = (0.07, 0.04, 0.13)
#: gaze: fixation durations (s) and saccade spread (eye widths, x and y)
FIXATION_S = (0.6, 3.0)
GAZE_STD = np.array([0.03, 0.015])

#: amplitude scale of head motion and gaze, blink-rate scale, per --motion style
MOTION_STYLES = {"calm": (0.5, 0.8), "natural": (1.0, 1.0), "lively": (1.5, 1.3)}


@dataclass(frozen=True)
class MotionFrame:
    """Offsets for one frame: head rotation (radians: yaw, pitch, roll), lid openness per eye
    (1 open as in the portrait, 0 shut) and gaze shift per eye (eye widths)."""

    rotation: np.ndarray
    openness: np.ndarray
    gaze: np.ndarray


class IdleMotion:
    """Seeded head motion, blinks and gaze at ``fps`` (see the module docstring)."""

    def __init__(self, fps: float, seed: int = 0, style: str = "natural") -> None:
        if style not in MOTION_STYLES:
            raise ValueError(f"motion style must be one of {', '.join(MOTION_STYLES)}, got {style!r}")
        if not (np.isfinite(fps) and fps > 0):
            raise ValueError(f"fps must be > 0, got {fps!r}")
        self.fps = float(fps)
        self._rng = np.random.default_rng(seed)
        self._amp, rate = MOTION_STYLES[style]
        self._blink_mean = BLINK_MEAN_S / rate
        self._slow = np.zeros(3)
        self._fast = np.zeros(3)
        self._t = 0.0
        self._next_blink = self._draw_blink_gap()
        self._blink_start = -1.0
        self._gaze = np.zeros(2)
        self._gaze_target = np.zeros(2)
        self._next_fixation = self._rng.uniform(*FIXATION_S)
        self._prev_loud = 0.0
        self._nod = 0.0

    def _draw_blink_gap(self) -> float:
        return max(BLINK_MIN_S, float(self._rng.gamma(3.0, self._blink_mean / 3.0)))

    def _ou(self, state: np.ndarray, tau: float, std: np.ndarray) -> np.ndarray:
        dt = 1.0 / self.fps
        a = np.exp(-dt / tau)
        return a * state + np.sqrt(1.0 - a * a) * std * self._rng.standard_normal(3)

    def step(self, loudness: float = 0.0) -> MotionFrame:
        """The next frame; ``loudness`` the speech's normalised loudness at it (0 silent .. ~1)."""
        std = np.radians(HEAD_STD_DEG) * self._amp
        self._slow = self._ou(self._slow, SLOW_S, std * np.sqrt(SLOW_SHARE))
        self._fast = self._ou(self._fast, FAST_S, std * np.sqrt(1.0 - SLOW_SHARE))
        rise = max(float(loudness) - self._prev_loud, 0.0)
        self._prev_loud = float(loudness)
        self._nod = self._nod * np.exp(-1.0 / (0.25 * self.fps)) + np.radians(NOD_DEG) * self._amp * rise
        rot = self._slow + self._fast + np.array([0.0, self._nod, 0.0])
        # blinks
        t = self._t
        if t >= self._next_blink:
            self._blink_start = t
            self._next_blink = t + self._draw_blink_gap()
        close, shut, opening = BLINK_PHASES
        s = t - self._blink_start
        if self._blink_start < 0 or s > close + shut + opening:
            lid = 1.0
        elif s < close:
            lid = 1.0 - s / close
        elif s < close + shut:
            lid = 0.0
        else:
            lid = (s - close - shut) / opening
        # gaze: hold a fixation, jump to the next
        if t >= self._next_fixation:
            self._gaze_target = self._rng.standard_normal(2) * GAZE_STD * self._amp
            self._next_fixation = t + self._rng.uniform(*FIXATION_S)
        self._gaze += 0.6 * (self._gaze_target - self._gaze)  # a saccade takes ~2 frames
        self._t += 1.0 / self.fps
        return MotionFrame(rot, np.full(2, lid), np.tile(self._gaze, (2, 1)))
