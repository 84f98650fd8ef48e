"""Calibration crops: the exact detector inputs and landmark crops the encoder feeds the models."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np

from ..backend import InferenceSession, TensorSpec
from ..face import FaceDetector, FaceTracker, LandmarkModel
from ._sources import FrameSequence

__all__ = ["CropSet", "RecordingSession", "collect_crops"]

#: ``progress(done, total)`` with frames processed so far
FrameProgress = Callable[[int, int | None], None]


class RecordingSession(InferenceSession):
    """Runs another session and keeps a copy of every input it is fed (the crops, as fed)."""

    def __init__(self, inner: InferenceSession) -> None:
        self.inner = inner
        self.backend = inner.backend  # type: ignore[misc]
        self.recorded: list[np.ndarray] = []
        self.enabled = True

    @property
    def inputs(self) -> tuple[TensorSpec, ...]:
        return self.inner.inputs

    @property
    def outputs(self) -> tuple[TensorSpec, ...]:
        return self.inner.outputs

    @property
    def closed(self) -> bool:
        return self.inner.closed

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        if self.enabled:
            (x,) = feeds.values()
            self.recorded.append(np.array(x[0], dtype=np.float32, copy=True))
        return self.inner.run(feeds)

    def close(self) -> None:
        self.inner.close()


@dataclass
class CropSet:
    """Crops recorded from real tracking: float32 HWC arrays exactly as fed to the models."""

    detector: list[np.ndarray] = field(default_factory=list)
    landmark: list[np.ndarray] = field(default_factory=list)
    frames: int = 0
    face_frames: int = 0
    sources: list[dict[str, object]] = field(default_factory=list)


def collect_crops(
    sequences: Iterable[FrameSequence],
    detector_session: InferenceSession,
    landmark_session: InferenceSession,
    progress: FrameProgress | None = None,
    total_frames: int | None = None,
    on_frame: Callable[[np.ndarray], None] | None = None,
) -> CropSet:
    """Track every sequence with the real detector and tracker, recording what they feed the models.

    Per frame: the detector's input(s) for that frame (the letterboxed whole frame, and tiles when
    it finds no face there — what the encoder runs when it (re)detects), and every landmark crop
    the tracker makes (detection ROI, its refinement, then the landmark-driven ROI of the
    following frames).  Each sequence gets a fresh tracker.  ``on_frame`` sees every frame
    (evaluation compares detectors there).
    """
    det_rec = RecordingSession(detector_session)
    lm_rec = RecordingSession(landmark_session)
    recording_detector = FaceDetector(det_rec)
    out = CropSet()
    done = 0
    for seq in sequences:
        tracker = FaceTracker(FaceDetector(detector_session), LandmarkModel(lm_rec))
        n_det, n_lm = len(det_rec.recorded), len(lm_rec.recorded)
        frames = faces = 0
        for image, t in seq.frames:
            recording_detector.detect(image)
            if on_frame is not None:
                on_frame(image)
            if tracker.update(image, t) is not None:
                faces += 1
            frames += 1
            done += 1
            if progress is not None:
                progress(done, total_frames)
        out.sources.append(
            {
                "name": seq.name,
                "person": seq.person,
                "split": seq.split,
                "frames": frames,
                "face_frames": faces,
                "detector_inputs": len(det_rec.recorded) - n_det,
                "landmark_crops": len(lm_rec.recorded) - n_lm,
            }
        )
        out.frames += frames
        out.face_frames += faces
    out.detector = det_rec.recorded
    out.landmark = lm_rec.recorded
    return out
