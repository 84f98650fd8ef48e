"""FaceLink: low-bandwidth talking-head video for the edge.

A sender tracks a face and emits a few kbit/s of signed keypoints (head pose,
expression and the eyes); a receiver re-synthesises the face from one reference image.

>>> import facelink
>>> facelink.__version__
'0.1.0'

The whole operations (docs/api.md) -- ``encode_file``, ``decode_file``, ``verify_video``,
``EncoderSession``, ``RendererSession`` (:mod:`facelink.pipeline`) -- and the ``Generator``
are exported here too; they load on first use, so ``import facelink`` stays light.
"""

from typing import TYPE_CHECKING

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

if TYPE_CHECKING:
    from .generator import Generator
    from .pipeline import (
        AnimateResult,
        DecodeResult,
        EncodeResult,
        EncoderSession,
        RendererSession,
        VerifyReport,
        animate_file,
        decode_file,
        encode_file,
        verify_video,
    )

#: public names loaded on first access (the pipeline and the generator import the model runtimes)
_LAZY = {
    "AnimateResult": "facelink.pipeline",
    "DecodeResult": "facelink.pipeline",
    "EncodeResult": "facelink.pipeline",
    "EncoderSession": "facelink.pipeline",
    "Generator": "facelink.generator",
    "RendererSession": "facelink.pipeline",
    "VerifyReport": "facelink.pipeline",
    "animate_file": "facelink.pipeline",
    "decode_file": "facelink.pipeline",
    "encode_file": "facelink.pipeline",
    "verify_video": "facelink.pipeline",
}


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'facelink' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "AnimateResult",
    "BackendUnavailable",
    "CodecParams",
    "DecodeResult",
    "EncodeResult",
    "EncoderSession",
    "ExpressionBasis",
    "EyeState",
    "FaceLinkError",
    "FaceObservation",
    "FaceTracker",
    "FrameKind",
    "Generator",
    "InputError",
    "InvalidPacket",
    "KeypointFitter",
    "KeypointFrame",
    "ModelFetchError",
    "NoFaceError",
    "Pose",
    "QUALITY_PRESETS",
    "Reference",
    "RendererSession",
    "StreamDecoder",
    "StreamEncoder",
    "VerificationError",
    "VerifyReport",
    "__version__",
    "create_tracker",
    "animate_file",
    "decode_file",
    "default_basis",
    "encode_file",
    "params_for_kbps",
    "verify_video",
]
