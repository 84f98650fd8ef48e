"""Whole-stream rendering: a ``.flk`` file (or packet iterable) to a video file."""

from __future__ import annotations

import time
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING, Callable, Iterable

from .codec import Reference
from .errors import InputError, InvalidPacket
from .face._reference import load_target  # noqa: F401 - re-exported
from .io import BackgroundWriter, VideoWriter
from .receiver import FrameRenderer

if TYPE_CHECKING:
    from .provenance import Recorded, RecordingLog

__all__ = ["DecodeResult", "decode_packets", "load_target"]


@dataclass
class DecodeResult:
    frames: int = 0
    held_frames: int = 0
    width: int = 0
    height: int = 0
    fps: float = 0.0
    generated: int = 0
    generate_seconds: float = 0.0
    wall: float = 0.0
    invalid_packets: int = 0
    first_error: str = ""
    verification: dict | None = None
    #: sessions, frames and verified seals rendered (for the provenance manifest)
    log: RecordingLog | None = None
    #: what :func:`facelink.pipeline.decode_file` wrote for provenance (manifest, C2PA), if anything
    provenance: Recorded | None = None
    #: the output file (set by :func:`facelink.pipeline.decode_file`)
    output: str | None = None
    #: the session tags (``facelink verify``'s session ids) of the sessions rendered, in order
    sessions: tuple[str, ...] = ()
    #: seconds of sound written under the frames, and how many pieces of it were concealed losses
    audio_seconds: float = 0.0
    audio_concealed: int = 0

    @property
    def partial(self) -> bool:
        """The output stops short of a verified End, or the stream was damaged."""
        if self.invalid_packets:
            return True
        v = self.verification
        return v is not None and v.get("signed", True) and not v.get("end_verified", False)

    def as_dict(self) -> dict:
        return {
            "frames": self.frames,
            "held_frames": self.held_frames,
            "width": self.width,
            "height": self.height,
            "fps": round(self.fps, 4),
            "generator_fps": round(self.generated / self.generate_seconds, 2) if self.generate_seconds else 0.0,
            "decode_fps": round(self.frames / self.wall, 2) if self.wall else 0.0,
            "invalid_packets": self.invalid_packets,
            "audio_seconds": round(self.audio_seconds, 3),
            "audio_concealed": self.audio_concealed,
            "verification": self.verification,
            "partial": self.partial,
            "provenance": self.provenance.as_dict() if self.provenance is not None else None,
            "output": self.output,
            "session": self.sessions[0] if self.sessions else None,
            "sessions": list(self.sessions),
        }


def decode_packets(
    packets: Iterable[bytes],
    output: str,
    *,
    target: Reference | None = None,
    pose_offset: tuple[float, float, float] = (0.0, 0.0, 0.0),
    backend: str = "auto",
    progress: Callable[[int, int | None], None] | None = None,
    on_frame: Callable[[object], None] | None = None,
    strict: bool = False,
    refiner: str | None = "off",
    verified: bool = False,
    receiver_key: bytes | None = None,
    eye_contact: bool = False,
) -> DecodeResult:
    """Render every frame packet to ``output`` (H.264 MP4 at the reference's resolution).

    ``strict``: a malformed packet is an error (for verified streams, where it cannot
    happen unless the signer produced it); otherwise damaged packets are skipped and counted.
    ``verified``: every packet has passed seal verification (:func:`~facelink.security.iter_verified`),
    so its seals go into the provenance log (``res.log``).  ``receiver_key``: the Ed25519
    key the watermark names (default: this machine's local key).  ``eye_contact``: redirect
    the rendered gaze at the camera (:meth:`~facelink.receiver.Retargeter.eyes`).
    """
    res = DecodeResult()
    renderer = FrameRenderer(
        target=target, pose_offset=pose_offset, backend=backend, refiner=refiner, receiver_key=receiver_key, eye_contact=eye_contact
    )
    res.log = renderer.session.log
    writer: BackgroundWriter | None = None
    sound = _SoundOut()
    t0 = time.perf_counter()
    it = iter(packets)
    try:
        while True:
            try:
                p = next(it)
            except StopIteration:
                break
            except InvalidPacket as e:  # a damaged container: keep what decoded, labelled partial
                res.invalid_packets += 1
                res.first_error = res.first_error or str(e)
                res.log.interrupt(f"stream damaged or truncated after {res.frames} frames ({e})")
                break
            try:
                frame = renderer.push(p)
            except InvalidPacket as e:
                if strict:
                    raise
                res.invalid_packets += 1
                res.first_error = res.first_error or str(e)
                res.log.interrupt(f"damaged packet skipped ({e})")
                continue
            if verified:
                _log_verified(res, renderer, p)
            sound.feed(p, renderer.decoder.header)
            if frame is None:
                continue
            if writer is None:
                hdr = renderer.decoder.header
                writer = _open_writer(output, renderer, frame, res, audio=hdr is not None and hdr.audio is not None)
            writer.write(frame.image, frame.time)
            sound.drain(writer)
            if on_frame is not None:
                on_frame(frame)
            res.frames += 1
            res.held_frames += frame.held
            if progress is not None:
                progress(res.frames, None)
        if writer is not None:
            sound.finish(writer)
    finally:
        if writer is not None:
            writer.close()
    res.wall = time.perf_counter() - t0
    res.audio_seconds, res.audio_concealed = sound.seconds, sound.concealed
    res.generated = renderer.generated
    res.generate_seconds = renderer.generate_seconds
    if res.frames == 0:
        if renderer.decoder.header is None:
            raise InvalidPacket(res.first_error or "stream has no session header: not a FaceLink stream or empty")
        if not renderer.decoder.ready:
            raise InvalidPacket("stream's reference image is missing or incomplete")
        raise InputError("stream contains no frames")
    return res


def _log_verified(res: DecodeResult, renderer: FrameRenderer, packet: bytes) -> None:
    """Record a verified seal or End (released by the verifier: its seal verified) in the provenance log."""
    from .bitstream import PacketType, packet_type

    header = renderer.decoder.header
    if header is None or res.log is None:
        return
    kind = packet_type(packet)  # parsed by the decoder already: a valid header
    if kind == PacketType.SEAL:
        res.log.seal(packet, header.session_id)
    elif kind == PacketType.END:
        res.log.end(header.session_id)


def _open_writer(output: str, renderer: FrameRenderer, frame, res: DecodeResult, audio: bool = False) -> BackgroundWriter:
    """The output video, at the first frame's size and the stream's frame rate (with an AAC
    track when the stream carries sound)."""
    from .audio import RATE

    h = renderer.decoder.header
    fps = Fraction(h.fps_num, h.fps_den) if h and h.fps_den else Fraction(30)
    img = frame.image
    res.width, res.height, res.fps = img.shape[1], img.shape[0], float(fps)
    # H.264/AAC encoding on its own thread, overlapping the next frame's generation
    return BackgroundWriter(VideoWriter(output, img.shape[1], img.shape[0], fps, audio_rate=RATE if audio else None))


class _SoundOut:
    """The stream's sound (its first session's), decoded and laid under the frames on their common clock."""

    def __init__(self) -> None:
        from .audio import SessionSound

        self._sound = SessionSound(first_only=True)
        self._pending: list = []
        self.seconds = 0.0
        self.concealed = 0

    def feed(self, packet: bytes, header) -> None:
        self._pending += self._sound.feed(header, packet)

    def drain(self, writer: BackgroundWriter) -> None:
        from .audio import RATE

        if not writer.has_audio:
            self._pending = []
            return
        for c in self._pending:
            writer.write_audio(c.pcm, c.start / RATE)
            self.seconds += c.pcm.size / RATE
            self.concealed += bool(c.concealed)
        self._pending = []

    def finish(self, writer: BackgroundWriter) -> None:
        self._pending += self._sound.flush()
        self.drain(writer)
