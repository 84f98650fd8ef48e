"""FaceLink's encoder models: MediaPipe BlazeFace, Face Mesh and Iris, fetched and converted to ONNX.

>>> from facelink.models import model_path
>>> model_path("face_landmark")            # fetched and converted on first use
PosixPath('~/.cache/facelink/models/face_landmark-1055cb9d4a9c-c1.onnx')

See :mod:`facelink.models._fetch` for the cache layout and how to pre-seed an offline machine.
"""

from __future__ import annotations

from ._convert import CONVERTER_VERSION
from ._fetch import MEDIAPIPE_VERSION, MODEL_SPECS, ModelSpec, facelink_home, fetch_models, model_path

__all__ = [
    "CONVERTER_VERSION",
    "MEDIAPIPE_VERSION",
    "MODEL_SPECS",
    "ModelSpec",
    "facelink_home",
    "fetch_models",
    "model_path",
]
