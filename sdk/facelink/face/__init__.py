"""Face detection, landmarks and causal tracking (the encoder's front end)."""

from ._detector import Detection, FaceDetector
from ._eyes import EYE_VALUES, EyeModel, EyeObservation, EyeState, EyeTracker, eye_state
from ._factory import create_eye_model, create_models, create_tracker
from ._filter import OneEuroFilter
from ._geometry import Roi, crop
from ._landmarks import LandmarkModel, roi_from_landmarks
from ._tracker import FaceObservation, FaceTracker, inter_ocular

__all__ = [
    "EYE_VALUES",
    "Detection",
    "EyeModel",
    "EyeObservation",
    "EyeState",
    "EyeTracker",
    "FaceDetector",
    "FaceObservation",
    "FaceTracker",
    "LandmarkModel",
    "OneEuroFilter",
    "Roi",
    "create_eye_model",
    "create_models",
    "create_tracker",
    "crop",
    "eye_state",
    "inter_ocular",
    "roi_from_landmarks",
]
