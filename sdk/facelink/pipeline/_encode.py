"""Encode a video file into a signed ``.flk`` stream."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

from .._files import atomic_output, check_output
from ..bitstream import FlkWriter, PacketType, SessionHeader, packet_type
from ..codec import QUALITY_PRESETS, CodecParams, Reference
from ..errors import NoFaceError
from ..face._reference import REFERENCE_QUALITY
from ..security import DEFAULT_SEAL_INTERVAL, Identity, seal_packets, signer_extension
from ..sender import EncodeStats
from ..sender import encode_file as _encode_packets

__all__ = ["EncodeResult", "encode_file", "rate_breakdown"]


@dataclass(frozen=True)
class EncodeResult:
    """What :func:`encode_file` wrote: the stream's statistics, its session and signer, its rate."""

    output: str
    stats: EncodeStats
    #: the session id every command prints (the watermark's session tag, 8 hex digits)
    session: str
    #: the session header's 16-byte session id, hex
    session_id: str
    #: the signer's key fingerprint
    signer: str
    seal_bytes: int
    reference_packet_bytes: int
    params: CodecParams
    #: the encoder models' precision actually used ("int8" or "fp32")
    precision: str
    reference_quality: int
    #: the reference image's size: the receiver renders at this size
    reference_width: int
    reference_height: int

    def as_dict(self) -> dict:
        """The ``facelink encode --json`` object (also the C API's encode report)."""
        out = self.stats.as_dict()
        out.update(
            rate_breakdown(
                self.stats.bytes, self.seal_bytes, self.reference_packet_bytes, self.stats.duration,
                self.stats.region_bytes, self.stats.audio_bytes,
            )  # fmt: skip
        )
        out.update(
            session=self.session,
            session_id=self.session_id,
            seal_bytes=self.seal_bytes,
            signer=self.signer,
            output=self.output,
            k=self.params.k,
            key_interval=self.params.key_interval,
            precision=self.precision,
            reference_quality=self.reference_quality,
            reference_width=self.reference_width,
            reference_height=self.reference_height,
        )
        return out


def rate_breakdown(
    stream_bytes: int, seal_bytes: int, reference_packet_bytes: int, duration: float, region_bytes: int = 0, audio_bytes: int = 0
) -> dict:
    """The rate of a stream, part by part: keypoints (frame packets, session header, end),
    sound (Opus AUDIO packets), seals, and the one-off reference and region references
    (crops of the open mouth), whose cost per second falls with the session's length."""

    def kbps(n: int, seconds: float) -> float:
        return round(8 * n / max(seconds, 1e-9) / 1000, 3)

    def amortised(n: int) -> dict:
        return {"this_clip": kbps(n, duration), "1_min": kbps(n, 60.0), "10_min": kbps(n, 600.0)}

    return {
        "kbps_keypoints": kbps(stream_bytes, duration),
        "kbps_seals": kbps(seal_bytes, duration),
        "kbps_audio": kbps(audio_bytes, duration),
        "kbps_with_seals": kbps(stream_bytes + audio_bytes + seal_bytes, duration),
        "reference_packet_bytes": reference_packet_bytes,
        "reference_amortised_kbps": amortised(reference_packet_bytes),
        "region_amortised_kbps": amortised(region_bytes),
        "kbps_all_in": kbps(stream_bytes + audio_bytes + seal_bytes + reference_packet_bytes + region_bytes, duration),
    }


def encode_file(
    src: str,
    out: str | os.PathLike[str],
    identity: Identity | None = None,
    *,
    params: CodecParams | None = None,
    reference_image: str | None = None,
    reference_quality: int = REFERENCE_QUALITY,
    reference_size: int | None = None,
    backend: str = "auto",
    precision: str = "auto",
    seal_interval: float = DEFAULT_SEAL_INTERVAL,
    session_id: bytes | None = None,
    created_us: int | None = None,
    audio_kbps: float | None = 8.0,
    progress: Callable[[int, int | None], None] | None = None,
) -> EncodeResult:
    """Encode the video (or capture URI) ``src`` into the signed stream ``out`` (``facelink encode``).

    ``audio_kbps``: the file's sound, Opus-coded at this rate into the same signed stream
    (``None``: silent, as before version 3); a corrupt or unsupported track leaves the video
    encoded without sound (``result.stats.audio_warning`` says why).

    ``identity`` signs it (default: this machine's local key, created on first use): the
    header names the signer and seals cover every packet.  ``out`` appears only on success.
    ``params``: the codec's operating point (default the "medium" preset).  Without
    ``reference_image`` the first frame showing a face is the reference; ``reference_quality``
    (JPEG) and ``reference_size`` (longest side, pixels) shrink it.  ``session_id`` (16
    bytes) and ``created_us`` fix the session header for reproducible streams (default:
    random, now); everything else in the stream is a function of its input, so the same
    input, key, session id and time give the same bytes.  ``progress(done, total)`` is
    called per frame.
    """
    from ..backend import select_backend
    from ..models import resolve_precision

    params = params if params is not None else QUALITY_PRESETS["medium"]
    check_output(out)
    if identity is None:
        from ..security._local import local_identity

        identity = local_identity()
    packets: list[bytes] = []
    try:
        stats = _encode_packets(
            src, packets.append, params=params, reference_image=reference_image, backend=backend, precision=precision,
            progress=progress, extensions=(signer_extension(identity),), reference_quality=reference_quality,
            reference_size=reference_size, session_id=session_id, created_us=created_us, audio_kbps=audio_kbps,
        )  # fmt: skip
    except NoFaceError as e:
        if reference_size is None or "reference image" not in str(e):
            raise
        raise NoFaceError(f"{e} after shrinking it to {reference_size} px; give a larger reference size") from None
    sealed = list(seal_packets(packets, identity, interval=seal_interval))
    with atomic_output(out) as tmp, FlkWriter(tmp) as w:
        for p in sealed:
            w.write(p)
    kinds = [packet_type(p) for p in sealed]
    chunks = [p for p, t in zip(sealed, kinds) if t == PacketType.REFERENCE_CHUNK]
    reference = Reference.parse(b"".join(_chunk_data(chunks)))
    header = SessionHeader.parse(packets[0])
    return EncodeResult(
        output=os.fspath(out),
        stats=stats,
        session=session_tag_hex(packets[0]),
        session_id=header.session_id.hex(),
        signer=identity.public.fingerprint,
        seal_bytes=sum(len(p) for p, t in zip(sealed, kinds) if t == PacketType.SEAL),
        reference_packet_bytes=sum(len(p) for p in chunks),
        params=params,
        precision=resolve_precision(precision, select_backend(backend).name),
        reference_quality=reference_quality,
        reference_width=reference.width,
        reference_height=reference.height,
    )


def _chunk_data(chunks: list[bytes]) -> list[bytes]:
    from ..bitstream import parse_packet

    parsed = sorted((parse_packet(p) for p in chunks), key=lambda c: c.index)  # type: ignore[union-attr]
    return [c.data for c in parsed]  # type: ignore[union-attr]


def session_tag_hex(header: bytes | SessionHeader) -> str:
    """The session id every command prints: the watermark's session tag (8 hex digits, the
    first 4 bytes of SHA-256 over the signed session header), as ``facelink verify`` shows
    it and the provenance manifest records it (``header_sha256``)."""
    from ..watermark import session_tag

    return session_tag(bytes(header)).hex()
