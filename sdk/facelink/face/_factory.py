"""Build the tracker from FaceLink's models on a chosen backend."""

from __future__ import annotations

from ._detector import FaceDetector
from ._filter import OneEuroFilter
from ._landmarks import LandmarkModel
from ._tracker import FaceTracker

__all__ = ["create_tracker", "create_models"]


def create_models(backend: str = "auto", threads: int | None = None) -> tuple[FaceDetector, LandmarkModel]:
    """Detector and landmark model sessions (models fetched and converted on first use)."""
    from ..backend import create_session
    from ..models import model_path

    det = FaceDetector(create_session(model_path("face_detector"), backend=backend, threads=threads))
    lm = LandmarkModel(create_session(model_path("face_landmark"), backend=backend, threads=threads))
    return det, lm


def create_tracker(backend: str = "auto", threads: int | None = None, *, min_cutoff: float = 1.0, beta: float = 20.0) -> FaceTracker:
    """A ready :class:`FaceTracker` (One-Euro smoothing with the given parameters)."""
    det, lm = create_models(backend, threads)
    return FaceTracker(det, lm, smoothing=OneEuroFilter(min_cutoff=min_cutoff, beta=beta))
