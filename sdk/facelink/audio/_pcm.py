"""PCM conversion: any sample rate and channel count to FaceLink's internal 48 kHz mono float32.

Channels are mixed down by averaging (a stereo voice keeps its level; phase-inverted
stereo cancels, as on any mono device); the rate is converted with FFmpeg's swresample
through PyAV, whose output stays aligned with the input (no filter delay added).
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np

__all__ = ["RATE", "Resampler", "to_float32", "to_mono", "resample"]

#: FaceLink's internal audio rate (Opus's native rate; AUDIO timestamps count it)
RATE = 48000
#: input rates accepted (Opus and common devices range 8 kHz .. 192 kHz)
MIN_RATE, MAX_RATE = 1000, 384000


def _rate(rate: object) -> int:
    if isinstance(rate, bool) or not isinstance(rate, (int, np.integer)):
        raise TypeError(f"sample rate must be an int, got {type(rate).__name__}")
    if not MIN_RATE <= int(rate) <= MAX_RATE:
        raise ValueError(f"sample rate {rate} Hz out of range ({MIN_RATE}..{MAX_RATE})")
    return int(rate)


def to_float32(samples: np.ndarray) -> np.ndarray:
    """Integer PCM (int16, int32, uint8) scaled to [-1, 1); float input as float32.  Non-finite
    samples become 0 (a corrupt buffer must not poison the encoder)."""
    a = np.asarray(samples)
    if a.dtype == np.int16:
        out = a.astype(np.float32) / 32768.0
    elif a.dtype == np.int32:
        out = (a.astype(np.float64) / 2147483648.0).astype(np.float32)
    elif a.dtype == np.uint8:
        out = (a.astype(np.float32) - 128.0) / 128.0
    elif a.dtype.kind == "f":
        out = a.astype(np.float32, copy=True)
        out[~np.isfinite(out)] = 0.0
    else:
        raise TypeError(f"PCM samples must be int16, int32, uint8 or float, got {a.dtype}")
    return out


def to_mono(samples: np.ndarray, channels_last: bool = True) -> np.ndarray:
    """(n,) or (n, channels) (``channels_last``) / (channels, n) PCM as float32 mono (n,)."""
    a = to_float32(samples)
    if a.ndim == 1:
        return a
    if a.ndim != 2:
        raise ValueError(f"PCM must be (samples,) or (samples, channels), got shape {a.shape}")
    if not channels_last:
        a = a.T
    if a.shape[1] < 1 or a.shape[1] > 64:
        raise ValueError(f"PCM has {a.shape[1]} channels (1..64)")
    return a.mean(axis=1, dtype=np.float32) if a.shape[1] > 1 else a[:, 0].copy()


class Resampler:
    """Streaming rate conversion of mono float32 PCM to :data:`RATE` (pass-through at 48 kHz).

    ``push(samples)`` returns what is ready; ``flush()`` the rest.  Output sample ``k``
    corresponds to input time ``k / RATE`` from the first input sample, whatever the
    input rate, so timestamps carry over unchanged.
    """

    def __init__(self, rate: int) -> None:
        self.rate = _rate(rate)
        self._r = None
        self._pts = 0
        if self.rate != RATE:
            import av

            self._r = av.AudioResampler(format="flt", layout="mono", rate=RATE)

    def _frames(self, frame) -> np.ndarray:
        assert self._r is not None
        out = [f.to_ndarray().reshape(-1) for f in self._r.resample(frame)]
        return np.concatenate(out).astype(np.float32) if out else np.zeros(0, np.float32)

    def push(self, samples: np.ndarray) -> np.ndarray:
        x = to_mono(samples)
        if self._r is None:
            return x
        if x.size == 0:
            return np.zeros(0, np.float32)
        import av

        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(x[None, :]), format="flt", layout="mono")
        frame.sample_rate = self.rate
        frame.pts = self._pts
        frame.time_base = Fraction(1, self.rate)
        self._pts += x.size
        return self._frames(frame)

    def flush(self) -> np.ndarray:
        if self._r is None:
            return np.zeros(0, np.float32)
        return self._frames(None)


def resample(samples: np.ndarray, rate: int) -> np.ndarray:
    """A whole mono or multichannel (n, channels) buffer at ``rate`` Hz as 48 kHz mono float32."""
    r = Resampler(rate)
    head = r.push(samples)
    tail = r.flush()
    return np.concatenate([head, tail]) if tail.size else head
