"""Live sessions: frames in, signed packets out (:class:`EncoderSession`); packets in,
verified and watermarked frames out (:class:`RendererSession`).

Transport-free: the caller moves the packets (ZeroMQ, a file, the C API's caller).  The
C API's senders and receivers are these sessions behind handles.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from ..bitstream import SessionHeader, parse_packet
from ..codec import CodecParams, KeypointFrame, Reference
from ..io import Frame
from ..receiver import FrameRenderer, RenderedFrame
from ..security import DEFAULT_SEAL_INTERVAL, Identity, PacketVerdict, SealWriter, StreamVerifier, TrustStore, signer_extension
from ..sender import EncodeStats, FrameEncoder

__all__ = ["EncoderSession", "RenderStep", "RendererSession"]


class _Sealer:
    """:func:`facelink.security.seal_packets`, one call at a time: the same packets, byte for byte.

    The header and ``End`` get spans of their own, the reference chunks one span (sealed
    at start), and frames are sealed every ``floor(interval * fps)`` frames; seal times are
    stream times (a frame's nominal time plus its ``pts_offset``), counted from the header.
    """

    def __init__(self, identity: Identity, header: bytes, interval: float) -> None:
        hdr = SessionHeader.parse(header)
        self.writer = SealWriter(identity, header, interval=interval, start=0.0)
        self.period = Fraction(hdr.fps_den, hdr.fps_num)
        self.t = 0.0
        self.n = -1
        self.last_seq: int | None = None

    def start(self, packets: list[bytes]) -> list[bytes]:
        header, *chunks = packets
        w = self.writer
        out = w.push_isolated([header], 0.0)
        for chunk in chunks:
            out += w.push(chunk, self.t)
        if w.pending:
            out.append(w.seal(self.t))
        return out

    def frame(self, packet: bytes) -> list[bytes]:
        pkt = parse_packet(packet)
        seq = pkt.seq  # type: ignore[union-attr]
        self.n = 0 if self.last_seq is None else self.n + ((seq - self.last_seq) & 0xFFFF)
        self.last_seq = seq
        self.t = max(self.t, float(self.n * self.period) + pkt.pts_offset / 90000)  # type: ignore[union-attr]
        return self.writer.push(packet, self.t)

    def isolated(self, packet: bytes) -> list[bytes]:
        """A control packet between frames (a region reference): a span of its own."""
        return self.writer.push_isolated([packet], self.t)

    def end(self, packet: bytes) -> list[bytes]:
        out = self.writer.push_isolated([packet], self.t)
        if self.writer.pending:
            out.append(self.writer.seal(self.t))
        return out

    def seal(self) -> list[bytes]:
        return [self.writer.seal()] if self.writer.pending else []


class EncoderSession:
    """Frames of one camera or file in, the session's packets out: ``packets, kf = s.push(frame)``.

    ``reference``: the face as it looks in this source (:func:`facelink.face.make_reference`);
    ``params``: the codec's operating point.  The other keyword arguments are
    :class:`~facelink.sender.FrameEncoder`'s: ``width``, ``height``, ``fps`` (required),
    ``tracker``, ``anchor`` (the pose at which the face looks like the reference when the
    reference is another image, :func:`facelink.face.prepare_reference`), ``session_id`` and
    ``created_us`` (a fixed header for reproducible streams).  With ``identity`` the stream is
    signed: the header names the signer and seal packets close a span every ``seal_interval``
    seconds of stream (the packets :func:`facelink.security.seal_packets` makes of the
    unsigned stream, byte for byte); without, it is unsigned.
    """

    def __init__(
        self,
        reference: Reference,
        params: CodecParams,
        *,
        identity: Identity | None = None,
        seal_interval: float = DEFAULT_SEAL_INTERVAL,
        **frame_encoder_args: Any,
    ) -> None:
        if "extensions" in frame_encoder_args:
            raise TypeError("EncoderSession sets the header's extensions itself (the signer)")
        exts = (signer_extension(identity),) if identity is not None else ()
        self.encoder = FrameEncoder(reference, params, extensions=exts, **frame_encoder_args)
        self.identity = identity
        self.seal_interval = seal_interval
        self._sealer: _Sealer | None = None

    @property
    def signed(self) -> bool:
        return self.identity is not None

    @property
    def stats(self) -> EncodeStats:
        """Counts so far; ``bytes`` excludes the reference chunks and the seals."""
        return self.encoder.stats

    def start(self) -> list[bytes]:
        """The session header and the reference chunks (and their seals), in sending order."""
        packets = [bytes(p) for p in self.encoder.start()]
        if self.identity is None:
            return packets
        self._sealer = _Sealer(self.identity, packets[0], self.seal_interval)
        return self._sealer.start(packets)

    def push(self, frame: Frame) -> tuple[list[bytes], KeypointFrame]:
        """Track and code one frame: its packet (and a seal when a span closes), any region
        reference due after it (a crop of the open mouth, sealed on its own), and the coded frame."""
        packet, kf = self.encoder.push(frame)
        packet = bytes(packet)
        out = self._sealer.frame(packet) if self._sealer is not None else [packet]
        for extra in self.encoder.take_extra():
            out += self._sealer.isolated(extra) if self._sealer is not None else [extra]
        return out, kf

    def end(self) -> list[bytes]:
        """The end-of-stream packet, with the seals that close the stream when signed."""
        packet = bytes(self.encoder.end())
        return self._sealer.end(packet) if self._sealer is not None else [packet]

    def seal(self) -> list[bytes]:
        """Close the current span now (``[seal]``, or ``[]`` when nothing awaits one): for a
        source that stalls below its nominal frame rate.  Signed sessions only."""
        if self._sealer is None:
            raise ValueError("this session does not sign (no identity), or has not started")
        return self._sealer.seal()


@dataclass(frozen=True)
class RenderStep:
    """What one packet gave a :class:`RendererSession`: a frame (frame packets of a ready
    session) and, for a verifying session, the verifier's verdict on the packet."""

    frame: RenderedFrame | None
    verdict: PacketVerdict | None


class RendererSession:
    """Packets in, verified and watermarked frames out: ``step = r.push(packet)``.

    Each packet is decoded once: the verifier (when ``verify``) checks it, the decoder
    decodes it, the session renderer turns the decoded frame into a watermarked image.
    Frames come out provisionally, as they arrive; the seal that closes their span carries
    the verdict (``step.verdict``).  ``trust`` (a :class:`TrustStore`, or None with
    ``insecure``), ``insecure`` and ``max_age`` are the verifier's (live-link policy, like
    ``facelink receive``); a refused session raises
    :class:`~facelink.errors.VerificationError` at its header and is never rendered.
    ``target``, ``pose_offset``, ``eye_contact``, ``refiner``: see
    :class:`~facelink.receiver.SessionRenderer`.
    """

    def __init__(
        self,
        *,
        verify: bool = True,
        trust: TrustStore | None = None,
        insecure: bool = False,
        max_age: float | None = None,
        target: Reference | None = None,
        pose_offset: tuple[float, float, float] = (0.0, 0.0, 0.0),
        eye_contact: bool = False,
        backend: str = "auto",
        refiner: str | None = "off",
        receiver_key: bytes | None = None,
    ) -> None:
        self.verifier = StreamVerifier(trust, insecure=insecure, max_age=max_age) if verify else None
        self.renderer = FrameRenderer(
            target=target, pose_offset=pose_offset, backend=backend, refiner=refiner, receiver_key=receiver_key,
            eye_contact=eye_contact,
        )  # fmt: skip

    def verdict(self, packet: bytes, now: float | None = None) -> PacketVerdict | None:
        """The verifier's verdict on ``packet`` (None when not verifying); call before :meth:`render`."""
        return self.verifier.feed(packet, now=now) if self.verifier is not None else None

    def render(self, packet: bytes) -> RenderedFrame | None:
        """Decode ``packet`` and render its frame (None for other packets); raises InvalidPacket."""
        return self.renderer.push(packet)

    def push(self, packet: bytes, now: float | None = None) -> RenderStep:
        """:meth:`verdict` then :meth:`render`."""
        v = self.verdict(packet, now)
        return RenderStep(self.render(packet), v)

    def set_eye_contact(self, on: bool) -> None:
        self.renderer.session.set_eye_contact(on)
