"""The sending end of a link: landmarks -> keypoint packets -> seals -> a ZeroMQ DEALER.

A thin runner around pure cores (:class:`~facelink.codec.StreamEncoder`,
:class:`~facelink.security.SealWriter`, :class:`ControlMessage`).  One thread; the
caller drives it by calling :meth:`Sender.send_frame` per captured frame and
:meth:`Sender.service` while it waits (pacing).

Link behaviour:

* On every (re)connection the sender emits a *sync seal* (gives the receiver a
  proven chain root), the session header, and a seal, then forces a key frame.
* The reference goes out on request (the receiver asks only when its cache lacks it).
* The header is repeated every ``header_interval`` seconds; seals come every
  ``seal_interval`` seconds of stream.
* A frame that cannot go out at once (no receiver, or the link backed up) is not
  encoded at all -- it would be stale -- and the next frame is a key frame.  Headers,
  reference chunks and seals are never dropped: they wait in a bounded backlog.
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import zmq
from zmq.utils.monitor import recv_monitor_message

from .. import bitstream as bs
from ..codec import CodecParams, Reference, StreamEncoder
from ..codec._regions import RegionPicker, mouth_opening
from ..errors import InvalidPacket
from ..keypoints import Pose, canonicalize
from ..codec._extensions import header_extensions
from ..security import DEFAULT_SEAL_INTERVAL, Identity, SealWriter, signer_extension
from ._control import ControlMessage, ControlType
from ._link import sender_socket

__all__ = ["Sender", "SenderStats", "make_codec"]

#: control packets waiting for the link beyond this many mean the link is dead: start over
MAX_BACKLOG = 512


def make_codec(
    reference: Reference,
    params: CodecParams,
    identity: Identity,
    *,
    width: int,
    height: int,
    fps: Fraction | float,
    anchor: Pose | None = None,
    session_id: bytes | None = None,
    created_us: int | None = None,
    audio: object = None,
) -> StreamEncoder:
    """A signed session's encoder: anchor pose (tag 1) and signer key (tag 2) in the header;
    ``audio`` (:class:`~facelink.bitstream.AudioParams`) when the session carries sound."""
    exts = header_extensions(reference.landmarks, anchor, (signer_extension(identity),))
    return StreamEncoder(
        reference, params, width=width, height=height, fps=fps, session_id=session_id, created_us=created_us,
        extensions=exts, audio=audio,
    )  # fmt: skip


@dataclass
class SenderStats:
    """What went out: bytes by packet class, frames sent/skipped, link events."""

    frames_sent: int = 0
    frames_skipped: int = 0
    key_frames: int = 0
    frame_bytes: int = 0
    audio_bytes: int = 0
    audio_packets: int = 0
    header_bytes: int = 0
    reference_bytes: int = 0
    seal_bytes: int = 0
    end_bytes: int = 0
    packets: int = 0
    seals: int = 0
    connects: int = 0
    disconnects: int = 0
    auth_failures: int = 0
    handshake_failures: int = 0
    key_requests: int = 0
    reference_requests: int = 0
    sync_requests: int = 0
    bad_control: int = 0
    backlog_max: int = 0
    backlog_dropped: int = 0

    @property
    def total_bytes(self) -> int:
        return self.frame_bytes + self.audio_bytes + self.header_bytes + self.reference_bytes + self.seal_bytes + self.end_bytes

    def as_dict(self) -> dict:
        d = dict(self.__dict__)
        d["total_bytes"] = self.total_bytes
        return d


class Sender:
    """Sends one signed session to a receiver over ZeroMQ.

    ``receiver_key`` is the receiver's Curve public key (40-char Z85); ``curve=False``
    sends in the clear (lab use only).  The session (header, session id, start time)
    starts with the first frame sent, or earlier with :meth:`start_session`; its
    ``created_us`` is then the wall time of the session's first frame, which is what
    a receiver's latency estimate counts from.  ``clock`` is a monotonic clock in seconds.
    """

    def __init__(
        self,
        endpoint: str,
        identity: Identity,
        *,
        reference: Reference,
        params: CodecParams,
        width: int,
        height: int,
        fps: Fraction | float,
        anchor: Pose | None = None,
        receiver_key: bytes | None = None,
        curve: bool = True,
        seal_interval: float = DEFAULT_SEAL_INTERVAL,
        header_interval: float = 10.0,
        session_id: bytes | None = None,
        clock: Callable[[], float] = time.monotonic,
        audio_kbps: float | None = None,
    ) -> None:
        """``audio_kbps``: the session carries sound, Opus-coded at this rate (:meth:`send_audio`)."""
        if curve and receiver_key is None:
            raise ValueError("CurveZMQ needs the receiver's Curve public key (receiver_key), or curve=False")
        if not header_interval > 0:
            raise ValueError("header_interval must be > 0 seconds")
        self.endpoint = endpoint
        self.identity = identity
        self.reference = reference
        self.params = params
        self.size = (width, height)
        self.fps = fps
        self.anchor = anchor
        self.receiver_key = receiver_key if curve else None
        self.seal_interval = seal_interval
        self.header_interval = header_interval
        self.session_id = session_id if session_id is not None else os.urandom(16)
        self.clock = clock
        self.stats = SenderStats()
        self.codec: StreamEncoder | None = None
        self._w: SealWriter | None = None
        self._regions: RegionPicker | None = None
        self._audio_kbps = audio_kbps
        self._pack = None  # the session's AudioPacketizer (when it carries sound)
        self._header = b""
        self._ctx: zmq.Context | None = None
        self._sock: zmq.Socket | None = None
        self._mon: zmq.Socket | None = None
        self._poller = zmq.Poller()
        self._backlog: deque[tuple[bytes, str]] = deque()
        self.connected = False
        self._force_key = True
        self._last_header = 0.0
        self._last_ref = -1e9
        self._last_sync = -1e9
        self._last_key_req = -1e9
        self._last_index = -1
        self.last_auth_failure = 0.0

    # -- lifecycle --------------------------------------------------------------------

    def open(self) -> None:
        """Create the socket and start connecting (returns at once)."""
        if self._sock is not None:
            return
        self._ctx = zmq.Context()
        ident = self.identity
        self._sock, self._mon = sender_socket(
            self._ctx,
            self.endpoint,
            curve_secret=ident.curve_secret if self.receiver_key else None,
            curve_public=ident.public.curve if self.receiver_key else None,
            server_key=self.receiver_key,
        )
        self._poller.register(self._sock, zmq.POLLIN)
        self._poller.register(self._mon, zmq.POLLIN)

    def close(self, linger: float = 1.0) -> SenderStats:
        """End the session cleanly (End + final seal when connected), flush up to ``linger`` s, close."""
        if self._sock is None:
            return self.stats
        try:
            if self.connected and self.codec is not None and self._w is not None:
                self._emit(self._w.push_isolated([self.codec.end()], self.clock()), "end")
                deadline = self.clock() + linger
                while self._backlog and self.clock() < deadline:
                    self.service(min(0.05, max(0.0, deadline - self.clock())))
        finally:
            sock, mon, ctx = self._sock, self._mon, self._ctx
            self._sock = self._mon = self._ctx = None
            try:
                if sock is not None:
                    sock.disable_monitor()
            except zmq.ZMQError:
                pass
            if mon is not None:
                mon.close(0)
            if sock is not None:
                sock.close(int(linger * 1000))
            if ctx is not None:
                ctx.term()
            self.connected = False
        return self.stats

    def __enter__(self) -> Sender:
        self.open()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- driving ----------------------------------------------------------------------

    def wait_connected(self, timeout: float) -> bool:
        """Service the link until a receiver is connected, or ``timeout`` seconds pass."""
        deadline = self.clock() + timeout
        while not self.connected:
            left = deadline - self.clock()
            if left <= 0:
                return False
            self.service(min(left, 0.05))
        return True

    def service(self, timeout: float = 0.0) -> None:
        """Handle link events and receiver requests, flush the backlog, emit due seals/headers.

        Waits up to ``timeout`` seconds for something to happen (use it to pace frames).
        """
        if self._sock is None:
            raise RuntimeError("Sender.open() first")
        events = dict(self._poller.poll(max(0, int(timeout * 1000))))
        if self._mon in events:
            self._monitor_events()
        if self._sock in events:
            self._control_messages()
        self._flush()
        if self.connected and self._w is not None:
            now = self.clock()
            # a repeat waits for a span boundary (at most one seal interval), so it costs one seal, not two
            if now - self._last_header >= self.header_interval and (
                self._w.pending == 0 or now - self._last_header >= self.header_interval + 2 * self.seal_interval
            ):
                self._last_header = now
                self._emit(self._w.push_isolated([self._header], now), "header")
            self._emit(self._w.poll(now), "seal")

    def skip_frame(self) -> None:
        """Note a frame the caller dropped before encoding (late, or no receiver): next one is a key frame."""
        self.stats.frames_skipped += 1
        self._force_key = True

    def start_session(self, captured_at: float | None = None) -> None:
        """Create the session now and, when connected, send its header (instead of at the first frame).

        ``captured_at``: wall-clock time (seconds since the epoch) of the session's first
        frame, stored as the header's ``created_us`` (default: now).
        """
        if self.codec is None:
            self._start_session(None if captured_at is None else int(captured_at * 1e6))
            if self.connected:
                self._sync()

    def send_frame(
        self,
        index: int,
        t: float,
        landmarks: np.ndarray | None,
        *,
        captured_at: float | None = None,
        eyes: object = None,
        image: np.ndarray | None = None,
    ) -> bool:
        """Encode and send frame ``index`` taken at ``t`` seconds; False if it was skipped.

        ``eyes``: the frame's :class:`~facelink.face.EyeState` (``FaceObservation.eyes``).
        ``image``: the frame itself (RGB), from which region references are cut (a crop of
        the open mouth, once; see :mod:`facelink.codec._regions`); without it none are sent.

        ``captured_at`` (wall clock, seconds since the epoch) starts the session's clock
        when this is its first frame; receivers measure latency against it.

        A frame is skipped (not encoded) when no receiver is connected or the link is
        backed up; the next frame that goes out is then a key frame.
        """
        if index <= self._last_index:
            raise ValueError("frame indices must increase")
        self._last_index = index
        self.service(0.0)
        if self.connected and self.codec is None:
            self.start_session(captured_at)
        sock = self._sock
        if (
            not self.connected
            or self.codec is None
            or self._backlog
            or sock is None
            or not (int(sock.getsockopt(zmq.EVENTS)) & zmq.POLLOUT)
        ):
            self.stats.frames_skipped += 1
            self._force_key = True
            return False
        pkt, kf = self.codec.encode(index, t, landmarks, force_key=self._force_key, eyes=eyes)
        self._force_key = False
        self.stats.frames_sent += 1
        self.stats.key_frames += kf.kind.value == "key"
        self._emit(self._w.push(pkt, self.clock()), "frame")  # type: ignore[union-attr]
        if image is not None and self._regions is not None:
            region = self._regions.offer(index, image, landmarks)
            if region is not None:
                self._emit(self._w.push_isolated([region], self.clock()), "reference")  # type: ignore[union-attr]
        return True

    def send_audio(self, samples: np.ndarray, t: float) -> int:
        """Send sound: 48 kHz mono PCM whose first sample was captured at ``t`` seconds, on
        the clock of :meth:`send_frame`'s ``t``.  Packets go into the frames' seal spans.
        Sound before the session's first frame, or while no receiver is connected, is
        dropped (a receiver conceals the gap).  Returns the packets sent."""
        if self._audio_kbps is None:
            raise ValueError("this sender carries no sound: construct it with audio_kbps=")
        codec = self.codec
        if self._pack is None or codec is None or codec.stream_start is None or self._w is None or not self.connected:
            return 0
        from ..audio import stream_samples

        pkts = self._pack.push(samples, stream_samples(t - codec.stream_start))
        now = self.clock()
        for p in pkts:
            self._emit(self._w.push(p, now), "audio")
        return len(pkts)

    # -- internals --------------------------------------------------------------------

    def _start_session(self, created_us: int | None = None) -> None:
        w, h = self.size
        if self._audio_kbps is not None:
            from ..audio import AudioPacketizer

            self._pack = AudioPacketizer(self._audio_kbps)
        self.codec = make_codec(
            self.reference, self.params, self.identity, width=w, height=h, fps=self.fps, anchor=self.anchor,
            session_id=self.session_id, created_us=created_us, audio=self._pack.params if self._pack is not None else None,
        )  # fmt: skip
        self._header = bytes(self.codec.header)
        opening = mouth_opening(canonicalize(self.codec.basis, self.reference.landmarks)[0])
        self._regions = RegionPicker(self.codec.header.reference_digest, self.codec.basis, self.params.region_bytes, opening)
        self._w = SealWriter(self.identity, self._header, interval=self.seal_interval, start=self.clock())

    def _on_connect(self) -> None:
        self._backlog.clear()  # anything queued for the previous connection is stale
        self._force_key = True
        if self.codec is not None:  # a session is running: re-sync the (new) receiver now
            self._sync()

    def _sync(self) -> None:
        """Sync seal (a proven chain root for a receiver that just joined), header, seal."""
        w = self._w
        if w is None:
            return
        now = self.clock()
        # always open with a seal: it gives a receiver that just joined a proven chain root
        opening = [] if w.pending else [w.seal()]
        self._emit(opening + w.push_isolated([self._header], now), "header")
        self._last_header = now

    def _monitor_events(self) -> None:
        while True:
            try:
                ev = recv_monitor_message(self._mon, zmq.NOBLOCK)  # type: ignore[arg-type]
            except zmq.Again:
                return
            kind = ev["event"]
            if kind == zmq.EVENT_HANDSHAKE_SUCCEEDED:
                self.connected = True
                self.stats.connects += 1
                self._on_connect()
            elif kind == zmq.EVENT_DISCONNECTED:
                if self.connected:
                    self.stats.disconnects += 1
                self.connected = False
                self._backlog.clear()
            elif kind == zmq.EVENT_HANDSHAKE_FAILED_AUTH:
                self.stats.auth_failures += 1
                self.last_auth_failure = self.clock()
            else:
                self.stats.handshake_failures += 1

    def _control_messages(self) -> None:
        for _ in range(256):
            try:
                frames = self._sock.recv_multipart(zmq.NOBLOCK)  # type: ignore[union-attr]
            except zmq.Again:
                return
            if len(frames) != 1:
                self.stats.bad_control += 1
                continue
            try:
                msg = ControlMessage.parse(frames[0])
            except InvalidPacket:
                self.stats.bad_control += 1
                continue
            self._on_control(msg)

    def _on_control(self, msg: ControlMessage) -> None:
        if self._w is None or self.codec is None or not self.connected:
            return
        now = self.clock()
        if msg.kind is ControlType.KEY_REQUEST:
            self.stats.key_requests += 1
            if now - self._last_key_req >= 0.1:
                self._last_key_req = now
                self._force_key = True
        elif msg.kind is ControlType.REFERENCE_REQUEST:
            self.stats.reference_requests += 1
            if msg.digest_prefix == self.reference.digest[:8] and now - self._last_ref >= 1.0:
                self._last_ref = now
                # the reference, and the region references sent so far (a late joiner's need too)
                extra = self._regions.packets if self._regions is not None else []
                self._emit(self._w.push_isolated(self.codec.reference_chunks() + extra, now), "reference")
        elif msg.kind is ControlType.SYNC_REQUEST:
            self.stats.sync_requests += 1
            if now - self._last_sync >= 1.0:
                self._last_sync = now
                self._sync()

    def _account(self, data: bytes, what: str) -> None:
        s = self.stats
        s.packets += 1
        if bs.packet_type(data) == bs.PacketType.SEAL:
            s.seals += 1
            s.seal_bytes += len(data)
        elif what == "frame":
            s.frame_bytes += len(data)
        elif what == "audio":
            s.audio_bytes += len(data)
            s.audio_packets += 1
        elif what == "reference":
            s.reference_bytes += len(data)
        elif what == "header":
            s.header_bytes += len(data)
        else:
            s.end_bytes += len(data)

    def _emit(self, packets: list[bytes], what: str) -> None:
        """Send in order; whatever cannot go now waits in the backlog (never reordered)."""
        for p in packets:
            self._account(p, what)
            if self._backlog or not self._try_send(p):
                self._backlog.append((p, what))
        if len(self._backlog) > MAX_BACKLOG:
            # the link has been stuck for a long time: give up on the queue, resync on reconnect
            self.stats.backlog_dropped += len(self._backlog)
            self._backlog.clear()
        self.stats.backlog_max = max(self.stats.backlog_max, len(self._backlog))

    def _try_send(self, data: bytes) -> bool:
        if not self.connected:
            return False
        try:
            self._sock.send(data, zmq.NOBLOCK)  # type: ignore[union-attr]
        except zmq.Again:
            return False
        return True

    def _flush(self) -> None:
        while self._backlog and self._try_send(self._backlog[0][0]):
            self._backlog.popleft()

