"""Full-reference quality metrics in numpy: PSNR, SSIM, MS-SSIM, and landmark fidelity (AKD).

* PSNR over every sample of the two arrays (for RGB frames: all three channels), peak 255;
  identical inputs give ``inf``.
* SSIM after Wang, Bovik, Sheikh & Simoncelli (IEEE TIP 2004): 11x11 Gaussian window with
  sigma 1.5, ``K1 = 0.01``, ``K2 = 0.03``, dynamic range 255, statistics over the *valid*
  window positions (no padding), population (not sample) variances -- the reference
  MATLAB ``ssim_index.m`` and ``skimage.metrics.structural_similarity(...,
  gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255)``.
  RGB frames are compared on their BT.601 luma (what codec papers and FFmpeg's ``ssim``
  report as "Y").
* MS-SSIM after Wang, Simoncelli & Bovik (Asilomar 2003): five scales with the exponents
  (0.0448, 0.2856, 0.3001, 0.2363, 0.1333), 2x2 average pooling between scales, contrast-
  structure terms at every scale and luminance at the coarsest.  A scale is used only if
  the 11-tap window still fits (images of at least 176 px on the short side get all five);
  smaller images use fewer scales with their exponents renormalised to sum to one, and
  :func:`ms_ssim_scales` says how many.  Negative contrast-structure means (possible on
  anti-correlated content) are clipped to zero before the fractional powers.
* AKD (average keypoint distance, after Siarohin et al.'s FOMM evaluation): the mean 2-D
  distance between landmarks found on the decoded frame and on the true frame, divided by
  the inter-ocular distance of the true frame.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "MS_SSIM_WEIGHTS",
    "gaussian_window",
    "landmark_error",
    "luma",
    "ms_ssim",
    "ms_ssim_scales",
    "psnr",
    "ssim",
    "StructuralReference",
]

#: exponents of the five MS-SSIM scales, finest first (Wang et al. 2003)
MS_SSIM_WEIGHTS: tuple[float, ...] = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
_WIN = 11
_SIGMA = 1.5
_K1, _K2 = 0.01, 0.03
_PEAK = 255.0
_BT601 = np.array([0.299, 0.587, 0.114])


def gaussian_window(size: int = _WIN, sigma: float = _SIGMA) -> np.ndarray:
    """The normalised 1-D Gaussian taps (the 2-D window is their outer product)."""
    if size < 1 or not sigma > 0:
        raise ValueError("window size must be >= 1 and sigma > 0")
    x = np.arange(size, dtype=np.float64) - (size - 1) / 2.0
    g = np.exp(-(x * x) / (2.0 * sigma * sigma))
    return g / g.sum()


def _as_pair(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(a)
    b = np.asarray(b)
    if a.shape != b.shape:
        raise ValueError(f"images differ in shape: {a.shape} vs {b.shape}")
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (1, 3)):
        raise ValueError(f"expected an (H, W) or (H, W, 1|3) image, got shape {a.shape}")
    return a, b


def luma(image: np.ndarray) -> np.ndarray:
    """BT.601 luma of an RGB image as float64 (a 2-D image is returned as float64 unchanged)."""
    img = np.asarray(image)
    if img.ndim == 2:
        return img.astype(np.float64)
    if img.ndim == 3 and img.shape[2] == 1:
        return img[..., 0].astype(np.float64)
    if img.ndim == 3 and img.shape[2] == 3:
        return img.astype(np.float64) @ _BT601
    raise ValueError(f"expected an (H, W) or (H, W, 1|3) image, got shape {img.shape}")


def psnr(a: np.ndarray, b: np.ndarray, peak: float = _PEAK) -> float:
    """Peak signal-to-noise ratio in dB over all samples; ``inf`` for identical inputs."""
    a, b = _as_pair(a, b)
    d = a.astype(np.float64) - b.astype(np.float64)
    mse = float(np.mean(d * d))
    if mse == 0.0:
        return math.inf
    return 10.0 * math.log10(peak * peak / mse)


def _filter_valid(x: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Separable 'valid' correlation of the last two axes of ``x`` with taps ``g``."""
    n = len(g)
    h, w = x.shape[-2:]
    rows = np.zeros(x.shape[:-2] + (h - n + 1, w), np.float64)
    for i, gi in enumerate(g):
        rows += gi * x[..., i : i + h - n + 1, :]
    out = np.zeros(x.shape[:-2] + (h - n + 1, w - n + 1), np.float64)
    for i, gi in enumerate(g):
        out += gi * rows[..., :, i : i + w - n + 1]
    return out


class _Stats:
    """Gaussian-filtered mean and second moment of one image (reusable against many others)."""

    __slots__ = ("image", "mean", "sq")

    def __init__(self, image: np.ndarray) -> None:
        self.image = image
        m = _filter_valid(np.stack([image, image * image]), gaussian_window())
        self.mean = m[0]
        self.sq = m[1]


def _ssim_terms(x: _Stats, y: np.ndarray, peak: float) -> tuple[float, float]:
    """(mean SSIM, mean contrast-structure) of a reference (with its statistics) and an image."""
    stats = _filter_valid(np.stack([y, y * y, x.image * y]), gaussian_window())
    mx, my = x.mean, stats[0]
    vx = x.sq - mx * mx
    vy = stats[1] - my * my
    cxy = stats[2] - mx * my
    c1 = (_K1 * peak) ** 2
    c2 = (_K2 * peak) ** 2
    cs = (2.0 * cxy + c2) / (vx + vy + c2)
    lum = (2.0 * mx * my + c1) / (mx * mx + my * my + c1)
    return float(np.mean(lum * cs)), float(np.mean(cs))


def _check_size(h: int, w: int) -> None:
    if min(h, w) < _WIN:
        raise ValueError(f"SSIM needs images of at least {_WIN}x{_WIN} pixels, got {w}x{h}")


def ms_ssim_scales(height: int, width: int) -> int:
    """How many MS-SSIM scales (at most five) an image of this size supports."""
    n = 0
    h, w = height, width
    while n < len(MS_SSIM_WEIGHTS) and min(h, w) >= _WIN:
        n += 1
        h, w = h // 2, w // 2
    return n


def _pool2(x: np.ndarray) -> np.ndarray:
    h, w = (x.shape[0] // 2) * 2, (x.shape[1] // 2) * 2
    x = x[:h, :w]
    return 0.25 * (x[0::2, 0::2] + x[1::2, 0::2] + x[0::2, 1::2] + x[1::2, 1::2])


class StructuralReference:
    """A true image prepared once for SSIM / MS-SSIM against many decoded versions of it.

    Holds the luma pyramid and its windowed statistics, so each comparison filters only the
    decoded image.  ``multiscale=False`` keeps the finest scale only (SSIM alone).
    """

    def __init__(self, image: np.ndarray, *, multiscale: bool = True, peak: float = _PEAK) -> None:
        x = luma(image)
        _check_size(*x.shape)
        self.shape = tuple(np.asarray(image).shape)
        self.peak = peak
        n = ms_ssim_scales(*x.shape) if multiscale else 1
        w = np.array(MS_SSIM_WEIGHTS[:n])
        # all five scales: Wang et al.'s exponents as published; fewer: renormalised to sum to 1
        self.weights = w if n == len(MS_SSIM_WEIGHTS) else w / w.sum()
        self._levels = []
        for j in range(n):
            self._levels.append(_Stats(x))
            if j < n - 1:
                x = _pool2(x)

    @property
    def scales(self) -> int:
        return len(self._levels)

    def compare(self, image: np.ndarray) -> tuple[float, float | None]:
        """``(ssim, ms_ssim)`` of ``image`` against this reference (ms_ssim None if single-scale)."""
        if tuple(np.asarray(image).shape) != self.shape:
            raise ValueError(f"images differ in shape: {self.shape} vs {np.asarray(image).shape}")
        y = luma(image)
        n = len(self._levels)
        value = 1.0
        first = 0.0
        for j, ref in enumerate(self._levels):
            s, cs = _ssim_terms(ref, y, self.peak)
            if j == 0:
                first = s
            if j == n - 1:  # luminance x contrast-structure at the coarsest scale
                value *= max(s, 0.0) ** self.weights[j]
            else:
                value *= max(cs, 0.0) ** self.weights[j]
                y = _pool2(y)
        return first, (float(value) if n > 1 else None)


def ssim(a: np.ndarray, b: np.ndarray, peak: float = _PEAK) -> float:
    """Mean SSIM (Wang et al. 2004) of two images; RGB inputs are compared on their luma."""
    a, b = _as_pair(a, b)
    return StructuralReference(a, multiscale=False, peak=peak).compare(b)[0]


def ms_ssim(a: np.ndarray, b: np.ndarray, peak: float = _PEAK) -> float:
    """Multi-scale SSIM (Wang et al. 2003); RGB inputs are compared on their luma.

    An image too small for a second scale (under 22 px) gives its single-scale SSIM.
    """
    a, b = _as_pair(a, b)
    ref = StructuralReference(a, multiscale=True, peak=peak)
    s, m = ref.compare(b)
    return s if m is None else m


def landmark_error(decoded: np.ndarray, truth: np.ndarray, inter_ocular_px: float) -> float:
    """Mean 2-D landmark distance divided by the true face's inter-ocular distance."""
    d = np.asarray(decoded, np.float64)
    t = np.asarray(truth, np.float64)
    if d.shape != t.shape or d.ndim != 2 or d.shape[1] < 2:
        raise ValueError(f"landmark arrays must both be (N, 2+), got {d.shape} and {t.shape}")
    if not inter_ocular_px > 0:
        raise ValueError("inter-ocular distance must be > 0")
    return float(np.mean(np.linalg.norm(d[:, :2] - t[:, :2], axis=1)) / inter_ocular_px)
