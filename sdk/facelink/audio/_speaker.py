"""Sound out to a loudspeaker through PyAV/FFmpeg: ALSA on Jetson and Raspberry Pi boards
(``alsa:default``, a USB speaker ``alsa:hw:1``), any FFmpeg output device by name.

``Speaker("alsa:default").play(pcm)`` queues 48 kHz mono float PCM; a thread hands it to the
device, which paces it.  ``null:`` plays into nothing (tests, headless boxes).
"""

from __future__ import annotations

import queue
import threading
from fractions import Fraction

import numpy as np

from ..errors import AudioError
from ._mic import device_spec
from ._pcm import RATE

__all__ = ["SPEAKER_FORMATS", "Speaker"]

#: FFmpeg output formats accepted as speakers
SPEAKER_FORMATS = ("alsa", "pulse", "audiotoolbox", "oss", "null")
#: seconds of sound queued at most: a receiver that falls behind drops the oldest, never lags further
MAX_QUEUED_S = 1.0


class Speaker:
    """See the module docstring; raises :class:`AudioError` (one line) when the device cannot be opened."""

    def __init__(self, uri: str) -> None:
        import av

        fmt, device = device_spec(uri, SPEAKER_FORMATS, "speaker", "output", device_optional=("null",))
        try:
            self._c = av.open(device if fmt != "null" else "/dev/null", "w", format=fmt)
            self._s = self._c.add_stream("pcm_s16le", rate=RATE, layout="mono")
        except (av.error.FFmpegError, OSError, ValueError) as e:
            raise AudioError(f"{uri}: cannot open the speaker ({str(e).splitlines()[0] if str(e) else type(e).__name__})") from None
        self.uri = uri
        self._q: queue.Queue[np.ndarray | None] = queue.Queue()
        self._queued = 0
        self._lock = threading.Lock()
        self.played = 0  # samples handed to the device
        self.dropped = 0
        self.error: str | None = None
        self._pts = 0
        self._t = threading.Thread(target=self._run, name="facelink-speaker", daemon=True)
        self._t.start()

    def play(self, pcm: np.ndarray) -> None:
        """Queue 48 kHz mono float PCM (dropping the oldest when more than MAX_QUEUED_S waits)."""
        x = np.clip(np.asarray(pcm, np.float32).reshape(-1), -1.0, 1.0)
        if x.size == 0 or self.error is not None:
            return
        with self._lock:
            while self._queued + x.size > MAX_QUEUED_S * RATE and not self._q.empty():
                old = self._q.get_nowait()
                if old is not None:
                    self._queued -= old.size
                    self.dropped += old.size
            self._queued += x.size
        self._q.put(x)

    def _run(self) -> None:
        import av

        while True:
            x = self._q.get()
            if x is None:
                return
            with self._lock:
                self._queued -= x.size
            try:
                frame = av.AudioFrame.from_ndarray((x * 32767).astype(np.int16)[None, :], format="s16", layout="mono")
                frame.sample_rate = RATE
                frame.pts = self._pts
                frame.time_base = Fraction(1, RATE)
                self._pts += x.size
                for p in self._s.encode(frame):
                    self._c.mux(p)
                self.played += x.size
            except Exception as e:  # noqa: BLE001 - an unplugged speaker silences the call, it does not end it
                self.error = str(e).splitlines()[0] if str(e) else type(e).__name__
                return

    def close(self) -> None:
        self._q.put(None)
        self._t.join(timeout=5.0)
        try:
            for p in self._s.encode(None):
                self._c.mux(p)
            self._c.close()
        except Exception:  # noqa: BLE001 - closing a device that already failed
            pass

    def __enter__(self) -> "Speaker":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
