"""Causal face tracking: detect when needed, follow the landmarks otherwise, smooth."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from ._detector import Detection, FaceDetector
from ._eyes import EyeState, EyeTracker
from ._filter import OneEuroFilter
from ._geometry import Roi
from ._landmarks import LEFT_EYE_OUTER, RIGHT_EYE_OUTER, LandmarkModel, roi_from_landmarks

__all__ = ["FaceObservation", "FaceTracker", "inter_ocular"]


def inter_ocular(lm: np.ndarray) -> float:
    """Distance between the outer eye corners (pixels): the normaliser for landmark errors."""
    return float(np.linalg.norm(lm[LEFT_EYE_OUTER, :2] - lm[RIGHT_EYE_OUTER, :2]))


@dataclass(frozen=True)
class FaceObservation:
    """The tracked face in one frame.

    ``landmarks`` are smoothed (468, 3) image-pixel coordinates (x right, y down, z towards
    the camera negative, in pixel units); ``raw_landmarks`` are the model's output before
    smoothing; ``roi`` is the crop the landmarks came from; ``detected`` is true when the
    detector (not the previous frame) placed that crop; ``eyes`` what the eyes do (iris,
    lids, brows; ``None`` when the tracker has no eye model).
    """

    landmarks: np.ndarray
    raw_landmarks: np.ndarray
    score: float
    roi: Roi
    detected: bool
    faces_detected: int
    eyes: EyeState | None = None


class FaceTracker:
    """BlazeFace on the first frame and after a loss, Face Mesh's own landmarks as the next ROI.

    Call :meth:`update` once per frame, in order, with the frame time in seconds.  Returns
    ``None`` for a frame without a face.  With several faces in view the most confident
    detection is followed until it is lost.
    """

    def __init__(
        self,
        detector: FaceDetector,
        landmarks: LandmarkModel,
        *,
        presence_threshold: float = 0.5,
        smoothing: OneEuroFilter | None = None,
        redetect_every: int = 0,
        eyes: EyeTracker | bool = True,
    ) -> None:
        self.detector = detector
        self.landmarks = landmarks
        self.presence_threshold = presence_threshold
        self.filter = smoothing if smoothing is not None else OneEuroFilter()
        self.redetect_every = redetect_every
        if eyes is True:
            iris = getattr(landmarks, "iris", None)
            eyes = EyeTracker(iris) if iris is not None else False
        #: the eye tracker (``None``: eyes are not tracked, observations carry ``eyes=None``)
        self.eyes: EyeTracker | None = eyes or None
        self._roi: Roi | None = None
        self._since_detect = 0

    def reset(self) -> None:
        self._roi = None
        self.filter.reset()
        if self.eyes is not None:
            self.eyes.reset()

    def _from_detection(self, img: Image.Image, frame: np.ndarray) -> tuple[np.ndarray, float, Roi, int] | None:
        dets: list[Detection] = self.detector.detect(frame)
        for det in dets:
            roi = det.roi()
            lm, score = self.landmarks(img, roi)
            if score >= self.presence_threshold:
                # refine once: the landmark-derived ROI is what tracking will use
                roi = roi_from_landmarks(lm)
                lm2, score2 = self.landmarks(img, roi)
                if score2 >= self.presence_threshold:
                    lm, score = lm2, score2
                return lm, score, roi, len(dets)
        return None

    def update(self, frame: np.ndarray, t: float) -> FaceObservation | None:
        """Track the face in an RGB uint8 frame taken at time ``t`` (seconds)."""
        img = Image.fromarray(frame)
        detected = False
        n_faces = 1
        result = None
        due = self.redetect_every and self._since_detect >= self.redetect_every
        if self._roi is not None and not due:
            lm, score = self.landmarks(img, self._roi)
            if score >= self.presence_threshold:
                result = (lm, score, self._roi)
        if result is None:
            found = self._from_detection(img, frame)
            if found is None:
                self.reset()
                return None
            lm, score, roi, n_faces = found
            result = (lm, score, roi)
            detected = True
            self._since_detect = 0
            self.filter.reset()
        else:
            self._since_detect += 1
        lm, score, roi = result
        self._roi = roi_from_landmarks(lm)
        smooth = self.filter(lm, t, scale=max(inter_ocular(lm), 1.0))
        eyes = self.eyes.update(img, lm, t) if self.eyes is not None else None
        return FaceObservation(smooth, lm, score, roi, detected, n_faces, eyes)
