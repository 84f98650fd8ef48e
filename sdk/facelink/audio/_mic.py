"""A live microphone through PyAV/FFmpeg: ALSA on Jetson and Raspberry Pi boards (a USB mic is
``alsa:hw:1`` or ``alsa:default``), any other FFmpeg input device by name.

``Microphone("alsa:default")`` starts a reader thread at once; :meth:`Microphone.read` returns
the 48 kHz mono blocks captured since the last call, each with the ``time.monotonic()`` at
which its first sample was heard (estimated as the time the block arrived minus its
duration).  ``lavfi:`` sources (FFmpeg's generators, e.g. ``lavfi:sine=frequency=440``) are
paced to real time: they stand in for a microphone in tests and demos.
"""

from __future__ import annotations

import queue
import threading
import time

import numpy as np

from ..errors import AudioError
from ._pcm import RATE, Resampler

__all__ = ["MIC_FORMATS", "Microphone", "device_spec"]

#: FFmpeg input formats accepted as microphones
MIC_FORMATS = ("alsa", "pulse", "lavfi", "avfoundation", "dshow", "oss", "jack")
#: blocks kept when the caller does not read (10 s of 20 ms blocks): older ones are dropped
MAX_QUEUED = 500


def device_spec(uri: str, formats: tuple[str, ...], what: str, direction: str, device_optional: tuple[str, ...] = ()) -> tuple[str, str]:
    """``FORMAT:DEVICE`` of an FFmpeg sound device as (format, device); :class:`AudioError` (one
    line) when it is malformed, the format is not one of ``formats`` or this FFmpeg lacks it."""
    import av

    fmt, sep, device = str(uri).partition(":")
    if not sep or fmt not in formats or (not device and fmt not in device_optional):
        raise AudioError(f"{uri}: a {what} is FORMAT:DEVICE with FORMAT one of {', '.join(formats)} (e.g. alsa:default)")
    if fmt not in av.formats_available:
        raise AudioError(f"{uri}: this FFmpeg build has no {fmt} {direction}")
    return fmt, device


class Microphone:
    """See the module docstring.  Raises :class:`AudioError` (one line) when the device cannot
    be opened or has no audio; use as a context manager or call :meth:`close`."""

    def __init__(self, uri: str) -> None:
        import av

        fmt, device = device_spec(uri, MIC_FORMATS, "microphone", "input")
        try:
            self._c = av.open(device, format=fmt)
        except (av.error.FFmpegError, OSError, ValueError) as e:
            raise AudioError(f"{uri}: cannot open the microphone ({str(e).splitlines()[0] if str(e) else type(e).__name__})") from None
        if not self._c.streams.audio:
            self._c.close()
            raise AudioError(f"{uri}: has no audio stream")
        self.uri = uri
        self._stream = self._c.streams.audio[0]
        self._paced = fmt == "lavfi"
        self._q: queue.Queue[tuple[np.ndarray, float]] = queue.Queue()
        self._stop = threading.Event()
        self.dropped = 0
        self.error: str | None = None
        self._t = threading.Thread(target=self._run, name="facelink-mic", daemon=True)
        self._t.start()

    def _run(self) -> None:
        rate = int(self._stream.codec_context.sample_rate or RATE)
        res = Resampler(rate)
        start = time.monotonic()
        heard = 0  # samples at the source rate (for pacing generators)
        try:
            for frame in self._c.decode(self._stream):
                if self._stop.is_set():
                    return
                x = frame.to_ndarray()  # planar: (channels, n); packed: (1, n * channels)
                pcm = x.T if frame.format.is_planar else x.reshape(-1, frame.layout.nb_channels)
                heard += frame.samples
                if self._paced:
                    ahead = start + heard / rate - time.monotonic()
                    if ahead > 0:
                        time.sleep(ahead)
                out = res.push(pcm)
                if out.size:
                    if self._q.qsize() >= MAX_QUEUED:
                        self._q.get_nowait()
                        self.dropped += 1
                    self._q.put((out, time.monotonic() - out.size / RATE))
        except Exception as e:  # noqa: BLE001 - a device unplugged mid-call ends the sound, not the call
            self.error = str(e).splitlines()[0] if str(e) else type(e).__name__

    def read(self) -> list[tuple[np.ndarray, float]]:
        """The blocks captured since the last call: (48 kHz mono float32, monotonic time of its first sample)."""
        out = []
        while True:
            try:
                out.append(self._q.get_nowait())
            except queue.Empty:
                return out

    def close(self) -> None:
        self._stop.set()
        self._t.join(timeout=2.0)
        try:
            self._c.close()
        except Exception:  # noqa: BLE001 - closing a device that already failed
            pass

    def __enter__(self) -> "Microphone":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
