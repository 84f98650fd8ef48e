"""Build the tracker from FaceLink's models on a chosen backend and precision."""

from __future__ import annotations

from ._detector import FaceDetector
from ._eyes import EyeModel, EyeTracker
from ._filter import OneEuroFilter
from ._landmarks import LandmarkModel
from ._tracker import FaceTracker

__all__ = ["create_eye_model", "create_models", "create_tracker"]


def create_models(
    backend: str = "auto", threads: int | None = None, precision: str = "auto", *, eyes: bool = True
) -> tuple[FaceDetector, LandmarkModel]:
    """Detector and landmark model sessions (models fetched, converted or quantized on first use).

    ``precision`` is ``"fp32"``, ``"int8"`` (symmetric Q/DQ graphs built from the package's
    calibration table) or ``"auto"``: ``$FACELINK_PRECISION``, else INT8 on TensorRT and FP32 on
    ONNX Runtime (whose CPU kernels run these graphs faster in float; see docs/jetson.md).
    With ``eyes`` the landmark model carries the Iris model (``lm.iris``), so trackers built
    on it also track iris, lids and brows.
    """
    from ..backend import select_backend
    from ..models import model_path, resolve_precision

    chosen = select_backend(backend)
    prec = resolve_precision(precision, chosen.name)
    det = FaceDetector(chosen.create_session(model_path("face_detector", precision=prec), threads=threads))
    iris = _eye_model(chosen, threads) if eyes else None
    lm = LandmarkModel(chosen.create_session(model_path("face_landmark", precision=prec), threads=threads), iris=iris)
    return det, lm


def _eye_model(chosen, threads: int | None) -> EyeModel:
    """The Iris model on one thread unless told otherwise: a 64x64 graph gains nothing from a
    thread pool (2.0 CPU-ms per eye either way on the 2-core development machine, less wall
    time on one thread)."""
    from ..models import model_path

    return EyeModel(chosen.create_session(model_path("iris_landmark"), threads=threads if threads is not None else 1))


def create_eye_model(backend: str = "auto", threads: int | None = None) -> EyeModel:
    """The Iris model (eye contour + iris per eye) on a backend; always FP32 (64x64 input:
    a fraction of a millisecond per eye, nothing to gain from INT8 on the CPU)."""
    from ..backend import select_backend

    return _eye_model(select_backend(backend), threads)


def create_tracker(
    backend: str = "auto",
    threads: int | None = None,
    *,
    precision: str = "auto",
    min_cutoff: float = 1.0,
    beta: float = 20.0,
    eyes: bool = True,
) -> FaceTracker:
    """A ready :class:`FaceTracker` (One-Euro smoothing with the given parameters); with
    ``eyes`` it also tracks iris, lids and brows (:class:`~facelink.face.EyeTracker`)."""
    det, lm = create_models(backend, threads, precision, eyes=eyes)
    return FaceTracker(det, lm, smoothing=OneEuroFilter(min_cutoff=min_cutoff, beta=beta))
