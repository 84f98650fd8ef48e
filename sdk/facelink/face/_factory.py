"""Build the tracker from FaceLink's models on a chosen backend and precision."""

from __future__ import annotations

from ._detector import FaceDetector
from ._filter import OneEuroFilter
from ._landmarks import LandmarkModel
from ._tracker import FaceTracker

__all__ = ["create_models", "create_tracker"]


def create_models(
    backend: str = "auto", threads: int | None = None, precision: str = "auto"
) -> tuple[FaceDetector, LandmarkModel]:
    """Detector and landmark model sessions (models fetched, converted or quantized on first use).

    ``precision`` is ``"fp32"``, ``"int8"`` (symmetric Q/DQ graphs built from the package's
    calibration table) or ``"auto"``: ``$FACELINK_PRECISION``, else INT8 on TensorRT and FP32 on
    ONNX Runtime (whose CPU kernels run these graphs faster in float; see docs/jetson.md).
    """
    from ..backend import select_backend
    from ..models import model_path, resolve_precision

    chosen = select_backend(backend)
    prec = resolve_precision(precision, chosen.name)
    det = FaceDetector(chosen.create_session(model_path("face_detector", precision=prec), threads=threads))
    lm = LandmarkModel(chosen.create_session(model_path("face_landmark", precision=prec), threads=threads))
    return det, lm


def create_tracker(
    backend: str = "auto",
    threads: int | None = None,
    *,
    precision: str = "auto",
    min_cutoff: float = 1.0,
    beta: float = 20.0,
) -> FaceTracker:
    """A ready :class:`FaceTracker` (One-Euro smoothing with the given parameters)."""
    det, lm = create_models(backend, threads, precision)
    return FaceTracker(det, lm, smoothing=OneEuroFilter(min_cutoff=min_cutoff, beta=beta))
