"""The whole operations of FaceLink, once: every runner (CLI, C API, demo, examples, benchmarks) calls these.

=====================================  ==============================================================
:func:`encode_file`                    a video file -> a signed ``.flk`` stream (``facelink encode``)
:func:`decode_file`                    a stream -> a watermarked video + signed provenance manifest
                                       beside it (``facelink decode``)
:func:`verify_video`                   watermark + provenance of any video (``facelink verify``)
:class:`EncoderSession`                live: frames -> (signed) packets (``facelink send``, C senders)
:class:`RendererSession`               live: packets -> verified, watermarked frames (C receivers)
:func:`animate_file`                   a portrait + speech (or text) -> a talking-head video, marked
                                       audio-driven (``facelink animate``)
=====================================  ==============================================================

Results are typed (:class:`EncodeResult`, :class:`~facelink.rendering.DecodeResult`,
:class:`VerifyReport`), each with ``as_dict()`` giving the CLI's ``--json`` object, which the
C API returns as its report.  Errors are :mod:`facelink.errors` classes; nothing prints.
New operations (audio, ``animate``) join as sibling functions here, so runners only
translate arguments.
"""

from __future__ import annotations

from ..rendering import DecodeResult
from ._animate import AnimateResult, animate_file
from ._decode import decode_file
from ._encode import EncodeResult, encode_file, rate_breakdown, session_tag_hex
from ._live import EncoderSession, RendererSession, RenderStep
from ._verify import VerifyReport, verify_video

__all__ = [
    "AnimateResult",
    "DecodeResult",
    "EncodeResult",
    "EncoderSession",
    "RenderStep",
    "RendererSession",
    "VerifyReport",
    "animate_file",
    "decode_file",
    "encode_file",
    "rate_breakdown",
    "session_tag_hex",
    "verify_video",
]
