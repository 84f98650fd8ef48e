"""Still images (references): load with a pixel budget, never a decompression bomb."""

from __future__ import annotations

import os

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..errors import InputError

__all__ = ["load_image", "MAX_REFERENCE_SIDE"]

#: references are downscaled so their long side is at most this many pixels (documented)
MAX_REFERENCE_SIDE = 2048
#: refuse to decode anything larger than this many pixels (a 16K x 16K image)
MAX_DECODE_PIXELS = 16384 * 16384


def load_image(path: str, max_side: int = MAX_REFERENCE_SIDE) -> np.ndarray:
    """RGB uint8 array; images whose long side exceeds ``max_side`` are downscaled (Lanczos).

    Large JPEGs are decoded at a reduced scale directly (``Image.draft``), so an 8K photo
    never needs its full-resolution buffer.
    """
    if not os.path.isfile(path):
        raise InputError(f"{path}: no such file")
    Image.MAX_IMAGE_PIXELS = MAX_DECODE_PIXELS
    try:
        with Image.open(path) as im:
            if im.width * im.height > MAX_DECODE_PIXELS:
                raise InputError(f"{path}: {im.width}x{im.height} is too large to decode")
            if max(im.size) > max_side:
                im.draft("RGB", (max_side, max_side))
            im = im.convert("RGB")
            if max(im.size) > max_side:
                k = max_side / max(im.size)
                im = im.resize((max(1, round(im.width * k)), max(1, round(im.height * k))), Image.Resampling.LANCZOS)
            return np.asarray(im, dtype=np.uint8).copy()
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError, SyntaxError, ValueError) as e:
        raise InputError(f"{path}: not a readable image ({str(e).splitlines()[0] if str(e) else type(e).__name__})") from None
