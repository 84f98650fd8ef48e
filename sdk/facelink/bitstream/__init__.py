"""FaceLink bitstream: packets, the static-model range coder and ``.flk`` files.

A pure core: bytes in, bytes out.  Sockets, clocks and threads live in the
runners that drive it.  The byte-exact format is specified in
``docs/bitstream.md``.
"""

from __future__ import annotations

from facelink.bitstream._peek import packet_type
from facelink.bitstream.flk import (
    FLK_MAGIC,
    MAX_RECORD_SIZE,
    FlkWriter,
    PathOrFile,
    iter_flk,
    read_flk,
    write_flk,
)
from facelink.bitstream.packets import (
    BITSTREAM_VERSION,
    EYE_TAG,
    EYE_VALUES,
    MAGIC,
    MAX_CHUNK_DATA,
    MAX_COEFFS,
    MAX_FRAME_PAYLOAD,
    POSE_FIELDS,
    SUPPORTED_VERSIONS,
    End,
    EyeChannels,
    KeyFrame,
    NoFace,
    Packet,
    PacketType,
    PredictedFrame,
    ReferenceChunk,
    Seal,
    SessionHeader,
    parse_packet,
)
from facelink.bitstream.rangecoder import (
    MAX_ABS_VALUE,
    NUM_SCALES,
    SCALES,
    ScaleIndices,
    decode_ints,
    encode_ints,
    estimate_bits,
    fit_scale_index,
)

__all__ = [
    "BITSTREAM_VERSION",
    "EYE_TAG",
    "EYE_VALUES",
    "End",
    "EyeChannels",
    "FLK_MAGIC",
    "FlkWriter",
    "KeyFrame",
    "MAGIC",
    "MAX_ABS_VALUE",
    "MAX_CHUNK_DATA",
    "MAX_COEFFS",
    "MAX_FRAME_PAYLOAD",
    "MAX_RECORD_SIZE",
    "NUM_SCALES",
    "NoFace",
    "POSE_FIELDS",
    "Packet",
    "PacketType",
    "PathOrFile",
    "PredictedFrame",
    "ReferenceChunk",
    "SCALES",
    "SUPPORTED_VERSIONS",
    "ScaleIndices",
    "Seal",
    "SessionHeader",
    "decode_ints",
    "encode_ints",
    "estimate_bits",
    "fit_scale_index",
    "iter_flk",
    "packet_type",
    "parse_packet",
    "read_flk",
    "write_flk",
]
