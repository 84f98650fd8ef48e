"""Peer video codecs through PyAV: encode a frame sequence at a rate setting, count the bytes, decode.

Every peer sees the same RGB frames, converted to 8-bit 4:2:0 (what these encoders take and
what a video call sends), at the clip's frame rate.  The rate is the sum of the encoded
packets' sizes -- the raw elementary stream, no container -- over the coded frames'
duration; the first I-frame (with its parameter sets) is part of it.  Out-of-band headers
(codec extradata) are added to the count so nothing the decoder needs is free.

Rate settings are average-bitrate targets (``bit_rate``) and one constant-QP point at the
codec's coarsest quantiser, which is the lowest rate the encoder can produce for the clip.
The *measured* rate is what the bench reports; targets only label the runs.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

from ..errors import BackendUnavailable, FaceLinkError

__all__ = [
    "PEERS",
    "PeerCodec",
    "PeerRun",
    "PeerSetting",
    "available_peers",
    "encode_decode",
    "peer_settings",
]


@dataclass(frozen=True)
class PeerCodec:
    """A peer configuration: FFmpeg encoder and decoder names, fixed options, and its max-QP options."""

    name: str
    encoder: str
    decoder: str
    options: tuple[tuple[str, str], ...]
    floor_options: tuple[tuple[str, str], ...]
    description: str


@dataclass(frozen=True)
class PeerSetting:
    """One rate point of a peer: a label, the bitrate target (None = constant QP) and extra options."""

    label: str
    target_kbps: float | None
    options: tuple[tuple[str, str], ...] = ()


@dataclass
class PeerRun:
    """What one encode produced: packet sizes (bytes), decoded RGB frames, key frames, encode time."""

    packet_bytes: list[int]
    frames: list[np.ndarray]
    key_frames: int
    extradata_bytes: int
    encode_seconds: float
    decode_seconds: float
    options: dict[str, str] = field(default_factory=dict)

    @property
    def bytes(self) -> int:
        return sum(self.packet_bytes) + self.extradata_bytes


_X265_QUIET = "log-level=error"

#: the peers, in report order.  x264 is configured as a video call runs it (no look-ahead, no
#: B-frames: ``tune=zerolatency``); x265 and SVT-AV1 run with their default random-access
#: structure (B-frames / hierarchical prediction, look-ahead), i.e. their best compression,
#: which a live call could not use -- a conservative comparison for FaceLink.
PEERS: dict[str, PeerCodec] = {
    "x264": PeerCodec(
        "x264",
        "libx264",
        "h264",
        (("preset", "medium"), ("tune", "zerolatency")),
        (("qp", "69"),),  # x264's coarsest quantiser for 8-bit video (its qpmax default)
        "H.264 (libx264), preset=medium, tune=zerolatency (no B-frames, no look-ahead), ABR",
    ),
    "x265": PeerCodec(
        "x265",
        "libx265",
        "hevc",
        (("preset", "medium"), ("x265-params", _X265_QUIET)),
        (("x265-params", _X265_QUIET + ":qp=51"),),
        "HEVC (libx265), preset=medium, default GOP with B-frames and look-ahead, ABR",
    ),
    "svtav1": PeerCodec(
        "svtav1",
        "libsvtav1",
        "libdav1d",
        (("preset", "8"),),
        (("qp", "63"),),
        "AV1 (SVT-AV1 preset 8), default random-access GOP, VBR; decoded with dav1d",
    ),
}


def available_peers(names: Sequence[str] | None = None) -> list[PeerCodec]:
    """The requested peers (default: all) whose encoder and decoder this PyAV build has."""
    import av

    chosen = list(PEERS) if names is None else list(names)
    out = []
    for n in chosen:
        if n not in PEERS:
            raise ValueError(f"unknown peer codec {n!r}; choose from {', '.join(PEERS)}")
        p = PEERS[n]
        try:
            av.codec.Codec(p.encoder, "w")
            av.codec.Codec(p.decoder, "r")
        except ValueError:  # av.codec.codec.UnknownCodecError: this FFmpeg build lacks it
            continue
        out.append(p)
    return out


def peer_settings(codec: PeerCodec, targets_kbps: Sequence[float]) -> list[PeerSetting]:
    """Average-bitrate targets (ascending) then the max-QP point (the codec's rate floor)."""
    out = [PeerSetting(f"{t:g} kbps", float(t)) for t in sorted(targets_kbps)]
    qp = dict(codec.floor_options)
    label = "qp " + (qp.get("qp") or qp.get("x265-params", "").rsplit("qp=", 1)[-1])
    out.append(PeerSetting(label + " (floor)", None, codec.floor_options))
    return out


def _quiet_svt() -> None:
    # SVT-AV1 prints its configuration banner on stderr unless SVT_LOG is set (1 = errors)
    os.environ.setdefault("SVT_LOG", "1")


def encode_decode(frames: Sequence[np.ndarray], fps: Fraction, codec: PeerCodec, setting: PeerSetting) -> PeerRun:
    """Encode ``frames`` (RGB uint8, even sizes) with ``codec`` at ``setting`` and decode them again."""
    import av

    if not frames:
        raise ValueError("no frames to encode")
    h, w = frames[0].shape[:2]
    if h % 2 or w % 2:
        raise ValueError(f"4:2:0 coding needs even frame sizes, got {w}x{h}")
    _quiet_svt()
    fps = Fraction(fps).limit_denominator(1001)
    try:
        enc = av.CodecContext.create(codec.encoder, "w")
    except ValueError as e:  # UnknownCodecError
        raise BackendUnavailable(f"PyAV has no {codec.encoder} encoder ({e}); install a PyAV wheel with it") from None
    enc.width, enc.height = w, h
    enc.pix_fmt = "yuv420p"
    enc.time_base = 1 / fps
    enc.framerate = fps
    opts = dict(codec.options)
    opts.update(setting.options)  # floor options replace the base ones they name
    if setting.target_kbps is not None:
        enc.bit_rate = round(setting.target_kbps * 1000)
    enc.options = opts
    sizes: list[int] = []
    payload: list[bytes] = []
    keys = 0
    t0 = time.perf_counter()
    try:
        for i, img in enumerate([*frames, None]):
            if img is None:  # flush
                packets = enc.encode(None)
            else:
                vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24").reformat(format="yuv420p")
                vf.pts = i
                packets = enc.encode(vf)
            for p in packets:
                sizes.append(p.size)
                payload.append(bytes(p))
                keys += bool(p.is_keyframe)
    except av.error.FFmpegError as e:
        raise FaceLinkError(f"{codec.encoder} at {setting.label} on {w}x{h} frames failed: {e}") from None
    t1 = time.perf_counter()
    extradata = bytes(enc.extradata or b"")
    dec = av.CodecContext.create(codec.decoder, "r")
    if extradata:
        dec.extradata = extradata
    out: list[np.ndarray] = []
    for data in payload:
        for f in dec.decode(av.Packet(data)):
            out.append(f.to_ndarray(format="rgb24"))
    for f in dec.decode(None):
        out.append(f.to_ndarray(format="rgb24"))
    t2 = time.perf_counter()
    if len(out) != len(frames):
        raise RuntimeError(f"{codec.name} at {setting.label}: {len(frames)} frames in, {len(out)} decoded")
    # extradata that only repeats the in-band headers is not counted twice
    extra = 0 if (not extradata or (payload and extradata in payload[0])) else len(extradata)
    return PeerRun(sizes, out, keys, extra, t1 - t0, t2 - t1, opts)
