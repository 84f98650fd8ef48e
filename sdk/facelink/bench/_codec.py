"""The codec benchmark: FaceLink and peer codecs on identical frames, rate and quality per run.

For each clip (self-reenactment): read the first ``frames`` frames, crop them to a square
around the face (tracker on the first frame; only for non-square clips) and resize to
``size``; frame 0 is FaceLink's reference, frames 1.. are coded by every codec.  Then:

* FaceLink at several rate points: the real sender (:class:`~facelink.sender.FrameEncoder`)
  and receiver (:class:`~facelink.receiver.FrameRenderer`).  Its rate counts every packet
  except the one-time reference chunks (session header, frames, end); the reference's size
  is reported beside it.  The face tracker's output does not depend on the rate point, so
  the true frames are tracked once and replayed into each encoder.
* every peer (:mod:`._peers`) at each bitrate target and at its coarsest quantiser.
* quality of every decoded frame against the true frame (:mod:`._metrics`): PSNR (RGB),
  SSIM and MS-SSIM (luma), the same PSNR / SSIM on the face box (the union of the true
  face's landmark boxes, +10 %), and AKD / MKR: a fresh tracker run over the decoded frames
  vs one over the true frames (raw, unsmoothed landmarks; mean distance in % of the true
  inter-ocular distance; MKR = share of true-face frames where no face is found in the
  decoded frame).  With ``every`` > 1 only every Nth coded frame is scored (and tracked for
  AKD); rates always count every frame.
* per clip and over all clips: BD-rate of FaceLink against each peer and the bandwidth
  saving at equal quality (:mod:`._rd`).
"""

from __future__ import annotations

import importlib
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np
from PIL import Image

from ..codec import QUALITY_PRESETS, CodecParams
from ..errors import FaceLinkError, InputError
from . import _cues as cues
from ._metrics import StructuralReference, landmark_error, psnr
from ._peers import PeerCodec, PeerSetting, encode_decode, peer_settings
from ._rd import bd_rate, rate_at_quality

__all__ = [
    "DEFAULT_PEER_KBPS",
    "FAST_PEER_KBPS",
    "MAX_MKR",
    "METRICS",
    "ClipResult",
    "CodecBenchConfig",
    "Metric",
    "PreparedClip",
    "RunResult",
    "compare_runs",
    "facelink_points",
    "metric_value",
    "prepare_clip",
    "run_clip",
    "summarize",
]

#: bitrate targets (kbit/s) of the peers' average-bitrate runs; the max-QP floor is always added
DEFAULT_PEER_KBPS: tuple[float, ...] = (5, 10, 20, 50, 100, 200)
FAST_PEER_KBPS: tuple[float, ...] = (20, 100)
#: psnr values above this (identical frames give inf) are clipped before averaging over frames
PSNR_CAP = 100.0


@dataclass(frozen=True)
class Metric:
    """A quality metric of the report: key, label, unit and direction."""

    key: str
    label: str
    unit: str
    higher_is_better: bool

    def oriented(self, value: float) -> float:
        """The value on a higher-is-better axis (distortions negated)."""
        return value if self.higher_is_better else -value


METRICS: tuple[Metric, ...] = (
    Metric("psnr", "PSNR", "dB", True),
    Metric("ssim", "SSIM", "", True),
    Metric("ms_ssim", "MS-SSIM", "", True),
    Metric("akd", "AKD", "% IOD", False),
    Metric("face_psnr", "face PSNR", "dB", True),
    Metric("face_ssim", "face SSIM", "", True),
    Metric("mouth_ssim", "open-mouth SSIM", "", True),
)
#: a true frame's mouth counts as open above this aspect ratio (inner-lip gap 13-14 over the
#: corner distance 78-308); open-mouth SSIM is measured on the outer lips' box grown by 25 %
OPEN_MOUTH_RATIO = 0.25
_METRIC = {m.key: m for m in METRICS}


def facelink_points(fast: bool = False, names: Sequence[str] | None = None) -> list[tuple[str, CodecParams]]:
    """FaceLink's rate points: the three presets plus a coarser (K=4) and a finer (K=32) setting.

    ``names`` picks points by name; besides the five, ``<preset>-noeyes`` is a preset without
    the eye channels (the generator then shapes blinks from the landmarks alone, as before
    bitstream version 2) and ``<preset>-noregions`` one without region references (the mouth
    interior then comes from the reference alone, as before version 3), for comparison.
    Unknown names raise ``ValueError``.
    """
    low, medium, high = QUALITY_PRESETS["low"], QUALITY_PRESETS["medium"], QUALITY_PRESETS["high"]
    points = {
        "k4-coarse": low.with_(k=4, rot_step=1.0, trans_step=0.02, scale_step=0.016, coeff_step=0.1),
        "low": low,
        "medium": medium,
        "high": high,
        "k32-fine": high.with_(k=32, rot_step=0.05, trans_step=0.001, scale_step=0.001, coeff_step=0.005),
    }
    if names is not None:
        for preset in ("low", "medium", "high"):
            points[f"{preset}-noeyes"] = QUALITY_PRESETS[preset].with_(eyes=False)
            points[f"{preset}-noregions"] = QUALITY_PRESETS[preset].with_(region_bytes=0)
        unknown = [n for n in names if n not in points]
        if unknown:
            raise ValueError(f"unknown FaceLink point(s) {', '.join(unknown)}; choose from {', '.join(points)}")
        return [(n, points[n]) for n in names]
    if fast:
        return [("low", low), ("high", high)]
    return list(points.items())


@dataclass(frozen=True)
class CodecBenchConfig:
    """What every clip is run with."""

    size: int = 256
    frames: int = 150
    every: int = 1
    facelink: tuple[tuple[str, CodecParams], ...] = ()
    peers: tuple[PeerCodec, ...] = ()
    peer_kbps: tuple[float, ...] = DEFAULT_PEER_KBPS
    backend: str = "auto"
    samples: int = 4

    def __post_init__(self) -> None:
        if self.size < 64 or self.size % 2:  # SVT-AV1's rate control needs 64 rows
            raise ValueError(f"--size must be an even number >= 64, got {self.size}")
        if self.frames < 3:
            raise ValueError(f"--frames must be >= 3 (one reference and two coded frames), got {self.frames}")
        if self.every < 1:
            raise ValueError(f"--every must be >= 1, got {self.every}")
        if any(not (k > 0 and math.isfinite(k)) for k in self.peer_kbps):
            raise ValueError("peer bitrate targets must be positive numbers")

    def runs_per_clip(self) -> int:
        return len(self.facelink) + sum(len(peer_settings(p, self.peer_kbps)) for p in self.peers)

    def as_dict(self) -> dict:
        return {
            "size": self.size,
            "frames": self.frames,
            "coded_frames": self.frames - 1,
            "metric_every": self.every,
            "facelink_points": {name: _params_dict(p) for name, p in self.facelink},
            "peers": {
                p.name: {
                    "encoder": p.encoder,
                    "decoder": p.decoder,
                    "options": dict(p.options),
                    "floor_options": dict(p.floor_options),
                    "description": p.description,
                }
                for p in self.peers
            },
            "peer_kbps_targets": list(self.peer_kbps),
            "backend": self.backend,
        }


def _params_dict(p: CodecParams) -> dict:
    return {
        "k": p.k,
        "rot_step": p.rot_step,
        "trans_step": p.trans_step,
        "scale_step": p.scale_step,
        "coeff_step": p.coeff_step,
        "key_interval": p.key_interval,
        "hysteresis": p.hysteresis,
        "eyes": p.eyes,
        "gaze_step": p.gaze_step,
        "open_step": p.open_step,
    }


# --------------------------------------------------------------------------------------
# clip preparation


@dataclass
class PreparedClip:
    """The frames every codec sees: ``frames[0]`` is FaceLink's reference, ``frames[1:]`` are coded."""

    name: str
    path: str
    person: str | None
    source_size: tuple[int, int]
    crop: tuple[int, int, int]
    size: int
    fps: Fraction
    frames: list[np.ndarray]
    times: list[float]
    notes: list[str] = field(default_factory=list)


def _square_crop(w: int, h: int, cx: float, cy: float) -> tuple[int, int, int]:
    side = min(w, h)
    x0 = round(min(max(cx - side / 2, 0), w - side))
    y0 = round(min(max(cy - side / 2, 0), h - side))
    return x0, y0, side


def prepare_clip(path: str, size: int, frames: int, models, *, name: str | None = None, person: str | None = None) -> PreparedClip:
    """Read the first ``frames`` frames, crop to a face-centred square (non-square clips), resize.

    The crop is fixed from the first frame (the tracker's face box centre), so every frame
    and every codec sees the same window; frames are cropped as they are decoded.
    """
    from ..io import open_video

    out: list[np.ndarray] = []
    times: list[float] = []
    notes: list[str] = []
    crop: tuple[int, int, int] | None = None
    w = h = 0
    with open_video(path) as video:
        fps = video.info.fps or Fraction(30)
        for f in video:
            if crop is None:
                h, w = f.image.shape[:2]
                crop = _crop_for(f.image, f.time, models, notes)
            x0, y0, side = crop
            sq = f.image[y0 : y0 + side, x0 : x0 + side]
            if side != size:
                sq = np.asarray(Image.fromarray(sq).resize((size, size), Image.Resampling.LANCZOS))
            out.append(np.ascontiguousarray(sq))
            times.append(f.time)
            if len(out) >= frames:
                break
    if len(out) < 3 or crop is None:
        raise InputError(f"{path}: has {len(out)} frames, the bench needs at least 3")
    t0 = times[0]
    return PreparedClip(name or Path(path).name, str(path), person, (w, h), crop, size, Fraction(fps), out, [t - t0 for t in times], notes)


def _crop_for(image: np.ndarray, t: float, models, notes: list[str]) -> tuple[int, int, int]:
    """``(x0, y0, side)``: the whole frame if square, else the largest square centred on the face."""
    from ..face import FaceTracker

    h, w = image.shape[:2]
    if w == h:
        return 0, 0, w
    cx, cy = w / 2, h / 2
    if models is None:
        notes.append("no face models: centre crop")
    else:
        obs = FaceTracker(*models).update(image, t)
        if obs is None:
            notes.append("no face in the first frame: centre crop")
        else:
            lm = obs.raw_landmarks[:, :2]
            cx, cy = (lm.min(axis=0) + lm.max(axis=0)) / 2
    return _square_crop(w, h, float(cx), float(cy))


# --------------------------------------------------------------------------------------
# scoring


class _ReplayTracker:
    """Hands a FrameEncoder the observations of one earlier tracker run, frame by frame."""

    def __init__(self, observations: Sequence, times: Sequence[float]) -> None:
        self._obs = list(observations)
        self._times = list(times)
        self._i = 0

    def update(self, frame: np.ndarray, t: float):
        if self._i >= len(self._obs) or abs(self._times[self._i] - t) > 1e-9:
            raise RuntimeError("replayed tracker fed out of order")
        obs = self._obs[self._i]
        self._i += 1
        return obs


def _track(frames: Sequence[np.ndarray], times: Sequence[float], models) -> list:
    from ..face import FaceTracker

    tracker = FaceTracker(*models)
    return [tracker.update(f, t) for f, t in zip(frames, times)]


def _face_box(observations: Sequence, size: int) -> tuple[int, int, int, int] | None:
    boxes = [(o.raw_landmarks[:, :2].min(axis=0), o.raw_landmarks[:, :2].max(axis=0)) for o in observations if o is not None]
    if not boxes:
        return None
    lo = np.min([b[0] for b in boxes], axis=0)
    hi = np.max([b[1] for b in boxes], axis=0)
    pad = 0.1 * (hi - lo)
    x0, y0 = np.clip(np.floor(lo - pad), 0, size).astype(int)
    x1, y1 = np.clip(np.ceil(hi + pad), 0, size).astype(int)
    if min(x1 - x0, y1 - y0) < 11:
        return None
    return int(x0), int(y0), int(x1), int(y1)


def _open_mouth_box(lm: np.ndarray, h: int, w: int) -> tuple[int, int, int, int] | None:
    """The mouth box of a frame whose mouth is open (aspect ratio > OPEN_MOUTH_RATIO), else None."""
    from ..generator._mesh import LIPS_OUTER

    width = float(np.linalg.norm(lm[78, :2] - lm[308, :2]))
    if width < 1.0 or float(np.linalg.norm(lm[13, :2] - lm[14, :2])) / width <= OPEN_MOUTH_RATIO:
        return None
    p = lm[list(LIPS_OUTER), :2]
    lo, hi = p.min(axis=0), p.max(axis=0)
    pad = 0.25 * (hi - lo)
    x0, y0 = (max(int(v), 0) for v in np.floor(lo - pad))
    x1, y1 = int(min(np.ceil(hi[0] + pad[0]), w)), int(min(np.ceil(hi[1] + pad[1]), h))
    if x1 - x0 < 11 or y1 - y0 < 11:
        return None
    return x0, y0, x1, y1


class Scorer:
    """Scores decoded versions of one clip's coded frames; the true side is prepared once."""

    def __init__(self, truth: Sequence[np.ndarray], times: Sequence[float], *, every: int, face_box, models) -> None:
        self.positions = list(range(0, len(truth), every))
        self.truth = [truth[i] for i in self.positions]
        self.times = list(times)
        self.face_box = face_box
        self.models = models
        # AKD's truth: the tracker over the scored true frames, exactly as it will run over the
        # decoded ones (same frames, same stride), so the two landmark sets are comparable
        self.true_obs = _track(self.truth, [self.times[i] for i in self.positions], models) if models is not None else None
        # what a viewer reads off the true face (mouth, eyes, brows, gaze), where the Iris model is at hand
        self._iris = getattr(models[1], "iris", None) if models is not None else None
        self.true_cues = cues.measure(self.truth, self.true_obs, self._iris) if self._iris is not None else None
        self._full = [StructuralReference(f) for f in self.truth]
        self._face = [StructuralReference(self._crop(f), multiscale=False) for f in self.truth] if face_box else None
        # open-mouth frames of the truth (tracked), their mouth boxes and SSIM references
        self._mouths: list[tuple[int, tuple[int, int, int, int], StructuralReference]] = []
        for k, obs in enumerate(self.true_obs or []):
            box = _open_mouth_box(obs.raw_landmarks, *self.truth[k].shape[:2]) if obs is not None else None
            if box is not None:
                x0, y0, x1, y1 = box
                self._mouths.append((k, box, StructuralReference(self.truth[k][y0:y1, x0:x1], multiscale=False)))

    def _crop(self, img: np.ndarray) -> np.ndarray:
        x0, y0, x1, y1 = self.face_box
        return img[y0:y1, x0:x1]

    def score(self, decoded: Sequence[np.ndarray]) -> dict[str, float | None]:
        if len(decoded) != len(self.times):
            raise ValueError(f"{len(decoded)} decoded frames for {len(self.times)} coded frames")
        ps, ss, ms, fps_, fss = [], [], [], [], []
        for k, i in enumerate(self.positions):
            d = decoded[i]
            ps.append(min(psnr(self.truth[k], d), PSNR_CAP))
            s, m = self._full[k].compare(d)
            ss.append(s)
            ms.append(m if m is not None else s)
            if self._face is not None:
                c = self._crop(d)
                fps_.append(min(psnr(self._crop(self.truth[k]), c), PSNR_CAP))
                fss.append(self._face[k].compare(c)[0])
        out: dict[str, float | None] = {
            "psnr": float(np.mean(ps)),
            "ssim": float(np.mean(ss)),
            "ms_ssim": float(np.mean(ms)),
            "face_psnr": float(np.mean(fps_)) if fps_ else None,
            "face_ssim": float(np.mean(fss)) if fss else None,
            "akd": None,
            "mkr": None,
            "mouth_ssim": None,
        }
        if self._mouths:
            vals = []
            for k, (x0, y0, x1, y1), ref in self._mouths:
                vals.append(ref.compare(decoded[self.positions[k]][y0:y1, x0:x1])[0])
            out["mouth_ssim"] = float(np.mean(vals))
        if self.true_obs is not None:
            out.update(self._akd(decoded))
        return out

    def _akd(self, decoded: Sequence[np.ndarray]) -> dict[str, float | None]:
        from ..face import FaceTracker, inter_ocular

        tracker = FaceTracker(*self.models, eyes=False)
        errs = []
        missing = 0
        with_face = 0
        seen = []
        for k, i in enumerate(self.positions):
            obs = tracker.update(decoded[i], self.times[i])
            seen.append(obs)
            true = self.true_obs[k]  # type: ignore[index]
            if true is None:
                continue
            with_face += 1
            if obs is None:
                missing += 1
                continue
            errs.append(100.0 * landmark_error(obs.raw_landmarks, true.raw_landmarks, inter_ocular(true.raw_landmarks)))
        out: dict[str, float | None] = {
            "akd": float(np.mean(errs)) if errs else None,
            "mkr": (missing / with_face) if with_face else None,
        }
        if self.true_cues is not None:
            out.update(cues.compare_cues(self.true_cues, cues.measure([decoded[i] for i in self.positions], seen, self._iris)))
        return out


# --------------------------------------------------------------------------------------
# runs


@dataclass
class RunResult:
    """One codec at one rate point on one clip."""

    codec: str
    setting: str
    target_kbps: float | None
    kbps: float
    bytes: int
    reference_bytes: int
    frames: int
    key_frames: int
    quality: dict[str, float | None]
    timing: dict[str, float]
    params: dict
    samples: dict[int, np.ndarray] = field(default_factory=dict, repr=False)
    #: FaceLink only: the frame at ``VIEW_POSITION`` decoded with each of ``VIEW_POSES``
    views: dict[tuple[float, float, float], np.ndarray] = field(default_factory=dict, repr=False)
    #: FaceLink only: one-time region references (crops of the open mouth), not in ``kbps``
    region_bytes: int = 0

    def as_dict(self) -> dict:
        return {
            "codec": self.codec,
            "setting": self.setting,
            "target_kbps": self.target_kbps,
            "kbps": round(self.kbps, 4),
            "bytes": self.bytes,
            "reference_bytes": self.reference_bytes,
            "region_bytes": self.region_bytes,
            "frames": self.frames,
            "key_frames": self.key_frames,
            "quality": {k: (None if v is None else round(v, 6)) for k, v in self.quality.items()},
            "timing_s": {k: round(v, 3) for k, v in self.timing.items()},
            "params": self.params,
        }


@dataclass
class ClipResult:
    """Every run on one clip and the comparison of FaceLink with each peer."""

    clip: PreparedClip
    runs: list[RunResult]
    face_box: tuple[int, int, int, int] | None
    facelink_note: str | None
    sample_positions: list[int]
    comparison: dict = field(default_factory=dict)
    #: why a sampled position was chosen, for the contact sheet ("widest mouth", "largest turn",
    #: "deepest blink", "largest glance", "widest eyes"), by coded position (0-based)
    sample_labels: dict[int, str] = field(default_factory=dict)
    #: the coded frame (0-based) the re-posed views show
    view_position: int | None = None
    seconds: float = 0.0

    def as_dict(self) -> dict:
        c = self.clip
        fb = self.face_box
        return {
            "name": c.name,
            "path": c.path,
            "person": c.person,
            "source_size": list(c.source_size),
            "crop": {"x": c.crop[0], "y": c.crop[1], "side": c.crop[2]},
            "size": c.size,
            "fps": float(c.fps),
            "coded_frames": len(c.frames) - 1,
            "duration_s": round((len(c.frames) - 1) / float(c.fps), 4),
            "face_box": list(fb) if fb else None,
            "sampled_frames": {str(p): self.sample_labels.get(p - 1, "") for p in self.sample_positions},
            "free_view_frame": self.view_position + 1 if self.view_position is not None else None,
            "face_area_fraction": round((fb[2] - fb[0]) * (fb[3] - fb[1]) / c.size**2, 4) if fb else None,
            "notes": list(c.notes),
            "facelink_skipped": self.facelink_note,
            "runs": [r.as_dict() for r in self.runs],
            "comparison": self.comparison,
            "seconds": round(self.seconds, 2),
        }


def _samples(frames: Sequence[np.ndarray], positions: Sequence[int]) -> dict[int, np.ndarray]:
    return {p: frames[p] for p in positions}


def _run_facelink(
    clip: PreparedClip, name: str, params: CodecParams, reference, true_obs, scorer: Scorer, backend: str, positions,
    view_position: int | None = None,
) -> RunResult:
    from ..io import Frame
    from ..receiver import FrameRenderer
    from ..sender import FrameEncoder

    size = clip.size
    enc = FrameEncoder(reference, params, width=size, height=size, fps=clip.fps, tracker=_ReplayTracker(true_obs[1:], clip.times[1:]))
    rnd = FrameRenderer(backend=backend)
    out: list[np.ndarray] = []
    t0 = time.perf_counter()
    start = enc.start()
    sent: list[bytes] = []
    for p in start:
        rnd.push(p)
    for i in range(1, len(clip.frames)):
        pkt, _ = enc.push(Frame(clip.frames[i], clip.times[i], i))
        sent.append(pkt)
        r = rnd.push(pkt)
        if r is None:
            raise RuntimeError("FaceLink receiver produced no frame for a frame packet")
        out.append(r.image)
        for extra in enc.take_extra():  # region references: one-time, like the reference
            rnd.push(extra)
    rnd.push(enc.end())
    wall = time.perf_counter() - t0
    views = _views(start, sent[: view_position + 1], backend) if view_position is not None else {}
    s = enc.stats
    t1 = time.perf_counter()
    q = scorer.score(out)
    t2 = time.perf_counter()
    duration = (len(clip.frames) - 1) / float(clip.fps)
    return RunResult(
        "facelink", name, None, 8 * s.bytes / duration / 1000, s.bytes, s.reference_bytes, s.frames, s.key_frames, q,
        {"encode": s.timings["code"], "receive": max(wall - s.timings["code"] - s.timings["track"], 0.0), "generate": rnd.generate_seconds, "metrics": t2 - t1},
        _params_dict(params), _samples(out, positions), views, s.region_bytes,
    )  # fmt: skip


#: free-view re-posings shown on the contact sheet (yaw, pitch, roll in degrees)
VIEW_POSES: tuple[tuple[float, float, float], ...] = ((-30.0, 0.0, 0.0), (30.0, 0.0, 0.0))


def _views(start: Sequence[bytes], frames: Sequence[bytes], backend: str) -> dict[tuple[float, float, float], np.ndarray]:
    """The last of ``frames`` decoded again with each of :data:`VIEW_POSES` (``--pose``)."""
    from ..receiver import FrameRenderer

    packets = list(start) + list(frames)
    out = {}
    for pose in VIEW_POSES:
        rnd = FrameRenderer(backend=backend, pose_offset=pose)
        last = None
        for p in packets:
            r = rnd.push(p)
            if r is not None:
                last = r.image
        if last is not None:
            out[pose] = last
    return out


def _run_peer(clip: PreparedClip, peer: PeerCodec, setting: PeerSetting, scorer: Scorer, positions) -> RunResult:
    coded = clip.frames[1:]
    run = encode_decode(coded, clip.fps, peer, setting)
    t1 = time.perf_counter()
    q = scorer.score(run.frames)
    t2 = time.perf_counter()
    duration = len(coded) / float(clip.fps)
    return RunResult(
        peer.name, setting.label, setting.target_kbps, 8 * run.bytes / duration / 1000, run.bytes, 0, len(coded), run.key_frames, q,
        {"encode": run.encode_seconds, "decode": run.decode_seconds, "metrics": t2 - t1},
        {"options": run.options, "first_packet_bytes": run.packet_bytes[0] if run.packet_bytes else 0}, _samples(run.frames, positions),
    )  # fmt: skip


def _telling_frames(observations: Sequence) -> dict[int, str]:
    """Coded positions worth a contact-sheet row: the widest mouth and the largest head turn
    (rotation angle from the first tracked frame)."""
    from ..keypoints import default_basis, similarity_fit

    basis = default_basis()
    best_mouth = best_turn = None
    r0 = None
    for k, obs in enumerate(observations):
        if obs is None:
            continue
        lm = obs.raw_landmarks
        width = float(np.linalg.norm(lm[78, :2] - lm[308, :2]))
        ratio = float(np.linalg.norm(lm[13, :2] - lm[14, :2])) / max(width, 1e-6)
        if best_mouth is None or ratio > best_mouth[0]:
            best_mouth = (ratio, k)
        r = similarity_fit(basis.mean, np.asarray(lm, np.float64), basis.weights)[1]
        if r0 is None:
            r0 = r
        angle = float(np.degrees(np.arccos(np.clip((np.trace(r @ r0.T) - 1) / 2, -1, 1))))
        if best_turn is None or angle > best_turn[0]:
            best_turn = (angle, k)
    out: dict[int, str] = {}
    if best_turn is not None and best_turn[0] > 0:
        out[best_turn[1]] = f"largest turn ({best_turn[0]:.0f} deg)"
    if best_mouth is not None:
        out[best_mouth[1]] = f"widest mouth ({best_mouth[0]:.2f})" + (f", {out[best_mouth[1]]}" if best_mouth[1] in out else "")
    return out


def run_clip(clip: PreparedClip, config: CodecBenchConfig, models, *, progress: Callable[[str], None] | None = None) -> ClipResult:
    """Every configured codec and rate point on one prepared clip."""
    t_start = time.perf_counter()
    coded = clip.frames[1:]
    n = len(coded)
    positions = sorted({min(n - 1, max(0, round(n * (k + 1) / (config.samples + 1)))) for k in range(config.samples)})
    true_obs = _track(clip.frames, clip.times, models) if models is not None else None
    face_box = _face_box(true_obs[1:], clip.size) if true_obs is not None else None
    labels = _telling_frames(true_obs[1:]) if true_obs is not None else {}
    positions = sorted(set(positions) | set(labels))
    view_position = positions[len(positions) // 2] if positions else None
    scorer = Scorer(coded, clip.times[1:], every=config.every, face_box=face_box, models=models)
    # ... and the eyes' telling moments
    if scorer.true_cues is not None:
        for k, label in cues.eye_moments(scorer.true_cues).items():
            labels.setdefault(scorer.positions[k], label)
    positions = sorted(set(positions) | set(labels))
    runs: list[RunResult] = []
    note: str | None = None
    reference = None
    if not config.facelink:
        note = "not requested"
    elif models is None:
        note = "face models unavailable"
    else:
        try:
            # the receiver needs the generator: say so once here instead of failing in every run
            importlib.import_module("facelink.generator")
            from ..sender import make_reference

            reference = make_reference(clip.frames[0], models)
        except ImportError as e:
            note = f"facelink.generator not importable ({e})"
        except FaceLinkError as e:
            note = f"no FaceLink run: {e}"
    names = [n for n, _ in config.facelink]
    headline = "medium" if "medium" in names else (names[len(names) // 2] if names else None)
    for name, params in config.facelink:
        if reference is not None:
            vp = view_position if name == headline else None
            runs.append(_run_facelink(clip, name, params, reference, true_obs, scorer, config.backend, positions, vp))
        if progress:
            progress(f"{clip.name} facelink {name}")
    for peer in config.peers:
        for setting in peer_settings(peer, config.peer_kbps):
            runs.append(_run_peer(clip, peer, setting, scorer, positions))
            if progress:
                progress(f"{clip.name} {peer.name} {setting.label}")
    res = ClipResult(clip, runs, face_box, note, [p + 1 for p in positions], sample_labels=labels, view_position=view_position)
    res.comparison = compare_runs([r.as_dict() for r in runs])
    res.seconds = time.perf_counter() - t_start
    return res


# --------------------------------------------------------------------------------------
# comparison


#: AKD is only meaningful where the tracker finds the face in most decoded frames: above this
#: missing-keypoint rate the run's AKD (over the few frames left) is kept in the data but left
#: out of curves, comparisons and means
MAX_MKR = 0.5


def metric_value(run: dict, key: str) -> float | None:
    """A run's value of metric ``key`` for analysis (None where missing or, for AKD, unreliable)."""
    q = run["quality"]
    v = q.get(key)
    if v is None:
        return None
    if key == "akd" and q.get("mkr") is not None and q["mkr"] > MAX_MKR:
        return None
    return float(v)


def _curve(runs: Sequence[dict], codec: str, key: str) -> tuple[list[float], list[float]]:
    m = _METRIC[key]
    pts = [(r["kbps"], metric_value(r, key)) for r in runs if r["codec"] == codec]
    pts = [(k, m.oriented(v)) for k, v in pts if v is not None and k is not None]
    return [p[0] for p in pts], [p[1] for p in pts]


def compare_runs(runs: Sequence[dict]) -> dict:
    """BD-rate of FaceLink against each peer and the saving at equal quality, per metric.

    ``runs`` are :meth:`RunResult.as_dict` records (or the averaged records of
    :func:`summarize`).  Savings: for each FaceLink point, the peer's rate at FaceLink's
    quality divided by FaceLink's rate; ``bound`` "floor" means FaceLink's quality is below
    the peer's quality at its lowest measured rate (the ratio is then the peer's minimum
    rate over FaceLink's, and the peer delivers *better* quality there: an upper bound on
    the equal-quality saving); "ceiling" means FaceLink's quality is above every peer point
    (a lower bound).
    """
    fl = [r for r in runs if r["codec"] == "facelink"]
    peers = sorted(
        {r["codec"] for r in runs if r["codec"] != "facelink"}, key=lambda c: list(_peer_order()).index(c) if c in _peer_order() else 99
    )
    out: dict = {}
    if not fl:
        return out
    for peer in peers:
        per_metric = {}
        peer_runs = [r for r in runs if r["codec"] == peer]
        floor_kbps = min(r["kbps"] for r in peer_runs)
        for m in METRICS:
            fk, fq = _curve(runs, "facelink", m.key)
            pk, pq = _curve(runs, peer, m.key)
            if not fk or not pk:
                continue
            bd = bd_rate(pk, pq, fk, fq)
            savings = {}
            for r in fl:
                v = metric_value(r, m.key)
                if v is None:
                    continue
                at = rate_at_quality(pk, pq, m.oriented(v))
                if at is None:
                    continue
                kbps = floor_kbps if at.bound == "floor" else at.kbps
                savings[r["setting"]] = {
                    "facelink_kbps": round(r["kbps"], 4),
                    "peer_kbps": round(kbps, 4),
                    "ratio": round(kbps / r["kbps"], 3) if r["kbps"] > 0 else None,
                    "bound": at.bound,
                }
            per_metric[m.key] = {**bd.as_dict(), "savings": savings}
        out[peer] = {"floor_kbps": round(floor_kbps, 4), "metrics": per_metric}
    return out


def _peer_order() -> tuple[str, ...]:
    from ._peers import PEERS

    return tuple(PEERS)


def summarize(clips: Sequence[dict]) -> dict:
    """Mean curves over the clips where FaceLink ran, their comparison, and per-clip medians."""
    usable = [c for c in clips if any(r["codec"] == "facelink" for r in c["runs"])]
    keys: list[tuple[str, str]] = []
    for c in usable:
        for r in c["runs"]:
            if (r["codec"], r["setting"]) not in keys:
                keys.append((r["codec"], r["setting"]))
    mean_runs = []
    for codec, setting in keys:
        rs = [r for c in usable for r in c["runs"] if r["codec"] == codec and r["setting"] == setting]
        if len(rs) != len(usable):
            continue  # a point missing on some clip would bias the mean curve
        quality: dict[str, float | None] = {}
        for key in list(_METRIC) + ["mkr"]:
            vals = [metric_value(r, key) if key in _METRIC else r["quality"].get(key) for r in rs]
            quality[key] = float(np.mean(vals)) if vals and all(v is not None for v in vals) else None
        mean_runs.append(
            {
                "codec": codec,
                "setting": setting,
                "target_kbps": rs[0]["target_kbps"],
                "kbps": float(np.mean([r["kbps"] for r in rs])),
                "kbps_min": float(np.min([r["kbps"] for r in rs])),
                "kbps_max": float(np.max([r["kbps"] for r in rs])),
                "reference_bytes": float(np.mean([r["reference_bytes"] for r in rs])),
                "region_bytes": float(np.mean([r.get("region_bytes", 0) for r in rs])),
                "quality": quality,
                "clips": len(rs),
            }
        )
    per_clip: dict = {}
    for c in usable:
        for peer, d in c["comparison"].items():
            for key, md in d["metrics"].items():
                per_clip.setdefault(peer, {}).setdefault(key, []).append(md["bd_rate"])
    medians = {
        peer: {
            key: {
                "median_bd_rate": float(np.median([v for v in vals if v is not None])) if any(v is not None for v in vals) else None,
                "clips_with_overlap": sum(v is not None for v in vals),
                "clips": len(vals),
            }
            for key, vals in d.items()
        }
        for peer, d in per_clip.items()
    }
    return {"clips": len(usable), "mean_runs": mean_runs, "comparison": compare_runs(mean_runs), "per_clip_bd_rate": medians}
