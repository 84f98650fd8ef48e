"""The clap test clip (a flash and a click, made here) and A/V offset measurement.

A clap clip is a dark grey video with white *flash* frames and, at the same instants, a
short broadband *click* in otherwise silent audio.  Measuring where the flash and the
click land after a pipeline gives its A/V offset: ``click time - flash time`` (positive:
the sound is late).  Offsets are reported in seconds and in frames.

The flash is found as the first frame whose mean brightness jumps above the midpoint of
the clip's darkest and brightest frames; the click onset as the first sample whose
magnitude exceeds a quarter of the track's peak (the click starts at full level, so the
onset is sample-exact; Opus/AAC coding smears it by well under a millisecond).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from ._pcm import RATE

__all__ = ["AvOffset", "ClapClip", "av_offset", "find_click", "find_flashes", "make_clap_clip", "measure_av_offset", "write_clap_clip"]

_DARK, _BRIGHT = 40, 235


@dataclass(frozen=True)
class ClapClip:
    """Frames (RGB uint8) with their times, mono float32 audio at ``rate`` from time 0, and
    the frame indices of the flashes (each flash starts at ``times[index]``, and so does its click)."""

    frames: list[np.ndarray]
    times: list[float]
    audio: np.ndarray
    rate: int
    fps: Fraction
    flashes: tuple[int, ...]

    @property
    def flash_times(self) -> tuple[float, ...]:
        return tuple(self.times[i] for i in self.flashes)


def _click(rate: int) -> np.ndarray:
    """5 ms of a decaying 2 kHz + 3.1 kHz burst that starts at full level."""
    n = int(0.005 * rate)
    t = np.arange(n) / rate
    env = np.exp(-t / 0.0015)
    return (0.9 * env * (0.6 * np.sin(2 * np.pi * 2000 * t + np.pi / 2) + 0.4 * np.sin(2 * np.pi * 3100 * t + np.pi / 2))).astype(np.float32)


def make_clap_clip(
    *, fps: Fraction | float = 30, seconds: float = 3.0, size: tuple[int, int] = (64, 48), flashes: Sequence[float] = (1.0,), rate: int = RATE
) -> ClapClip:
    """A clap clip: ``flashes`` are times (s), each snapped to the frame that starts at or after it."""
    fps = Fraction(fps).limit_denominator(1001)
    if not 0 < seconds <= 600 or not 1 <= fps <= 240:
        raise ValueError("seconds must be in (0, 600] and fps in [1, 240]")
    n = int(seconds * fps)
    times = [float(i / fps) for i in range(n)]
    idx = sorted({int(np.ceil(float(t) * fps - 1e-9)) for t in flashes})
    if not idx or idx[0] < 1 or idx[-1] >= n:
        raise ValueError("each flash must fall after the first frame and inside the clip")
    w, h = size
    dark = np.full((h, w, 3), _DARK, np.uint8)
    bright = np.full((h, w, 3), _BRIGHT, np.uint8)
    frames = [bright if i in idx else dark for i in range(n)]
    audio = np.zeros(int(round(seconds * rate)), np.float32)
    click = _click(rate)
    for i in idx:
        s = int(round(times[i] * rate))
        audio[s : s + click.size] = click[: audio.size - s]
    return ClapClip(frames, times, audio, rate, fps, tuple(idx))


def write_clap_clip(path: str, clip: ClapClip | None = None, **kw) -> ClapClip:
    """Write a clap clip as an H.264 + AAC MP4 (through :class:`facelink.io.VideoWriter`)."""
    from ..io import VideoWriter

    clip = clip or make_clap_clip(**kw)
    h, w = clip.frames[0].shape[:2]
    with VideoWriter(path, w, h, clip.fps, audio_rate=clip.rate) as out:
        for img, t in zip(clip.frames, clip.times):
            out.write(img, t)
        out.write_audio(clip.audio, 0.0)
    return clip


def find_flashes(frames: Iterable[tuple[np.ndarray, float]]) -> list[float]:
    """Times of the frames where a flash starts (brightness crossing the clip's midpoint upwards)."""
    levels, times = [], []
    for img, t in frames:
        levels.append(float(np.asarray(img, np.float32).mean()))
        times.append(float(t))
    if len(levels) < 2:
        return []
    lv = np.asarray(levels)
    lo, hi = float(lv.min()), float(lv.max())
    if hi - lo < 40:  # no flash in this clip
        return []
    mid = (lo + hi) / 2
    above = lv > mid
    return [times[i] for i in range(len(lv)) if above[i] and (i == 0 or not above[i - 1])]


def find_click(samples: np.ndarray, rate: int = RATE, start: float = 0.0, *, after: float | None = None) -> float | None:
    """Time (s) of the first click onset in mono ``samples`` whose first sample is at ``start``
    (only onsets at or after ``after`` count); ``None`` when the track is silent."""
    x = np.abs(np.asarray(samples, np.float32).reshape(-1))
    if after is not None:
        skip = max(0, int(round((after - start) * rate)))
        x = x.copy()
        x[:skip] = 0
    peak = float(x.max()) if x.size else 0.0
    if peak < 0.02:
        return None
    k = int(np.argmax(x > peak / 4))
    return start + k / rate


@dataclass(frozen=True)
class AvOffset:
    """``offset = click - flash`` in seconds and in frames at ``fps`` (positive: sound late)."""

    flash: float
    click: float
    fps: float

    @property
    def seconds(self) -> float:
        return self.click - self.flash

    @property
    def frames(self) -> float:
        return self.seconds * self.fps

    def as_dict(self) -> dict:
        return {"flash_s": self.flash, "click_s": self.click, "offset_s": self.seconds, "offset_frames": self.frames, "fps": self.fps}


def av_offset(flash: float, click: float, fps: float) -> AvOffset:
    return AvOffset(float(flash), float(click), float(fps))


def measure_av_offset(path: str) -> AvOffset:
    """Decode an MP4 (video + audio), find its first flash and the first click, and report the offset.

    Raises :class:`~facelink.errors.InputError` when the file has no flash or no click."""
    from ..errors import InputError
    from ..io import VideoReader
    from ._track import read_audio_track

    with VideoReader(path) as r:
        fps = float(r.fps)
        flashes = find_flashes((f.image, f.time) for f in r)
    if not flashes:
        raise InputError(f"{path}: no flash found in the video")
    track = read_audio_track(path)
    if track is None:
        raise InputError(f"{path}: has no audio track")
    click = find_click(track.samples, RATE, track.start)
    if click is None:
        raise InputError(f"{path}: no click found in the audio")
    return av_offset(flashes[0], click, fps)
