"""The sender pipeline: frames -> tracked landmarks -> keypoint packets; and whole-file encoding."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Callable, Iterable

import numpy as np

from .codec import CodecParams, KeypointFrame, Reference, StreamEncoder
from .codec._regions import RegionPicker, mouth_opening
from .errors import InputError, NoFaceError
from .face import FaceObservation, FaceTracker, create_models, create_tracker, eye_state
from .face._factory import FaceDetector, LandmarkModel
from .io import Frame, load_image, open_video
from .keypoints import KeypointFitter, Pose, canonicalize, default_basis
from .receiver import ANCHOR_TAG, encode_anchor

__all__ = ["EncodeStats", "FrameEncoder", "encode_file", "make_reference", "pick_reference_frame", "prepare_reference"]


#: JPEG quality of the reference image unless told otherwise
REFERENCE_QUALITY = 92


def make_reference(
    image: np.ndarray, models: tuple[FaceDetector, LandmarkModel], *, quality: int = REFERENCE_QUALITY, max_side: int | None = None
) -> Reference:
    """Detect the face in a still image and package image + landmarks as the session reference.

    The landmarks are computed on the image exactly as the receiver will see it (after
    JPEG coding), so both ends agree on the identity shape.  ``quality``: JPEG quality;
    ``max_side``: shrink the image so its longer side is at most this many pixels (the
    receiver renders at the reference's size).  Both trade picture detail for a smaller
    one-off reference.
    """
    det, lm = models
    h, w = image.shape[:2]
    if max_side is not None and max(h, w) > max_side:
        from PIL import Image

        f = max_side / max(h, w)
        size = (max(1, round(w * f)), max(1, round(h * f)))
        image = np.asarray(Image.fromarray(np.ascontiguousarray(image)).resize(size, Image.LANCZOS))
    ref = Reference.create(image, np.zeros((468, 3), np.float32), quality=quality)
    tracker = FaceTracker(det, lm, eyes=False)
    # two passes: detection places the crop, the landmark-derived ROI refines it
    obs = tracker.update(ref.image, 0.0)
    if obs is None:
        raise NoFaceError("reference image: no face found")
    obs = tracker.update(ref.image, 1.0) or obs
    ref = ref.with_landmarks(obs.raw_landmarks)
    iris = getattr(lm, "iris", None)
    if iris is not None:  # what the eyes do in the reference (the receiver's origin for gaze and lids)
        ref = ref.with_eyes(eye_state(iris(ref.image, ref.landmarks), ref.landmarks))
    return ref


@dataclass
class EncodeStats:
    """What an encode produced; ``kbps`` counts every packet except the one-time reference
    chunks and region references (``reference_bytes``, ``region_bytes``)."""

    frames: int = 0
    face_frames: int = 0
    key_frames: int = 0
    bytes: int = 0
    reference_bytes: int = 0
    region_bytes: int = 0
    regions: int = 0
    duration: float = 0.0
    wall: float = 0.0
    faces_max: int = 0
    timings: dict[str, float] = field(default_factory=lambda: {"track": 0.0, "code": 0.0})

    @property
    def kbps(self) -> float:
        return 8 * self.bytes / max(self.duration, 1e-9) / 1000

    @property
    def kbps_with_regions(self) -> float:
        """``kbps`` plus the region references spread over the stream, or over 60 s if shorter
        (they are sent once per session: a short clip would overstate their share)."""
        return self.kbps + 8 * self.region_bytes / max(self.duration, 60.0) / 1000

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
            "kbps_with_regions": round(self.kbps_with_regions, 3),
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
    ) -> None:
        """``anchor``: the pose (in frame coordinates) at which the face looks like the
        reference; ``None`` when the reference is a frame of this same video/camera."""
        self.tracker = tracker or create_tracker()
        if anchor is None:
            anchor = canonicalize(default_basis(), reference.landmarks)[1]
        exts = tuple(sorted((encode_anchor(anchor),) + tuple(e for e in extensions if e[0] != ANCHOR_TAG)))
        self.codec = StreamEncoder(
            reference, params, width=width, height=height, fps=fps, session_id=session_id, created_us=created_us, extensions=exts
        )
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


#: a reference frame's eyes must be at least this open (lid gap / eye width; ~0.2 open, ~0.08
#: shut): a reference caught mid-blink would keep every frame of the session from opening them
REFERENCE_EYES_OPEN = 0.13
#: how long after the first face the sender waits for open eyes before taking the most open frame
REFERENCE_PATIENCE_S = 2.0


def pick_reference_frame(frames: Iterable[Frame], tracker: FaceTracker, patience_s: float = REFERENCE_PATIENCE_S):
    """The frame to take the session reference from, and its observation: the first frame
    showing a face with both eyes visible and open (``REFERENCE_EYES_OPEN``); if none comes
    within ``patience_s`` of the first face (or before the frames end), the one with the most
    open eyes seen.  Without an eye model, the first face frame.  ``(None, None)`` if no face."""
    best = None
    first_t = None
    best_open = -1.0
    for frame in frames:
        obs = tracker.update(frame.image, frame.time)
        if obs is None:
            continue
        if obs.eyes is None:
            return frame, obs
        opening = float(np.min(obs.eyes.openness)) if bool(np.all(obs.eyes.visible)) else 0.0
        if opening >= REFERENCE_EYES_OPEN:
            return frame, obs
        if opening > best_open:
            best, best_open = (frame, obs), opening
        first_t = frame.time if first_t is None else first_t
        if frame.time - first_t >= patience_s:
            break
    return best if best is not None else (None, None)


def _first_face_frame(uri: str, models) -> tuple[Frame, np.ndarray]:
    """The reference frame of a file (:func:`pick_reference_frame`) and its landmarks (a bounded
    look-ahead for the reference only)."""
    det, lm = models
    with open_video(uri) as video:
        frame, obs = pick_reference_frame(video, FaceTracker(det, lm))
    if frame is None:
        raise NoFaceError(f"{uri}: no face found in any frame")
    return frame, obs.raw_landmarks


def prepare_reference(
    src: str, models, k: int, reference_image: str | None = None, *, quality: int = REFERENCE_QUALITY, max_side: int | None = None
) -> tuple[Reference, Pose | None]:
    """The session reference and anchor pose for a video or capture ``src``.

    Without ``reference_image`` the first frame showing a face is the reference (anchor
    ``None``: the reference's own pose).  With one, the first face frame's pose, seen
    through the reference's identity, anchors the motion; so it does when the first
    frame was shrunk (``max_side``).  ``quality``, ``max_side``: see :func:`make_reference`.
    """
    first, first_lm = _first_face_frame(src, models)
    if reference_image is None:
        reference = make_reference(first.image, models, quality=quality, max_side=max_side)
        if reference.image.shape[:2] == first.image.shape[:2]:
            return reference, None
    else:
        reference = make_reference(load_image(reference_image), models, quality=quality, max_side=max_side)
    anchor = KeypointFitter.from_reference(default_basis(), reference.landmarks, k)[0].fit(first_lm)[0]
    return reference, anchor


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
) -> EncodeStats:
    """Encode a video file, handing every packet (in order) to ``sink``.

    Without ``reference_image`` the first frame showing a face is the reference.
    ``reference_quality`` (JPEG) and ``reference_size`` (longest side, pixels) shrink
    the one-off reference (see :func:`make_reference`).
    """
    models = create_models(backend, precision=precision)
    with open_video(src) as video:
        info = video.info
    reference, anchor = prepare_reference(src, models, params.k, reference_image, quality=reference_quality, max_side=reference_size)
    det, lm = models
    enc = FrameEncoder(
        reference, params, width=info.width, height=info.height, fps=info.fps,
        tracker=FaceTracker(det, lm), anchor=anchor, extensions=extensions,
    )  # fmt: skip
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
            if t_first is None:
                t_first = frame.time
            last_t = frame.time
            n += 1
            if progress is not None:
                progress(n, info.frames)
    if n == 0:
        raise InputError(f"{src}: contains no frames")
    sink(enc.end())
    s = enc.stats
    s.wall = time.perf_counter() - wall0
    s.duration = (last_t - (t_first or 0.0)) + float(1 / info.fps if info.fps else 1 / 30)
    return s
