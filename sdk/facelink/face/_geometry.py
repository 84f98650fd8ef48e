"""Crop geometry: rotated square regions of interest and the affine maps to and from them."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image

__all__ = ["Roi", "crop"]


@dataclass(frozen=True)
class Roi:
    """A rotated square in image pixels: centre, side length and rotation (radians, CCW on screen)."""

    cx: float
    cy: float
    size: float
    angle: float = 0.0

    def crop_to_image(self, n: int) -> np.ndarray:
        """2x3 affine mapping pixel coordinates of an ``n``x``n`` crop to image pixels."""
        c, s = math.cos(self.angle), math.sin(self.angle)
        k = self.size / n
        # image = centre + R(-angle) @ ((u - n/2) * k); the image y axis points down,
        # so a counter-clockwise (on screen) rotation of the crop uses -angle here.
        a = np.array([[c * k, s * k], [-s * k, c * k]])
        t = np.array([self.cx, self.cy]) - a @ np.array([n / 2.0, n / 2.0])
        return np.hstack([a, t[:, None]])

    def to_image(self, pts: np.ndarray, n: int) -> np.ndarray:
        """Map crop pixel coordinates (..., 2+) to image pixels; a third column (depth) is scaled."""
        m = self.crop_to_image(n)
        out = np.array(pts, dtype=np.float32, copy=True)
        out[..., :2] = pts[..., :2] @ m[:, :2].T + m[:, 2]
        if out.shape[-1] > 2:
            out[..., 2:] *= self.size / n
        return out


def crop(image: np.ndarray | Image.Image, roi: Roi, n: int) -> np.ndarray:
    """Resample the ROI of an RGB image into an ``n``x``n`` float32 array in [0, 1] (bilinear).

    Pixels outside the image are black, as MediaPipe's image-to-tensor stage does.
    """
    img = image if isinstance(image, Image.Image) else Image.fromarray(image)
    m = roi.crop_to_image(n)
    # PIL wants the output->input map with pixel centres at +0.5
    a, b, tx = m[0]
    d, e, ty = m[1]
    tx = tx + 0.5 * (a + b) - 0.5
    ty = ty + 0.5 * (d + e) - 0.5
    out = img.transform((n, n), Image.Transform.AFFINE, (a, b, tx, d, e, ty), resample=Image.Resampling.BILINEAR)
    return np.asarray(out, dtype=np.float32) * (1.0 / 255.0)
