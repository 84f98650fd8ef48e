"""Speech features shared by training and run time: 16 kHz mono PCM -> log-mel frames.

One function computes them for both, so the network sees at run time exactly what it was
trained on.  Pure numpy (no torch, no librosa): a Hann-windowed STFT, a triangular mel
filter bank (HTK mel scale) and a log with a floor.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

__all__ = ["HOP_S", "MEL_BINS", "SAMPLE_RATE", "from_48k", "log_mel", "mel_frames", "read_speech"]

#: input sample rate, feature hop and window
SAMPLE_RATE = 16000
HOP = 160  # 10 ms
HOP_S = HOP / SAMPLE_RATE
WINDOW = 400  # 25 ms
N_FFT = 512
MEL_BINS = 64
F_MIN, F_MAX = 60.0, 7600.0
#: log floor (about -80 dB below a full-scale sine's band energy)
_FLOOR = 1e-8


def _hz_to_mel(f):
    return 2595.0 * np.log10(1.0 + np.asarray(f, np.float64) / 700.0)


def _mel_to_hz(m):
    return 700.0 * (10.0 ** (np.asarray(m, np.float64) / 2595.0) - 1.0)


@lru_cache(maxsize=1)
def _filters() -> np.ndarray:
    """(MEL_BINS, N_FFT // 2 + 1) triangular filters, each normalised to unit area."""
    freqs = np.fft.rfftfreq(N_FFT, 1.0 / SAMPLE_RATE)
    edges = _mel_to_hz(np.linspace(_hz_to_mel(F_MIN), _hz_to_mel(F_MAX), MEL_BINS + 2))
    fb = np.zeros((MEL_BINS, len(freqs)))
    for i in range(MEL_BINS):
        lo, mid, hi = edges[i], edges[i + 1], edges[i + 2]
        up = (freqs - lo) / (mid - lo)
        down = (hi - freqs) / (hi - mid)
        fb[i] = np.clip(np.minimum(up, down), 0.0, None)
        fb[i] /= max(fb[i].sum(), 1e-9)
    return fb.astype(np.float32)


def _window() -> np.ndarray:
    win = np.zeros(N_FFT, np.float32)
    off = (N_FFT - WINDOW) // 2
    win[off : off + WINDOW] = np.hanning(WINDOW).astype(np.float32)
    return win


def mel_frames(padded: np.ndarray, first: int, count: int) -> np.ndarray:
    """Frames ``first .. first+count-1`` of a signal already padded with ``N_FFT // 2`` zeros in
    front (frame ``t`` reads ``padded[t * HOP : t * HOP + N_FFT]``): the one place the STFT,
    filter bank and log are computed, for whole recordings and for streams alike."""
    if count <= 0:
        return np.zeros((0, MEL_BINS), np.float32)
    idx = np.arange(N_FFT)[None, :] + HOP * (first + np.arange(count))[:, None]
    spec = np.abs(np.fft.rfft(padded[idx] * _window(), axis=1)) ** 2
    return np.log(spec.astype(np.float32) @ _filters().T + _FLOOR).astype(np.float32)


def log_mel(pcm: np.ndarray) -> np.ndarray:
    """(T, MEL_BINS) float32 log-mel energies of 16 kHz mono PCM in [-1, 1]; frame ``t``
    is centred on sample ``t * HOP`` (``T = len(pcm) // HOP + 1``)."""
    x = np.asarray(pcm, np.float32).reshape(-1)
    if not np.isfinite(x).all():
        raise ValueError("PCM contains NaN or infinity")
    pad = N_FFT // 2
    x = np.pad(x, (pad, pad))
    return mel_frames(x, 0, max((len(x) - N_FFT) // HOP + 1, 0))


#: the anti-aliasing low-pass of the 48 kHz -> 16 kHz decimation (windowed sinc, cut at 7.2 kHz)
_DECIMATE_TAPS = 97


@lru_cache(maxsize=1)
def _lowpass() -> np.ndarray:
    n = np.arange(_DECIMATE_TAPS) - (_DECIMATE_TAPS - 1) / 2
    fc = 7200.0 / 48000.0
    h = 2 * fc * np.sinc(2 * fc * n) * np.blackman(_DECIMATE_TAPS)
    return (h / h.sum()).astype(np.float32)


def from_48k(pcm48: np.ndarray) -> np.ndarray:
    """48 kHz mono (FaceLink's audio rate, :mod:`facelink.audio`) -> 16 kHz for the features."""
    x = np.asarray(pcm48, np.float32).reshape(-1)
    if x.size == 0:
        return x
    return np.convolve(x, _lowpass(), mode="same")[::3].astype(np.float32)


def read_speech(path: str, max_seconds: float | None = None) -> np.ndarray:
    """The first audio track of a file (any format PyAV reads) as 16 kHz mono float32.

    Raises ``ValueError`` with a one-line reason when the file has no usable audio.
    """
    from ..audio import RATE, read_audio_track
    from ..errors import AudioError

    try:
        track = read_audio_track(str(path))
    except AudioError as e:
        raise ValueError(str(e)) from None
    if track is None:
        raise ValueError(f"{path}: has no audio track")
    pcm = track.samples if max_seconds is None else track.samples[: int(max_seconds * RATE)]
    if pcm.size == 0:
        raise ValueError(f"{path}: audio track is empty")
    return from_48k(pcm)
