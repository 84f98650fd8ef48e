"""The keypoint codec: quantisation, temporal prediction, entropy-coded packets."""

from ._params import QUALITY_PRESETS, CodecParams, params_for_kbps
from ._reference import Reference
from ._stream import PTS_HZ, FrameKind, KeypointFrame, StreamDecoder, StreamEncoder

__all__ = [
    "CodecParams",
    "FrameKind",
    "KeypointFrame",
    "PTS_HZ",
    "QUALITY_PRESETS",
    "Reference",
    "StreamDecoder",
    "StreamEncoder",
    "params_for_kbps",
]
