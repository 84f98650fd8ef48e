"""Text -> speech through an installed espeak-ng (the kiosk case: ``facelink animate --text``)."""

from __future__ import annotations

import numpy as np

from ..errors import InputError
from ._features import from_48k

__all__ = ["MAX_TEXT", "speak"]

#: longest text spoken in one call (characters; espeak-ng's wrapper in facelink.audio takes 2000)
MAX_TEXT = 2000


def speak(text: str) -> np.ndarray:
    """16 kHz mono float32 speech of ``text`` (:func:`facelink.audio.espeak_speech`);
    :class:`InputError` (one line) when espeak-ng is missing, the text empty or too long, or
    synthesis fails."""
    from ..audio import espeak_available, espeak_speech

    if not isinstance(text, str) or not text.strip():
        raise InputError("--text is empty")
    if len(text) > MAX_TEXT:
        raise InputError(f"--text is {len(text)} characters long (at most {MAX_TEXT})")
    if not espeak_available():
        raise InputError("--text needs espeak-ng (Debian/Ubuntu: apt-get install espeak-ng); or give a speech file with --audio")
    try:
        return from_48k(espeak_speech(text).samples)
    except RuntimeError as e:
        raise InputError(str(e)) from None
