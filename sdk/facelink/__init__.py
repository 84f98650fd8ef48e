"""FaceLink: low-bandwidth talking-head video for the edge.

A sender tracks a face and emits a few kbit/s of signed keypoints (head pose,
expression and the eyes); a receiver re-synthesises the face from one reference image.

>>> import facelink
>>> facelink.__version__
'0.1.0'
"""

from ._version import __version__
from .codec import (
    CodecParams,
    FrameKind,
    KeypointFrame,
    QUALITY_PRESETS,
    Reference,
    StreamDecoder,
    StreamEncoder,
    params_for_kbps,
)
from .errors import (
    BackendUnavailable,
    FaceLinkError,
    InputError,
    InvalidPacket,
    ModelFetchError,
    NoFaceError,
    VerificationError,
)
from .face import EyeState, FaceObservation, FaceTracker, create_tracker
from .keypoints import ExpressionBasis, KeypointFitter, Pose, default_basis

__all__ = [
    "BackendUnavailable",
    "CodecParams",
    "ExpressionBasis",
    "EyeState",
    "FaceLinkError",
    "FaceObservation",
    "FaceTracker",
    "FrameKind",
    "InputError",
    "InvalidPacket",
    "KeypointFitter",
    "KeypointFrame",
    "ModelFetchError",
    "NoFaceError",
    "Pose",
    "QUALITY_PRESETS",
    "Reference",
    "StreamDecoder",
    "StreamEncoder",
    "VerificationError",
    "__version__",
    "create_tracker",
    "default_basis",
    "params_for_kbps",
]
