"""Video files and capture URIs through PyAV: decoded RGB frames with timestamps, H.264 writing."""

from __future__ import annotations

import os
from dataclasses import dataclass
from fractions import Fraction
from typing import Iterator

import numpy as np

from ..errors import InputError

__all__ = ["BackgroundWriter", "Frame", "VideoReader", "VideoWriter", "open_video", "probe_video"]


@dataclass(frozen=True)
class Frame:
    """One decoded frame: RGB uint8 (H, W, 3), presentation time in seconds, decode index."""

    image: np.ndarray
    time: float
    index: int


@dataclass(frozen=True)
class VideoInfo:
    width: int
    height: int
    fps: Fraction
    frames: int | None


def _av():
    import av

    return av


class VideoReader:
    """Iterates the first video stream of a file (or any URI FFmpeg can open).

    Bad inputs raise :class:`InputError` with one line: missing file, not a video,
    no video stream, undecodable data.  Frames whose timestamps go backwards are
    given monotonically increasing times.
    """

    #: the capture backend name (see :func:`facelink.io.open_source`)
    backend = "pyav"

    def __init__(
        self, uri: str, max_pixels: int = 8192 * 8192, *, format: str | None = None, options: dict[str, str] | None = None
    ) -> None:
        av = _av()
        if "://" not in uri and not os.path.exists(uri):
            raise InputError(f"{uri}: no such file")
        if "://" not in uri and os.path.isdir(uri):
            raise InputError(f"{uri}: is a directory, expected a video file")
        #: a camera or network stream (no end, no pacing) rather than a file
        self.live = "://" in uri or format is not None
        try:
            if format is not None:  # a capture device, e.g. format="v4l2" for /dev/videoN
                self._c = av.open(uri, format=format, options=options or {}, timeout=10.0)
            else:
                self._c = av.open(uri, timeout=10.0) if "://" in uri else av.open(uri)
        except (av.error.FFmpegError, OSError, ValueError, UnicodeDecodeError) as e:
            raise InputError(f"{uri}: cannot open as video ({_reason(e)})") from None
        if not self._c.streams.video:
            self._c.close()
            raise InputError(f"{uri}: has no video stream")
        self._s = self._c.streams.video[0]
        self._s.thread_type = "AUTO"
        self.uri = uri
        cc = self._s.codec_context
        if cc.width * cc.height > max_pixels:
            self._c.close()
            raise InputError(f"{uri}: {cc.width}x{cc.height} frames are larger than supported ({max_pixels} pixels)")
        rate = self._s.average_rate or self._s.guessed_rate or Fraction(30, 1)
        self.info = VideoInfo(cc.width, cc.height, Fraction(rate), self._s.frames or None)

    @property
    def fps(self) -> Fraction:
        return self.info.fps

    @property
    def width(self) -> int:
        return self.info.width

    @property
    def height(self) -> int:
        return self.info.height

    def __iter__(self) -> Iterator[Frame]:
        av = _av()
        last_t = -1.0
        i = 0
        step = float(1 / self.info.fps) if self.info.fps else 1 / 30
        try:
            for f in self._c.decode(self._s):
                t = float(f.time) if f.time is not None else (last_t + step if i else 0.0)
                if t <= last_t:
                    t = last_t + step
                last_t = t
                yield Frame(f.to_ndarray(format="rgb24"), t, i)
                i += 1
        except av.error.FFmpegError as e:
            if i == 0:
                raise InputError(f"{self.uri}: cannot decode video ({_reason(e)})") from None
            # a truncated file: keep what decoded, stop cleanly
            return

    def close(self) -> None:
        self._c.close()

    def __enter__(self) -> "VideoReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _reason(e: BaseException) -> str:
    msg = getattr(e, "strerror", None) or str(e)
    return msg.splitlines()[0] if msg else type(e).__name__


def open_video(uri: str) -> VideoReader:
    """Open a video file or capture URI for reading."""
    return VideoReader(uri)


def probe_video(uri: str) -> VideoInfo:
    with VideoReader(uri) as r:
        return r.info


#: audio codecs the writer can put beside the video: AAC (plays everywhere) or Opus
AUDIO_CODECS = {"aac": "aac", "opus": "libopus"}


class VideoWriter:
    """Writes RGB frames to an H.264 MP4 with exact per-frame timestamps (microsecond time base).

    With ``audio_rate`` it also writes a mono audio track (``audio_codec`` ``"aac"`` or
    ``"opus"``) on the same clock: :meth:`write_audio` places float PCM at a time in seconds,
    as :meth:`write` places frames, so a sample and a frame given the same time play
    together.  Holes between audio blocks become silence and overlaps are cut, so the
    track never slips against the video; the track starts at time 0.
    """

    def __init__(
        self,
        path: str,
        width: int,
        height: int,
        fps: Fraction | float = 30,
        crf: int = 18,
        codec: str = "libx264",
        *,
        audio_rate: int | None = None,
        audio_codec: str = "aac",
        audio_kbps: int = 64,
    ) -> None:
        av = _av()
        if audio_rate is not None and (isinstance(audio_rate, bool) or not isinstance(audio_rate, int) or not 8000 <= audio_rate <= 192000):
            raise ValueError(f"audio_rate must be 8000..192000 Hz, got {audio_rate!r}")
        if audio_codec not in AUDIO_CODECS:
            raise ValueError(f"audio_codec must be one of {', '.join(AUDIO_CODECS)}, got {audio_codec!r}")
        self.width, self.height = width + (width & 1), height + (height & 1)  # yuv420p needs even sizes
        try:
            self._c = av.open(path, mode="w")
        except (av.error.FFmpegError, OSError) as e:
            raise InputError(f"{path}: cannot write ({_reason(e)})") from None
        rate = Fraction(fps).limit_denominator(1001) if fps else Fraction(30)
        self._s = self._c.add_stream(codec, rate=rate)
        self._s.width, self._s.height = self.width, self.height
        self._s.pix_fmt = "yuv420p"
        self._s.time_base = Fraction(1, 1_000_000)
        self._s.codec_context.time_base = Fraction(1, 1_000_000)
        if codec == "libx264":
            self._s.options = {"crf": str(crf), "preset": "veryfast"}
        self._last_pts = -1
        self.frames = 0
        self._a = None
        self.audio_rate = audio_rate
        #: audio samples written (silence filled in included)
        self.audio_samples = 0
        if audio_rate is not None:
            if audio_codec == "opus" and audio_rate != 48000:
                raise ValueError("Opus audio in MP4 must be 48000 Hz")
            try:
                self._a = self._c.add_stream(AUDIO_CODECS[audio_codec], rate=audio_rate)
            except (av.error.FFmpegError, ValueError) as e:
                self._c.close()
                raise InputError(f"{path}: cannot add a {audio_codec} audio track ({_reason(e)})") from None
            self._a.layout = "mono"
            self._a.bit_rate = int(audio_kbps) * 1000
            self._a.time_base = Fraction(1, audio_rate)
            self._a.codec_context.time_base = Fraction(1, audio_rate)
            self._afmt = "fltp" if audio_codec == "aac" else "flt"
            self._apending = np.zeros(0, np.float32)
            self._apos = 0  # sample index (from time 0) of _apending[0]
        self._last_time = 0.0
        #: audio blocks dropped for starting more than MAX_AUDIO_LEAD s after the latest frame
        self.audio_dropped = 0

    def write(self, image: np.ndarray, time: float) -> None:
        av = _av()
        if image.shape[0] != self.height or image.shape[1] != self.width:
            pad = np.zeros((self.height, self.width, 3), np.uint8)
            pad[: image.shape[0], : image.shape[1]] = image
            image = pad
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
        pts = max(int(round(time * 1_000_000)), self._last_pts + 1)
        self._last_time = max(self._last_time, float(time))
        frame.pts = pts
        frame.time_base = Fraction(1, 1_000_000)
        self._last_pts = pts
        for pkt in self._s.encode(frame):
            self._c.mux(pkt)
        self.frames += 1

    #: audio may start at most this many seconds after the latest frame written
    MAX_AUDIO_LEAD = 10.0

    @property
    def has_audio(self) -> bool:
        """Whether this writer has an audio track (opened with ``audio_rate=``)."""
        return self._a is not None

    def write_audio(self, samples: np.ndarray, time: float) -> None:
        """Mono float PCM at ``audio_rate``, its first sample at ``time`` seconds (the frames' clock).

        Blocks that start more than :attr:`MAX_AUDIO_LEAD` s after the latest frame are
        dropped (counted in ``audio_dropped``): write frames and audio interleaved by time.
        """
        if self._a is None:
            raise ValueError("this writer has no audio track; open it with audio_rate=")
        x = np.asarray(samples, np.float32).reshape(-1)
        if not np.all(np.isfinite(x)):
            x = np.where(np.isfinite(x), x, 0.0).astype(np.float32)
        rate = self._a.codec_context.sample_rate
        t = float(time)
        if not np.isfinite(t) or t > self._last_time + self.MAX_AUDIO_LEAD:
            self.audio_dropped += 1  # far ahead of the video: a corrupt timestamp, not sound to keep
            return
        start = int(round(t * rate))
        end = self._apos + self._apending.size
        step = 10 * rate
        while start > end:  # a hole: silence, a few seconds at a time (bounded memory)
            n = min(start - end, step)
            self._apending = np.concatenate([self._apending, np.zeros(n, np.float32)])
            end += n
            self._encode_audio(final=False)
        if start < end:
            x = x[end - start :]
        self._apending = np.concatenate([self._apending, np.clip(x, -1.0, 1.0)])
        self._encode_audio(final=False)

    def _encode_audio(self, final: bool) -> None:
        av = _av()
        cc = self._a.codec_context
        n = cc.frame_size or 1024
        while self._apending.size >= n or (final and self._apending.size):
            block = self._apending[:n]
            self._apending = self._apending[block.size :]
            if block.size < n and not final:
                break
            if block.size < n:  # the last block: pad to a whole frame
                block = np.concatenate([block, np.zeros(n - block.size, np.float32)])
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(block[None, :]), format=self._afmt, layout="mono")
            frame.sample_rate = cc.sample_rate
            frame.pts = self._apos
            frame.time_base = Fraction(1, cc.sample_rate)
            self._apos += n
            self.audio_samples += n
            for pkt in self._a.encode(frame):
                self._c.mux(pkt)

    def close(self) -> None:
        for pkt in self._s.encode():
            self._c.mux(pkt)
        if self._a is not None:
            self._encode_audio(final=True)
            for pkt in self._a.encode():
                self._c.mux(pkt)
        self._c.close()

    def __enter__(self) -> "VideoWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class BackgroundWriter:
    """A :class:`VideoWriter` whose H.264 (and AAC) encoding runs on its own thread.

    ``write``/``write_audio`` queue the call (at most ``depth`` frames ahead, then they wait)
    and return; the encoder, which releases the GIL, runs while the caller generates the next
    frame.  Calls are applied in order.  An error on the thread is raised by the next call or
    by :meth:`close`.  The caller must not change an image after handing it over.
    """

    def __init__(self, writer: "VideoWriter", depth: int = 4) -> None:
        import queue
        import threading

        self._w = writer
        self._q: "queue.Queue[tuple | None]" = queue.Queue(maxsize=max(1, depth))
        self._error: BaseException | None = None
        self._t = threading.Thread(target=self._run, name="facelink-writer", daemon=True)
        self._t.start()
        self._closed = False

    @property
    def frames(self) -> int:
        return self._w.frames

    @property
    def has_audio(self) -> bool:
        return self._w.has_audio

    def _run(self) -> None:
        while True:
            item = self._q.get()
            if item is None:
                return
            if self._error is not None:
                continue  # drain: the caller learns of the error at its next call
            fn, args = item
            try:
                fn(*args)
            except BaseException as e:  # noqa: BLE001 - handed to the caller's thread
                self._error = e

    def _put(self, fn, *args) -> None:
        if self._error is not None:
            raise self._error
        if self._closed:
            raise ValueError("write to a closed writer")
        self._q.put((fn, args))

    def write(self, image: np.ndarray, time: float) -> None:
        self._put(self._w.write, image, time)

    def write_audio(self, samples: np.ndarray, time: float) -> None:
        self._put(self._w.write_audio, samples, time)

    def close(self) -> None:
        """Finish every queued call, then close the file (raises the thread's error, if any)."""
        if self._closed:
            return
        self._closed = True
        self._q.put(None)
        self._t.join()
        self._w.close()
        if self._error is not None:
            raise self._error

    def __enter__(self) -> "BackgroundWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
