"""Audio in the keypoint stream: PCM with stream times -> AUDIO packets -> PCM with stream times.

The stream clock is the keypoint codec's: stream time 0 is the capture time of frame 0
(:attr:`facelink.codec.StreamEncoder.stream_start`), and an AUDIO packet's ``timestamp``
counts 48 kHz samples on that clock.  A/V sync is therefore exact by construction: a
decoded sample at stream sample ``s`` plays at ``s / 48000`` seconds, the same clock the
decoded frames' times use.

Sender: :class:`AudioPacketizer` (Opus encoder + timestamps + sequence numbers).
Receiver: :class:`AudioDepacketizer` (jitter buffer + Opus decoder with PLC), giving
:class:`AudioChunk` s; :func:`assemble` lays chunks on a timeline for a file;
:func:`decode_audio` does both for a recorded stream.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from ..bitstream import AUDIO_VERSION, AudioPacket, AudioParams, PacketType, SessionHeader, parse_packet
from ..errors import InvalidPacket
from ._jitter import JitterBuffer, Slot
from ._opus import OpusDecoder, OpusEncoder
from ._pcm import RATE, to_mono

__all__ = [
    "AudioChunk", "AudioDepacketizer", "AudioPacketizer", "AudioStats", "SessionSound", "assemble", "decode_audio", "stream_samples",
]  # fmt: skip

#: largest hole (s) the packetizer fills with silence to keep packets contiguous; longer is a jump
MAX_FILL_S = 2.0


def stream_samples(seconds: float) -> int:
    """Stream time in seconds as 48 kHz samples (nearest)."""
    return int(round(float(seconds) * RATE))


class AudioPacketizer:
    """Sender side: 48 kHz mono PCM with stream times in, AUDIO packet bytes out.

    ``push(samples, start)``: ``start`` is the stream sample (48 kHz, stream time 0 = frame 0)
    of ``samples[0]``, or None to continue where the last block ended.  Small clock drift
    between the audio device and the video clock (up to ``drift_limit`` samples, default half
    a frame) is absorbed; a later ``start`` inserts silence (up to 2 s; beyond that the
    timestamps jump, so the receiver places the audio where it belongs); an earlier
    ``start`` drops the samples already covered.  Samples before stream time 0 are dropped.
    Packets are numbered 0, 1, 2, ... (``seq`` wraps at 65536).
    """

    def __init__(self, kbps: float = 8, frame_ms: int = 20, *, drift_limit: int | None = None, application: str = "voip") -> None:
        self.encoder = OpusEncoder(kbps, frame_ms, application=application)
        self.params: AudioParams = self.encoder.params
        n = self.encoder.frame_samples
        self.drift_limit = n // 2 if drift_limit is None else int(drift_limit)
        self._buf = np.zeros(0, np.float32)
        self._buf_start: int | None = None  # stream sample of _buf[0]
        self._frames: deque[int] = deque()  # stream sample of each frame handed to the encoder
        self._last_ts: int | None = None
        self._seq = 0
        #: packets made, payload bytes, and the wire bytes of the packets
        self.packets = 0
        self.wire_bytes = 0
        self.fills = 0
        self.jumps = 0

    def _emit(self, payloads: list[bytes]) -> list[bytes]:
        out = []
        n = self.encoder.frame_samples
        for p in payloads:
            ts = self._frames.popleft() if self._frames else (self._last_ts + n if self._last_ts is not None else 0)
            self._last_ts = ts
            pkt = bytes(AudioPacket(self._seq & 0xFFFF, ts & 0xFFFFFFFF, p, version=AUDIO_VERSION))
            self._seq += 1
            self.packets += 1
            self.wire_bytes += len(pkt)
            out.append(pkt)
        return out

    def push(self, samples: np.ndarray, start: int | None = None) -> list[bytes]:
        x = to_mono(samples)
        if start is not None and (isinstance(start, bool) or not isinstance(start, (int, np.integer))):
            raise TypeError(f"start must be an int number of 48 kHz samples, got {type(start).__name__}")
        end = None if self._buf_start is None else self._buf_start + self._buf.size
        if start is None:
            start = end if end is not None else 0
        start = int(start)
        out: list[bytes] = []
        if start < 0:  # before stream time 0: dropped first, so it cannot count as drift
            x = x[-start:]
            start = 0
            if x.size == 0:
                return out
        if end is not None:
            d = start - end
            if abs(d) <= self.drift_limit:
                start = end  # clock drift: keep the packets contiguous
            elif 0 < d <= MAX_FILL_S * RATE:
                x = np.concatenate([np.zeros(d, np.float32), x])
                start = end
                self.fills += 1
            elif d < 0:
                x = x[-d:]  # already covered
                start = end
                if x.size == 0:
                    return out
            else:  # a jump: close the partial frame, restart the timestamps at `start`
                out += self._pad_partial()
                self._buf_start = None
                self.jumps += 1
        if self._buf_start is None:
            self._buf_start = start
        self._buf = np.concatenate([self._buf, x]) if self._buf.size else x
        return out + self._encode_whole()

    def _encode_whole(self) -> list[bytes]:
        n = self.encoder.frame_samples
        out: list[bytes] = []
        assert self._buf_start is not None
        while self._buf.size >= n:
            self._frames.append(self._buf_start)
            out += self._emit(self.encoder.encode(self._buf[:n]))
            self._buf = self._buf[n:]
            self._buf_start += n
        return out

    def _pad_partial(self) -> list[bytes]:
        if not self._buf.size:
            return []
        n = self.encoder.frame_samples
        pad = n - self._buf.size % n if self._buf.size % n else 0
        self._buf = np.concatenate([self._buf, np.zeros(pad, np.float32)])
        return self._encode_whole()

    def flush(self) -> list[bytes]:
        """End of the audio: the last partial frame (padded) and the encoder's tail."""
        out = self._pad_partial()
        return out + self._emit(self.encoder.flush())


@dataclass(frozen=True)
class AudioChunk:
    """Decoded audio: ``pcm`` (float32 mono, 48 kHz) starting at stream sample ``start``;
    ``concealed`` when it is Opus's concealment of a lost or corrupt packet."""

    start: int
    pcm: np.ndarray
    concealed: bool = False

    @property
    def end(self) -> int:
        return self.start + self.pcm.size

    @property
    def time(self) -> float:
        return self.start / RATE


@dataclass
class AudioStats:
    """What a depacketizer saw (a dataclass so runners can report it as JSON)."""

    packets: int = 0
    decoded: int = 0
    concealed: int = 0
    corrupt: int = 0
    late: int = 0
    duplicates: int = 0
    resyncs: int = 0
    refused: int = 0
    notes: list[str] = field(default_factory=list)


class AudioDepacketizer:
    """Receiver side: AUDIO packets (bytes or :class:`AudioPacket`, any order) in, decoded
    :class:`AudioChunk` s in play order out (losses concealed by Opus PLC).

    ``depth`` is the jitter buffer's reorder window in packets (0 for recorded, in-order
    streams: nothing is held back).  Packets that are not AUDIO packets of version 3, or
    whose ``payload`` the decoder refuses, never stop the stream: they are counted.
    """

    def __init__(self, params: AudioParams, *, depth: int = 3, max_gap: int = 50) -> None:
        self.params = params
        self.decoder = OpusDecoder(params)
        self.jitter = JitterBuffer(params.frame_samples, depth=depth, max_gap=max_gap)
        self.stats = AudioStats()

    @classmethod
    def for_header(cls, header: SessionHeader, **kw) -> "AudioDepacketizer | None":
        """A depacketizer for the session's audio, or None when the session has none."""
        params = header.audio
        return None if params is None else cls(params, **kw)

    def _chunks(self, slots: list[Slot]) -> list[AudioChunk]:
        out = []
        for s in slots:
            before = self.decoder.corrupt
            pcm = self.decoder.decode(s.payload)
            bad = s.payload is None or self.decoder.corrupt != before
            out.append(AudioChunk(s.timestamp - self.params.pre_skip, pcm, bad))
        st = self.stats
        st.decoded, st.concealed, st.corrupt = self.decoder.decoded, self.decoder.concealed, self.decoder.corrupt
        st.late, st.duplicates, st.resyncs = self.jitter.late, self.jitter.duplicates, self.jitter.resyncs
        return out

    def feed(self, packet: bytes | AudioPacket) -> list[AudioChunk]:
        if not isinstance(packet, AudioPacket):
            try:
                packet = parse_packet(bytes(packet))
            except (InvalidPacket, TypeError):
                packet = None
            if not isinstance(packet, AudioPacket):
                self.stats.refused += 1
                return []
        self.stats.packets += 1
        return self._chunks(self.jitter.push(packet.seq, packet.timestamp, packet.payload))

    def flush(self) -> list[AudioChunk]:
        return self._chunks(self.jitter.flush())


class SessionSound:
    """A session's AUDIO packets in, decoded :class:`AudioChunk` s out: the depacketizer is made
    from the session header the first time a packet of that session arrives.  A packet of
    another session restarts it, or is ignored with ``first_only`` (one output, one sound
    track).  Other packet types are ignored."""

    def __init__(self, *, first_only: bool = False) -> None:
        self.first_only = first_only
        self._session: bytes | None = None
        self._dep: AudioDepacketizer | None = None

    def feed(self, header: SessionHeader | None, packet: bytes) -> list[AudioChunk]:
        from ..bitstream import PacketType, packet_type

        if header is None or packet_type(packet) != PacketType.AUDIO:
            return []
        if header.session_id != self._session:
            if self.first_only and self._session is not None:
                return []
            self._session = header.session_id
            self._dep = AudioDepacketizer.for_header(header)
        return self._dep.feed(packet) if self._dep is not None else []

    def flush(self) -> list[AudioChunk]:
        """What the reorder window still holds (end of the session)."""
        return self._dep.flush() if self._dep is not None else []


def assemble(chunks: Iterable[AudioChunk], start: int = 0, length: int | None = None) -> np.ndarray:
    """Lay chunks on one timeline from stream sample ``start``: holes are silence, overlaps
    take the later chunk, anything before ``start`` (or past ``length`` samples) is cut.
    Without ``length`` the track ends with the last chunk."""
    items = list(chunks)
    end = max((c.end for c in items), default=start) - start
    n = max(0, end) if length is None else int(length)
    out = np.zeros(n, np.float32)
    for c in items:
        a, b = c.start - start, c.end - start
        lo, hi = max(a, 0), min(b, n)
        if lo < hi:
            out[lo:hi] = c.pcm[lo - a : hi - a]
    return out


def decode_audio(packets: Iterable[bytes], *, length: int | None = None) -> tuple[np.ndarray, AudioStats] | None:
    """The audio of a recorded session (its packets in order, any types): 48 kHz mono float32
    from stream time 0, and the stats.  ``None`` when the session carries no audio.
    ``length`` (samples) cuts or pads the track, e.g. to the decoded video's duration;
    without it the track ends with its last packet, but never beyond 1 s after the later
    of the session's frames and its audio packets' total duration.

    Packets before the session header are ignored; a second session header ends the first
    session's audio (one session per call).  Gaps in ``seq`` are concealed with Opus PLC.
    """
    dep: AudioDepacketizer | None = None
    header: SessionHeader | None = None
    chunks: list[AudioChunk] = []
    frames = 0
    for data in packets:
        raw = bytes(data)
        if len(raw) < 4 or raw[:2] != b"FL":
            continue
        kind = raw[3]
        if kind == PacketType.SESSION_HEADER:
            try:
                h = SessionHeader.parse(raw)
            except InvalidPacket:
                continue
            if header is None:
                header = h
                dep = AudioDepacketizer.for_header(h, depth=0)
            elif h.session_id != header.session_id:
                break
        elif kind == PacketType.AUDIO and dep is not None:
            chunks += dep.feed(raw)
        elif kind in (PacketType.KEY_FRAME, PacketType.PREDICTED_FRAME, PacketType.NO_FACE):
            frames += 1
    if dep is None or header is None:
        return None
    chunks += dep.flush()
    if length is None:
        # the track ends with its last chunk, but no later than the session's frames or its
        # audio packets say (plus a second): a corrupt or hostile timestamp must not make a
        # huge silent track
        video = frames * header.fps_den / header.fps_num
        audio = dep.stats.packets * dep.params.frame_seconds
        cap = int(round((max(video, audio) + 1.0) * RATE))
        length = min(max((c.end for c in chunks), default=0), cap)
    return assemble(chunks, 0, length), dep.stats
