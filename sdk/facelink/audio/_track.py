"""Reading the audio track of a media file: 48 kHz mono float32 PCM and where it starts.

Whatever is wrong with the audio raises :class:`~facelink.errors.AudioError` (one line),
which an encoder reports as a warning and carries on with the video alone; a file with no
audio track is not an error (``None``).  A track that breaks off mid-way keeps what
decoded (``truncated``), like the video reader does.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from ..errors import AudioError
from ._pcm import RATE, Resampler

__all__ = ["AudioTrack", "TrackCursor", "read_audio_track"]

#: longest track read into memory (s): 4 h of 48 kHz float32 is 2.8 GB, so stop well before
MAX_SECONDS = 3 * 3600


@dataclass(frozen=True)
class AudioTrack:
    """``samples``: 48 kHz mono float32; ``start``: the container time (s) of ``samples[0]``,
    on the same clock as the video frames' times; the source's rate, channels and codec."""

    samples: np.ndarray
    start: float
    source_rate: int
    source_channels: int
    codec: str
    truncated: bool = False

    @property
    def seconds(self) -> float:
        return self.samples.size / RATE


class TrackCursor:
    """Hands out a track's samples in time order: :meth:`until` gives those before a container
    time not given before (for interleaving a file's sound with its frames)."""

    def __init__(self, track: AudioTrack) -> None:
        self.track = track
        self.done = 0

    def until(self, t: float) -> tuple[np.ndarray, float]:
        """The samples from where the last call stopped up to container time ``t`` (``inf``: the
        rest) and the container time of the first of them; empty when none are due."""
        n = self.track.samples.size
        end = n if t == float("inf") else min(n, max(0, int(round((t - self.track.start) * RATE))))
        start = self.track.start + self.done / RATE
        if end <= self.done:
            return self.track.samples[:0], start
        x = self.track.samples[self.done : end]
        self.done = end
        return x, start


def _reason(e: BaseException) -> str:
    msg = getattr(e, "strerror", None) or str(e)
    return msg.splitlines()[0] if msg else type(e).__name__


def read_audio_track(path: str, *, max_seconds: float = MAX_SECONDS) -> AudioTrack | None:
    """The first audio track of ``path`` as 48 kHz mono; ``None`` when the file has none.

    Raises :class:`AudioError` when the track cannot be used (unknown codec, undecodable,
    no sample rate); the file's video is not affected.
    """
    import av

    if not os.path.isfile(path):
        raise AudioError(f"{path}: no such file")
    try:
        container = av.open(path)
    except (av.error.FFmpegError, OSError, ValueError, UnicodeDecodeError) as e:
        raise AudioError(f"{path}: cannot open ({_reason(e)})") from None
    try:
        if not container.streams.audio:
            return None
        stream = container.streams.audio[0]
        cc = stream.codec_context
        codec = cc.name if cc is not None and cc.name else "unknown"
        rate = int(cc.sample_rate or 0) if cc is not None else 0
        if rate <= 0:
            raise AudioError(f"{path}: the audio track ({codec}) has no sample rate; encoding without sound")
        channels = int(getattr(cc, "channels", 0) or (cc.layout.nb_channels if cc.layout else 0) or 1)
        parts: list[np.ndarray] = []
        start: float | None = None
        truncated = False
        res: Resampler | None = None
        total = 0
        limit = int(max_seconds * RATE)
        try:
            for frame in container.decode(stream):
                if res is None or frame.sample_rate != res.rate:
                    if res is not None:  # the rate changed mid-track: finish the old converter
                        parts.append(res.flush())
                    res = Resampler(int(frame.sample_rate))
                if start is None:
                    start = float(frame.time) if frame.time is not None else float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0
                a = frame.to_ndarray()
                # planar: (channels, n); packed: (1, n * channels)
                if frame.format.is_planar:
                    pcm = a.T
                else:
                    pcm = a.reshape(-1, max(1, len(frame.layout.channels)))
                out = res.push(pcm)
                parts.append(out)
                total += out.size
                if total > limit:
                    truncated = True
                    break
        except av.error.FFmpegError as e:
            if not parts:
                raise AudioError(f"{path}: cannot decode the audio track ({codec}: {_reason(e)}); encoding without sound") from None
            truncated = True
        except (ValueError, TypeError) as e:  # an unusual sample format or layout PyAV cannot convert
            raise AudioError(f"{path}: unsupported audio track ({codec}: {_reason(e)}); encoding without sound") from None
        if res is not None:
            parts.append(res.flush())
        if not parts:
            raise AudioError(f"{path}: the audio track ({codec}) holds no decodable sound; encoding without sound")
        samples = np.concatenate(parts).astype(np.float32)[:limit]
        return AudioTrack(samples, start or 0.0, rate, channels, codec, truncated)
    finally:
        container.close()
