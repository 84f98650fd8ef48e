"""Opus through PyAV's libopus: 48 kHz mono float32 PCM in, Opus packets out, and back.

Packet loss concealment is Opus's own: :meth:`OpusDecoder.decode` given ``None`` feeds
libopus a packet of just the last TOC byte (a zero-length frame, RFC 6716 section 3.2.1),
which libopus answers with its PLC (pitch-synchronous extrapolation that fades out over
successive losses), exactly the ``opus_decode(NULL)`` path.  In-band FEC is not used:
FFmpeg's libopus decoder wrapper does not expose ``decode_fec``.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from ..bitstream import AudioParams
from ..errors import AudioError
from ._pcm import RATE, to_mono

__all__ = ["FRAME_MS", "MAX_KBPS", "MIN_KBPS", "OpusDecoder", "OpusEncoder", "opus_available"]

#: Opus frame durations FaceLink encodes, ms
FRAME_MS = (10, 20, 40, 60)
#: the bit-rate range FaceLink offers (``--audio-kbps``)
MIN_KBPS, MAX_KBPS = 6, 24


def _av():
    import av

    return av


def opus_available() -> bool:
    """True if PyAV's FFmpeg has the libopus encoder and decoder."""
    try:
        return "libopus" in _av().codecs_available
    except ImportError:  # pragma: no cover - PyAV is a dependency
        return False


def _need_opus() -> None:
    if not opus_available():
        raise AudioError("this PyAV/FFmpeg build has no libopus; install PyAV wheels from PyPI (they include it) or use --no-audio")


class OpusEncoder:
    """Encodes 48 kHz mono PCM into Opus packets of ``frame_ms`` each.

    :meth:`encode` takes any number of samples (float in [-1, 1] or int16) and returns the
    packets completed so far; each packet ``k`` holds input samples ``[k·n, (k+1)·n)`` with
    ``n = params.frame_samples`` (its decoded output is delayed by ``params.pre_skip``
    samples).  :meth:`flush` pads the last partial frame with silence and drains the encoder.
    """

    def __init__(self, kbps: float = 8, frame_ms: int = 20, *, application: str = "voip", complexity: int = 10) -> None:
        if isinstance(kbps, bool) or not isinstance(kbps, (int, float)) or not MIN_KBPS <= kbps <= MAX_KBPS:
            raise ValueError(f"audio bit rate must be {MIN_KBPS}..{MAX_KBPS} kbit/s, got {kbps!r}")
        if frame_ms not in FRAME_MS:
            raise ValueError(f"Opus frame duration must be one of {', '.join(map(str, FRAME_MS))} ms, got {frame_ms!r}")
        if application not in ("voip", "audio", "lowdelay"):
            raise ValueError(f"application must be voip, audio or lowdelay, got {application!r}")
        _need_opus()
        self._options = {
            "frame_duration": str(frame_ms),
            "application": application,
            "compression_level": str(int(complexity)),
            "vbr": "on",
        }
        self._enc = self._open(int(round(kbps * 1000)), self._options)
        self.frame_samples = RATE * frame_ms // 1000
        self._pending = np.zeros(0, np.int16)
        self._pts = 0
        self._pre_skip: int | None = _lookahead(frame_ms, application)
        self._kbps = kbps
        #: packets and payload bytes produced
        self.packets = 0
        self.bytes = 0

    @staticmethod
    def _open(bit_rate: int, options: dict[str, str]):
        av = _av()
        enc = av.CodecContext.create("libopus", "w")
        enc.sample_rate = RATE
        enc.layout = "mono"
        enc.format = "s16"
        enc.bit_rate = bit_rate
        enc.time_base = Fraction(1, RATE)
        enc.options = dict(options)
        try:
            enc.open()
        except av.error.FFmpegError as e:  # pragma: no cover - options are validated by the caller
            raise AudioError(f"cannot open the Opus encoder ({e})") from None
        return enc

    @property
    def params(self) -> AudioParams:
        """The session-header audio extension for this encoder (``pre_skip`` is libopus's
        lookahead, measured once per frame size and application)."""
        return AudioParams(bitrate=int(round(self._kbps * 1000)), frame_samples=self.frame_samples, pre_skip=self._pre_skip)

    def _frame(self, block: np.ndarray):
        av = _av()
        f = av.AudioFrame.from_ndarray(block[None, :], format="s16", layout="mono")
        f.sample_rate = RATE
        f.pts = self._pts
        f.time_base = Fraction(1, RATE)
        self._pts += block.size
        return f

    def _collect(self, packets) -> list[bytes]:
        out = []
        for p in packets:
            b = bytes(p)
            if b:
                out.append(b)
                self.packets += 1
                self.bytes += len(b)
        return out

    def encode(self, samples: np.ndarray) -> list[bytes]:
        x = to_mono(samples)
        s16 = np.clip(np.round(x * 32767.0), -32768, 32767).astype(np.int16)
        buf = np.concatenate([self._pending, s16]) if self._pending.size else s16
        n = self.frame_samples
        whole = buf.size // n * n
        out: list[bytes] = []
        for i in range(0, whole, n):
            out += self._collect(self._enc.encode(self._frame(np.ascontiguousarray(buf[i : i + n]))))
        self._pending = buf[whole:].copy()
        return out

    def flush(self) -> list[bytes]:
        """Encode the last partial frame (padded with silence) and drain; the encoder is then done."""
        out: list[bytes] = []
        if self._pending.size:
            block = np.zeros(self.frame_samples, np.int16)
            block[: self._pending.size] = self._pending
            self._pending = np.zeros(0, np.int16)
            out += self._collect(self._enc.encode(self._frame(block)))
        out += self._collect(self._enc.encode(None))
        return out


_LOOKAHEAD: dict[tuple[int, str], int] = {}


def _lookahead(frame_ms: int, application: str) -> int:
    """libopus's encoder delay in 48 kHz samples: minus the pts of its first packet (FFmpeg
    stamps packets with the time of their first decoded sample)."""
    key = (frame_ms, application)
    if key not in _LOOKAHEAD:
        av = _av()
        enc = OpusEncoder._open(16000, {"frame_duration": str(frame_ms), "application": application})
        n = RATE * frame_ms // 1000
        f = av.AudioFrame.from_ndarray(np.zeros((1, n), np.int16), format="s16", layout="mono")
        f.sample_rate, f.pts, f.time_base = RATE, 0, Fraction(1, RATE)
        pts = [p.pts for p in list(enc.encode(f)) + list(enc.encode(None)) if p.pts is not None]
        _LOOKAHEAD[key] = max(0, -int(min(pts))) if pts else 0
    return _LOOKAHEAD[key]


class OpusDecoder:
    """Decodes Opus packets of one session to 48 kHz mono float32, one packet at a time.

    ``decode(payload)`` returns exactly ``params.frame_samples`` samples; ``decode(None)``
    (a lost packet) returns libopus's concealment for that slot (silence before the first
    packet).  A corrupt payload, or one whose duration is not the session's frame size, is
    concealed the same way and counted in ``corrupt``: the audio clock never slips.
    """

    def __init__(self, params: AudioParams) -> None:
        if not isinstance(params, AudioParams):
            raise TypeError(f"params must be AudioParams, got {type(params).__name__}")
        _need_opus()
        av = _av()
        self.params = params
        self._dec = av.CodecContext.create("libopus", "r")
        self._dec.sample_rate = RATE
        self._dec.layout = "stereo" if params.channels == 2 else "mono"
        self._dec.open()
        self._toc: int | None = None
        #: packets decoded, concealed (lost) and refused (corrupt, then concealed)
        self.decoded = 0
        self.concealed = 0
        self.corrupt = 0

    def _run(self, data: bytes) -> np.ndarray | None:
        av = _av()
        try:
            frames = self._dec.decode(av.Packet(data))
        except (av.error.FFmpegError, ValueError):
            return None
        parts = [f.to_ndarray() for f in frames]
        if not parts:
            return None
        a = np.concatenate([p.reshape(p.shape[0], -1) if p.ndim == 2 else p[None, :] for p in parts], axis=1)
        # packed formats come as (1, n * channels); planar as (channels, n)
        if a.shape[0] == 1 and self.params.channels == 2:
            a = a.reshape(-1, 2).T
        x = to_mono(a, channels_last=False)
        return x if x.size == self.params.frame_samples else None

    def decode(self, payload: bytes | None) -> np.ndarray:
        n = self.params.frame_samples
        if payload is not None:
            pcm = self._run(bytes(payload))
            if pcm is not None:
                self._toc = payload[0] & 0xFC  # config + stereo bit, code 0 (one frame)
                self.decoded += 1
                return pcm
            self.corrupt += 1
        else:
            self.concealed += 1
        if self._toc is None:
            return np.zeros(n, np.float32)
        pcm = self._run(bytes([self._toc]))
        return pcm if pcm is not None else np.zeros(n, np.float32)
