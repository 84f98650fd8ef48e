"""The sender pipeline: frames -> tracked landmarks -> keypoint packets; and whole-file encoding."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Callable

from .codec import CodecParams, KeypointFrame, Reference, StreamEncoder
from .codec._extensions import header_extensions
from .codec._regions import RegionPicker, mouth_opening
from .errors import InputError
from .face import FaceObservation, FaceTracker, create_models, create_tracker
from .face._reference import (  # noqa: F401 - re-exported: reference preparation lives in face/
    REFERENCE_EYES_OPEN,
    REFERENCE_PATIENCE_S,
    REFERENCE_QUALITY,
    make_reference,
    pick_reference_frame,
    prepare_reference,
)
from .io import Frame, open_video
from .keypoints import Pose, canonicalize

__all__ = ["EncodeStats", "FrameEncoder", "encode_file", "make_reference", "pick_reference_frame", "prepare_reference"]


@dataclass
class EncodeStats:
    """What an encode produced; ``kbps`` counts the keypoint packets (every packet except the
    one-time reference chunks and region references, ``reference_bytes``, ``region_bytes``,
    and the sound, ``audio_bytes``)."""

    frames: int = 0
    face_frames: int = 0
    key_frames: int = 0
    bytes: int = 0
    reference_bytes: int = 0
    region_bytes: int = 0
    regions: int = 0
    audio_bytes: int = 0
    audio_packets: int = 0
    #: why the input's sound was not encoded (a corrupt or unsupported track), if so
    audio_warning: str | None = None
    duration: float = 0.0
    wall: float = 0.0
    faces_max: int = 0
    timings: dict[str, float] = field(default_factory=lambda: {"track": 0.0, "code": 0.0})

    @property
    def kbps(self) -> float:
        return 8 * self.bytes / max(self.duration, 1e-9) / 1000

    @property
    def fps(self) -> float:
        return self.frames / max(self.wall, 1e-9)

    def as_dict(self) -> dict:
        return {
            "frames": self.frames,
            "face_frames": self.face_frames,
            "key_frames": self.key_frames,
            "bytes": self.bytes,
            "reference_bytes": self.reference_bytes,
            "region_bytes": self.region_bytes,
            "regions": self.regions,
            "audio_bytes": self.audio_bytes,
            "audio_packets": self.audio_packets,
            "audio_warning": self.audio_warning,
            "duration_s": round(self.duration, 4),
            "kbps": round(self.kbps, 3),
            "fps": round(self.fps, 2),
            "track_ms_per_frame": round(1000 * self.timings["track"] / max(self.frames, 1), 3),
            "code_ms_per_frame": round(1000 * self.timings["code"] / max(self.frames, 1), 3),
            "max_faces_detected": self.faces_max,
        }


class FrameEncoder:
    """Tracks the face in each frame and codes it: ``packets = enc.push(frame)``."""

    def __init__(
        self,
        reference: Reference,
        params: CodecParams,
        *,
        width: int,
        height: int,
        fps: Fraction | float,
        tracker: FaceTracker | None = None,
        anchor: Pose | None = None,
        session_id: bytes | None = None,
        created_us: int | None = None,
        extensions: tuple[tuple[int, bytes], ...] = (),
        audio: object = None,
    ) -> None:
        """``anchor``: the pose (in frame coordinates) at which the face looks like the
        reference; ``None`` when the reference is a frame of this same video/camera.
        ``audio``: the session's :class:`~facelink.bitstream.AudioParams` when it carries sound."""
        self.tracker = tracker or create_tracker()
        exts = header_extensions(reference.landmarks, anchor, extensions)
        self.codec = StreamEncoder(
            reference, params, width=width, height=height, fps=fps, session_id=session_id, created_us=created_us,
            extensions=exts, audio=audio,
        )  # fmt: skip
        self.stats = EncodeStats(reference_bytes=len(reference.blob))
        self.last_observation: FaceObservation | None = None
        self.regions = RegionPicker(
            self.codec.header.reference_digest, self.codec.basis, params.region_bytes, mouth_opening(canonicalize(self.codec.basis, reference.landmarks)[0])
        )
        self._extra: list[bytes] = []

    def start(self) -> list[bytes]:
        pkts = self.codec.start()
        self.stats.bytes += len(pkts[0])
        return pkts

    def push(self, frame: Frame) -> tuple[bytes, KeypointFrame]:
        t0 = time.perf_counter()
        obs = self.tracker.update(frame.image, frame.time)
        t1 = time.perf_counter()
        pkt, kf = self.codec.encode(
            frame.index, frame.time, obs.landmarks if obs is not None else None, eyes=obs.eyes if obs is not None else None
        )
        t2 = time.perf_counter()
        self.last_observation = obs
        region = self.regions.offer(frame.index, frame.image, obs.landmarks if obs is not None else None)
        if region is not None:
            self._extra.append(region)
            self.stats.region_bytes += len(region)
            self.stats.regions += 1
        s = self.stats
        s.timings["track"] += t1 - t0
        s.timings["code"] += t2 - t1
        s.frames += 1
        s.face_frames += obs is not None
        s.key_frames += kf.kind.value == "key"
        s.bytes += len(pkt)
        if obs is not None:
            s.faces_max = max(s.faces_max, obs.faces_detected)
        return pkt, kf

    def take_extra(self) -> list[bytes]:
        """Packets due after the last :meth:`push`'s frame packet (region references), once."""
        out, self._extra = self._extra, []
        return out

    def end(self) -> bytes:
        pkt = self.codec.end()
        self.stats.bytes += len(pkt)
        return pkt


def encode_file(
    src: str,
    sink: Callable[[bytes], None],
    *,
    params: CodecParams,
    reference_image: str | None = None,
    backend: str = "auto",
    precision: str = "auto",
    progress: Callable[[int, int | None], None] | None = None,
    extensions: tuple[tuple[int, bytes], ...] = (),
    reference_quality: int = REFERENCE_QUALITY,
    reference_size: int | None = None,
    session_id: bytes | None = None,
    created_us: int | None = None,
    audio_kbps: float | None = 8.0,
) -> EncodeStats:
    """Encode a video file, handing every (unsigned) packet, in order, to ``sink``.

    ``audio_kbps``: code the file's sound with Opus at this rate, interleaved with the frames
    by stream time (``None``: no sound).  A corrupt or unsupported track leaves the video
    encoded without sound, with the reason in ``stats.audio_warning``.

    The core of :func:`facelink.pipeline.encode_file`, which signs and writes the stream.

    Without ``reference_image`` the first frame showing a face is the reference.
    ``reference_quality`` (JPEG) and ``reference_size`` (longest side, pixels) shrink
    the one-off reference (see :func:`make_reference`).
    """
    models = create_models(backend, precision=precision)
    with open_video(src) as video:
        info = video.info
    reference, anchor = prepare_reference(src, models, params.k, reference_image, quality=reference_quality, max_side=reference_size)
    det, lm = models
    track, warning = _audio_track(src, audio_kbps)
    sound = _Sound(track, audio_kbps) if track is not None else None
    enc = FrameEncoder(
        reference, params, width=info.width, height=info.height, fps=info.fps,
        tracker=FaceTracker(det, lm), anchor=anchor, extensions=extensions,
        session_id=session_id, created_us=created_us, audio=sound.pack.params if sound else None,
    )  # fmt: skip
    enc.stats.audio_warning = warning
    period = float(1 / info.fps) if info.fps else 1 / 30
    for p in enc.start():
        sink(p)
    wall0 = time.perf_counter()
    last_t = 0.0
    t_first = None
    n = 0
    with open_video(src) as video:
        for frame in video:
            pkt, _ = enc.push(frame)
            sink(pkt)
            for extra in enc.take_extra():
                sink(extra)
            if sound is not None:  # the sound up to the end of this frame, on the stream's clock
                for a in sound.until(frame.time + period, enc.codec.stream_start):
                    enc.stats.audio_bytes += len(a)
                    enc.stats.audio_packets += 1
                    sink(a)
            if t_first is None:
                t_first = frame.time
            last_t = frame.time
            n += 1
            if progress is not None:
                progress(n, info.frames)
    if n == 0:
        raise InputError(f"{src}: contains no frames")
    if sound is not None:
        for a in sound.finish():
            enc.stats.audio_bytes += len(a)
            enc.stats.audio_packets += 1
            sink(a)
    sink(enc.end())
    s = enc.stats
    s.wall = time.perf_counter() - wall0
    s.duration = (last_t - (t_first or 0.0)) + float(1 / info.fps if info.fps else 1 / 30)
    return s


def _audio_track(src: str, kbps: float | None):
    """The file's sound (or None) and, when it cannot be used, why (the video still encodes)."""
    if kbps is None:
        return None, None
    from .audio import read_audio_track
    from .errors import AudioError

    try:
        return read_audio_track(src), None
    except AudioError as e:
        return None, f"{src}: sound not encoded ({e}); the video is"


class _Sound:
    """A file's audio track, packed a frame at a time on the stream's clock."""

    def __init__(self, track, kbps: float) -> None:
        from .audio import AudioPacketizer, TrackCursor

        self.cursor = TrackCursor(track)
        self.pack = AudioPacketizer(kbps)
        self.t0: float | None = None  # the container time of stream time 0 (the first frame's)

    def until(self, t: float, stream_start: float | None) -> list[bytes]:
        """Packets for the track's samples before container time ``t``."""
        from .audio import stream_samples

        if stream_start is None:
            return []
        self.t0 = stream_start
        x, start = self.cursor.until(t)
        return self.pack.push(x, stream_samples(start - stream_start)) if x.size else []

    def finish(self) -> list[bytes]:
        """The rest of the track and the coder's tail."""
        out = self.until(float("inf"), self.t0) if self.t0 is not None else []
        return out + self.pack.flush()
