"""A short speech track for the demo: espeak-ng when it is installed, else tones made here.

Nothing third-party is committed: espeak-ng (GPL, a system package) is run at demo time if
present; otherwise :func:`tone_speech` synthesises a speech-like tone sequence (voiced
"syllables" with a falling pitch contour, harmonics shaped by two formants, and pauses),
which exercises the audio path and lip timing without pretending to be words.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import wave
from dataclasses import dataclass

import numpy as np

from ._pcm import RATE, resample

__all__ = ["DEMO_TEXT", "SpeechTrack", "espeak_available", "espeak_speech", "speech_track", "tone_speech"]

DEMO_TEXT = "Hello! This talking head is made from face keypoints, not pixels, and it is signed."


@dataclass(frozen=True)
class SpeechTrack:
    """48 kHz mono float32 ``samples`` and what made them (``"espeak-ng"`` or ``"tones"``)."""

    samples: np.ndarray
    source: str

    @property
    def seconds(self) -> float:
        return self.samples.size / RATE


def espeak_available() -> bool:
    return shutil.which("espeak-ng") is not None


def espeak_speech(text: str = DEMO_TEXT, *, voice: str = "en", wpm: int = 160, timeout: float = 20.0) -> SpeechTrack:
    """``text`` spoken by espeak-ng (RuntimeError if it is missing or fails)."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise RuntimeError("espeak-ng is not installed")
    if not isinstance(text, str) or not text.strip() or len(text) > 2000:
        raise ValueError("text must be 1..2000 characters")
    try:
        proc = subprocess.run(
            [exe, "--stdout", "-v", voice, "-s", str(int(wpm)), "--", text], capture_output=True, timeout=timeout, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        raise RuntimeError(f"espeak-ng failed ({e})") from None
    if proc.returncode != 0 or not proc.stdout:
        raise RuntimeError(f"espeak-ng failed ({proc.stderr.decode(errors='replace').strip()[:200] or proc.returncode})")
    data = proc.stdout
    # espeak-ng writes a streaming WAV whose RIFF/data sizes are 0x7FFFFFFF placeholders: fix them up
    if data[:4] == b"RIFF":
        k = data.find(b"data")
        if k > 0:
            data = bytearray(data)
            data[4:8] = (len(data) - 8).to_bytes(4, "little")
            data[k + 4 : k + 8] = (len(data) - k - 8).to_bytes(4, "little")
            data = bytes(data)
    try:
        with wave.open(io.BytesIO(data)) as w:
            rate, ch, width = w.getframerate(), w.getnchannels(), w.getsampwidth()
            raw = w.readframes(w.getnframes())
    except (wave.Error, EOFError) as e:
        raise RuntimeError(f"espeak-ng wrote no usable WAV ({e})") from None
    if width != 2:
        raise RuntimeError(f"espeak-ng wrote {8 * width}-bit samples, expected 16")
    pcm = np.frombuffer(raw, "<i2").reshape(-1, ch)
    return SpeechTrack(resample(pcm, rate), "espeak-ng")


def tone_speech(seconds: float = 4.0, *, seed: int = 7) -> SpeechTrack:
    """A speech-like tone sequence: syllables of 120-260 ms with 40-160 ms pauses."""
    if not 0 < seconds <= 600:
        raise ValueError("seconds must be in (0, 600]")
    rng = np.random.default_rng(seed)
    n = int(seconds * RATE)
    out = np.zeros(n, np.float32)
    pos = int(0.15 * RATE)
    formants = ((730, 1090), (270, 2290), (570, 840), (300, 870), (530, 1840))  # a, i, o, u, e
    while pos < n - int(0.1 * RATE):
        dur = int(rng.uniform(0.12, 0.26) * RATE)
        dur = min(dur, n - pos)
        t = np.arange(dur) / RATE
        f0 = rng.uniform(110, 150) * (1.0 - 0.15 * t / max(t[-1], 1e-3))  # falling pitch
        phase = 2 * np.pi * np.cumsum(f0) / RATE
        f1, f2 = formants[rng.integers(len(formants))]
        sig = np.zeros(dur)
        for h in range(1, 30):
            fh = h * f0
            gain = np.exp(-(((fh - f1) / 120) ** 2)) + 0.6 * np.exp(-(((fh - f2) / 180) ** 2)) + 0.02 / h
            sig += gain * np.sin(h * phase)
        env = np.sin(np.pi * np.arange(dur) / dur) ** 0.6
        out[pos : pos + dur] = (0.3 * sig * env / max(np.abs(sig).max(), 1e-6)).astype(np.float32)
        pos += dur + int(rng.uniform(0.04, 0.16) * RATE)
    return SpeechTrack(out, "tones")


def speech_track(text: str = DEMO_TEXT, *, seconds: float = 4.0) -> SpeechTrack:
    """The demo's speech: espeak-ng saying ``text`` when installed, else :func:`tone_speech`."""
    if espeak_available():
        try:
            return espeak_speech(text)
        except RuntimeError:
            pass
    return tone_speech(seconds)
