"""Text -> speech through an installed espeak-ng (the kiosk case: ``facelink animate --text``)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from ..errors import InputError
from ._features import read_speech

__all__ = ["MAX_TEXT", "speak"]

#: longest text spoken in one call (characters)
MAX_TEXT = 5000


def speak(text: str, voice: str = "en-us", words_per_minute: int = 150, timeout: float = 120.0) -> np.ndarray:
    """16 kHz mono float32 speech of ``text`` from espeak-ng; :class:`InputError` (one line)
    when espeak-ng is not installed, the text is empty or too long, or synthesis fails."""
    if not isinstance(text, str) or not text.strip():
        raise InputError("--text is empty")
    if len(text) > MAX_TEXT:
        raise InputError(f"--text is {len(text)} characters long (at most {MAX_TEXT})")
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise InputError("--text needs espeak-ng (Debian/Ubuntu: apt-get install espeak-ng); or give a speech file with --audio")
    with tempfile.TemporaryDirectory(prefix="facelink-tts-") as d:
        wav = Path(d) / "speech.wav"
        try:
            subprocess.run(
                [exe, "-v", voice, "-s", str(int(words_per_minute)), "-w", str(wav), "--", text],
                check=True, capture_output=True, timeout=timeout,
            )  # fmt: skip
        except subprocess.TimeoutExpired:
            raise InputError(f"espeak-ng did not finish within {timeout:.0f} s") from None
        except subprocess.CalledProcessError as e:
            msg = (e.stderr or b"").decode(errors="replace").strip().splitlines()
            raise InputError(f"espeak-ng failed: {msg[-1] if msg else f'exit {e.returncode}'}") from None
        return read_speech(str(wav))
