"""FaceLink's encoder models: MediaPipe BlazeFace, Face Mesh and Iris, fetched and converted to ONNX.

>>> from facelink.models import model_path
>>> model_path("face_landmark")            # fetched and converted on first use
PosixPath('~/.cache/facelink/models/face_landmark-1055cb9d4a9c-c2.onnx')
>>> model_path("face_landmark", precision="int8")   # Q/DQ graph built from the calibration table
PosixPath('~/.cache/facelink/models/face_landmark.int8-1055cb9d4a9c-<table>-c2-q1.onnx')

See :mod:`facelink.models._fetch` for the cache layout and how to pre-seed an offline machine.
"""

from __future__ import annotations

from ._convert import CONVERTER_VERSION
from ._fetch import MEDIAPIPE_VERSION, MODEL_SPECS, ModelSpec, facelink_home, fetch_models
from ._paths import model_path
from ._quantize import DEFAULT_PRECISION, PRECISIONS, QUANTIZER_VERSION, resolve_precision

__all__ = [
    "CONVERTER_VERSION",
    "DEFAULT_PRECISION",
    "MEDIAPIPE_VERSION",
    "MODEL_SPECS",
    "PRECISIONS",
    "QUANTIZER_VERSION",
    "ModelSpec",
    "facelink_home",
    "fetch_models",
    "model_path",
    "resolve_precision",
]
