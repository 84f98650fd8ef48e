"""A portrait and speech -> a talking-head video (``facelink animate``)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .._files import check_output
from ..errors import InputError
from ..rendering import DecodeResult

__all__ = ["AnimateResult", "animate_file"]


@dataclass
class AnimateResult:
    """What :func:`animate_file` made: the decode's result plus the animation's own figures."""

    decode: DecodeResult
    seconds: float
    seed: int
    motion: str
    text: bool

    def as_dict(self) -> dict:
        d = self.decode.as_dict()
        d.update(seconds=round(self.seconds, 3), seed=self.seed, motion=self.motion, source="audio-driven", from_text=self.text)
        return d


def animate_file(
    reference_image: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    audio: str | os.PathLike[str] | None = None,
    text: str | None = None,
    fps: float = 30.0,
    seed: int = 0,
    motion: str = "natural",
    backend: str = "auto",
    c2pa: bool = True,
    progress: Callable[[int, int | None], None] | None = None,
) -> AnimateResult:
    """The portrait ``reference_image`` saying ``audio`` (any file PyAV reads) or ``text``
    (spoken by espeak-ng first), written to ``out`` (MP4 with the speech muxed in).

    The motion is made as a FaceLink keypoint stream (:mod:`facelink.animate`), signed with
    this machine's local key and decoded by :func:`decode_file`, so the video carries the
    provenance watermark and a signed manifest; its session header is marked audio-driven,
    which ``facelink verify`` reports.  ``seed`` and ``motion`` (calm, natural, lively) pick
    the head motion and blinks.
    """
    from ..animate._features import read_speech
    from ..animate._motion import MOTION_STYLES
    from ..animate._stream import animate_stream
    from ..bitstream import FlkWriter
    from ..face import create_models
    from ..face._reference import make_reference
    from ..io import load_image
    from ..security import seal_packets, signer_extension
    from ..security._local import local_identity
    from ._decode import decode_file

    if (audio is None) == (text is None):
        raise InputError("give the speech as --audio FILE or --text \"...\" (one of them)")
    if motion not in MOTION_STYLES:
        raise InputError(f"--motion must be one of {', '.join(MOTION_STYLES)}, got {motion!r}")
    if not (isinstance(fps, (int, float)) and 1 <= fps <= 120):
        raise InputError(f"--fps must be 1..120, got {fps!r}")
    out = os.fspath(out)
    check_output(out)
    if text is not None:
        from ..animate._tts import speak

        pcm = speak(text)
    else:
        if not os.path.isfile(os.fspath(audio)):
            raise InputError(f"{audio}: no such file")
        try:
            pcm = read_speech(os.fspath(audio))
        except ValueError as e:
            raise InputError(str(e)) from None
    portrait = load_image(os.fspath(reference_image))
    ref = make_reference(portrait, create_models(backend))
    identity = local_identity()
    stream = animate_stream(
        ref, pcm, fps=fps, seed=seed, motion=motion, extensions=(signer_extension(identity),), backend=backend, progress=progress
    )
    with tempfile.TemporaryDirectory(prefix="facelink-animate-") as d:
        flk = Path(d) / "animated.flk"
        with FlkWriter(flk) as w:
            for p in seal_packets(stream.packets, identity):
                w.write(p)
        res = decode_file(flk, out, identity=identity, backend=backend, c2pa=c2pa)
    return AnimateResult(res, stream.seconds, seed, motion, text is not None)
