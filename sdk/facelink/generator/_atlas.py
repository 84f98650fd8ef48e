"""Per-reference textures for what the reference image does not show: mouth interior, eyeballs.

Both are precomputed once per reference and appended to the warp's source image, so the
per-frame path stays one flow field and one bilinear sample.

Mouth atlas
    A texture in *canonical* face coordinates (head-fixed, inter-ocular distance 1; twice the
    image's resolution) covering the mouth opening: an upper-teeth band that hangs from the
    reference's upper inner lip (upper teeth are fixed to the skull) under a shadow line, a
    dark cavity shaded from the reference's lip colour below it, lighter and redder further
    down (the tongue).  Where the reference itself shows its mouth interior (open by more than
    ~2 px), the reference's own pixels are used instead (its teeth and tongue).
    The mouth-interior triangles of the driving face sample this texture at their rigidly
    un-posed (canonical) positions.

Eye atlas
    The reference's eye region, in reference pixels, with everything outside the eye opening
    replaced by the nearest interior row of its column: the eyeball stays still (rigid with
    the head) while the lids move over it, and an eye opened wider than in the reference shows
    eyeball, not lid skin.  Lid closure needs no texture: the lid triangles cover the eye.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from ._mesh import FACE_OVAL, LIPS_INNER, LIPS_INNER_LOWER, LIPS_INNER_UPPER, LIPS_OUTER
from ._raster import Rasterizer

__all__ = ["Atlas", "eye_atlas", "eye_lids", "mouth_atlas", "polygon_mask", "sample_bilinear"]

#: visible height of the upper teeth below the upper lip's rest line, canonical units (~6 mm)
TEETH_HEIGHT = 0.10
#: canonical extent of the mouth atlas around the reference mouth (x: +-, y: above, below)
MOUTH_HALF_WIDTH = 0.6
MOUTH_ABOVE = 0.35
MOUTH_BELOW = 1.0


@dataclass(frozen=True)
class Atlas:
    """An RGB float32 texture and the affine map into it: ``pixel = (coord - origin) * scale``."""

    rgb: np.ndarray
    origin: tuple[float, float]
    scale: float


def sample_bilinear(img: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Bilinear samples of an (H, W, 3) image at float pixel coordinates (clamped to the edges)."""
    h, w = img.shape[:2]
    x = np.clip(x, 0.0, w - 1.0)
    y = np.clip(y, 0.0, h - 1.0)
    x0 = np.minimum(np.floor(x).astype(np.int64), max(w - 2, 0))
    y0 = np.minimum(np.floor(y).astype(np.int64), max(h - 2, 0))
    x1 = np.minimum(x0 + 1, w - 1)
    y1 = np.minimum(y0 + 1, h - 1)
    fx = (x - x0)[..., None]
    fy = (y - y0)[..., None]
    f = img.astype(np.float32)
    top = f[y0, x0] * (1 - fx) + f[y0, x1] * fx
    bot = f[y1, x0] * (1 - fx) + f[y1, x1] * fx
    return (top * (1 - fy) + bot * fy).astype(np.float32)


def polygon_mask(shape: tuple[int, int], pts: np.ndarray) -> np.ndarray:
    """Boolean (H, W) mask of a polygon given in pixel coordinates."""
    img = Image.new("L", (shape[1], shape[0]), 0)
    ImageDraw.Draw(img).polygon([(float(x), float(y)) for x, y in pts], fill=1)
    return np.asarray(img, dtype=bool)


def _median_colour(img: np.ndarray, mask: np.ndarray, fallback: tuple[float, float, float]) -> np.ndarray:
    if np.count_nonzero(mask) < 4:
        return np.array(fallback, np.float32)
    return np.median(img[mask].reshape(-1, 3).astype(np.float32), axis=0)


def _profile(canon: np.ndarray, idx: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    p = canon[list(idx), :2]
    order = np.argsort(p[:, 0], kind="stable")
    return p[order, 0], p[order, 1]


def _grow(field: np.ndarray, steps: int) -> None:
    """Extend a NaN-holed (H, W, C) field into its holes by ``steps`` pixels, in place.

    Each step fills a hole next to known pixels by linear extrapolation from the nearest
    known pair along a row or column (exact for the piecewise-linear maps stored here).
    """
    for _ in range(steps):
        known = np.isfinite(field[..., 0])
        filled = field.copy()
        for axis in (0, 1):
            for d in (1, -1):
                a = np.roll(field, d, axis=axis)  # neighbour one step back
                b = np.roll(field, 2 * d, axis=axis)  # neighbour two steps back
                ok = ~known & ~np.isfinite(filled[..., 0]) & np.isfinite(a[..., 0])
                edge = np.zeros_like(ok)
                sl = [slice(None), slice(None)]
                sl[axis] = slice(0, 2) if d > 0 else slice(-2, None)
                edge[tuple(sl)] = True  # np.roll wraps around: ignore wrapped neighbours
                ok &= ~edge
                lin = np.where(np.isfinite(b), 2 * a - b, a)
                filled[ok] = lin[ok]
        field[...] = filled


_LUMA = np.array([0.299, 0.587, 0.114], np.float32)


def _teeth_colour(image: np.ndarray, interior: np.ndarray, lip: np.ndarray, skin: np.ndarray) -> np.ndarray:
    """Colour for synthetic teeth: the reference's own teeth if it shows them, else a warm white
    lit like the face (teeth are much brighter than skin of any tone, and almost neutral)."""
    lip_lum = float(lip @ _LUMA)
    px = image[interior].reshape(-1, 3).astype(np.float32)
    if len(px) >= 12:
        lum = px @ _LUMA
        colour = np.median(px[lum >= np.percentile(lum, 80)], axis=0)
        saturation = (colour.max() - colour.min()) / max(float(colour.max()), 1.0)
        if float(colour @ _LUMA) > 1.25 * lip_lum and saturation < 0.35:
            return colour
    skin_lum = max(float(skin @ _LUMA), 1.0)
    level = float(np.clip(2.0 * skin_lum, 110.0, 230.0))
    return level * (0.55 + 0.45 * skin / skin_lum) * np.array([1.0, 0.97, 0.92], np.float32)


def _smoothstep(e0: float, e1: float, x: np.ndarray) -> np.ndarray:
    t = np.clip((x - e0) / (e1 - e0), 0.0, 1.0)
    return t * t * (3 - 2 * t)


def mouth_atlas(image: np.ndarray, landmarks: np.ndarray, canon: np.ndarray, scale: float, triangles: np.ndarray) -> Atlas:
    """The mouth-interior texture of a reference (see the module docstring).

    ``canon`` is the reference face in canonical coordinates (468, 3); ``scale`` the
    reference's pixels per canonical unit; ``triangles`` (M, 3) the mouth-interior triangles.
    """
    h, w = image.shape[:2]
    # atlas pixels per canonical unit: twice the image's, so resampling the reference into it
    # and sampling it back again loses little
    scale = 2.0 * float(np.clip(scale, 4.0, 1000.0))
    lm2 = landmarks[:, :2]

    # colours measured on the reference
    lips = polygon_mask((h, w), lm2[list(LIPS_OUTER)]) & ~polygon_mask((h, w), lm2[list(LIPS_INNER)])
    lip = _median_colour(image, lips, (150.0, 80.0, 80.0))
    skin = _median_colour(image, polygon_mask((h, w), lm2[list(FACE_OVAL)]), (180.0, 140.0, 120.0))
    interior = polygon_mask((h, w), lm2[list(LIPS_INNER)])
    teeth = _teeth_colour(image, interior, lip, skin)

    ux, uy = _profile(canon, LIPS_INNER_UPPER)
    left, right = float(canon[78, 0]), float(canon[308, 0])
    centre = 0.5 * (left + right)
    half_w = max(0.5 * (right - left), 0.08)
    top = float(canon[13, 1])

    ox, oy = centre - MOUTH_HALF_WIDTH, top - MOUTH_ABOVE
    wa = int(np.ceil(2 * MOUTH_HALF_WIDTH * scale)) + 1
    ha = int(np.ceil((MOUTH_ABOVE + MOUTH_BELOW) * scale)) + 1
    cx = ox + np.arange(wa, dtype=np.float64) / scale
    cy = oy + np.arange(ha, dtype=np.float64) / scale
    gx, gy = np.meshgrid(cx, cy)
    up = np.interp(gx, ux, uy)
    u = (gx - centre) / half_w
    au = np.clip(np.abs(u), 0.0, 1.3)
    below = gy - up  # canonical distance below the reference's upper inner lip

    # upper teeth: fixed to the skull, hanging from the rest position of the upper lip
    teeth_h = TEETH_HEIGHT * (1.0 - 0.4 * np.minimum(au, 1.0) ** 2)
    shade = 1.0 - 0.35 * np.minimum(au, 1.1) ** 2  # the arch turns away from the light
    gaps = np.zeros_like(u)
    for b in (0.0, 0.24, -0.24, 0.46, -0.46, 0.66, -0.66):
        gaps = np.maximum(gaps, np.exp(-(((u - b) / 0.025) ** 2)))
    shade *= 1.0 - 0.05 * gaps
    shade *= 1.0 - 0.6 * np.exp(-np.maximum(below, 0.0) / 0.012)  # shadow under the upper lip
    teeth_rgb = teeth[None, None] * shade[..., None]
    # cavity: dark behind the teeth, the tongue (lip-coloured, in shade) further down, dark
    # towards the corners
    depth = below - teeth_h
    tongue = _smoothstep(0.0, 0.09, depth)
    g = (0.28 + 0.55 * tongue) * (1.0 - 0.45 * au**2 / 1.69)
    cavity_rgb = (lip * np.array([1.04, 0.84, 0.86], np.float32))[None, None] * g[..., None]
    teeth_a = (1.0 - _smoothstep(-0.012, 0.012, below - teeth_h)) * (1.0 - _smoothstep(0.85, 1.05, au))
    rgb = teeth_rgb * teeth_a[..., None] + cavity_rgb * (1.0 - teeth_a[..., None])

    # where the reference shows its own mouth interior, use it: rasterise the reference's
    # mouth-interior triangles into the atlas with their image positions as attributes, so the
    # atlas is the exact inverse of the per-frame mapping (identity renders reproduce it)
    if len(triangles):
        corners = (canon[:, :2][triangles] - np.array([ox, oy])) * scale
        where = np.full((ha, wa, 2), np.nan, np.float32)
        Rasterizer().draw(corners, np.zeros(triangles.shape), landmarks[:, :2][triangles], where)
        alpha = np.isfinite(where[..., 0]).astype(np.float32)
        _grow(where, 1)  # a 50 % ring: bilinear taps at the polygon's edge read reference pixels
        alpha = np.where(np.isfinite(where[..., 0]) & (alpha == 0), 0.5, alpha)
        # only where the reference's mouth is really open (> ~2 px): a closed mouth's sliver is
        # the lip line, which the synthetic shadow under the upper lip already draws
        lx, ly = _profile(canon, LIPS_INNER_LOWER)
        opening_px = (np.interp(gx, lx, ly) - up) * (scale / 2.0)
        alpha = (alpha * _smoothstep(1.5, 3.0, opening_px))[..., None]
        covered = alpha[..., 0] > 0
        if np.any(covered):
            ref = sample_bilinear(image, where[covered][:, 0], where[covered][:, 1])
            rgb[covered] = ref * alpha[covered] + rgb[covered] * (1.0 - alpha[covered])
    return Atlas(np.ascontiguousarray(rgb, dtype=np.float32), (ox, oy), scale)


def eye_lids(landmarks: np.ndarray, contour: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Upper and lower lid polylines (N, 2) of an eye contour, each sorted by x."""
    n = len(contour)
    half = n // 2
    lower = landmarks[list(contour[: half + 1]), :2]
    upper = landmarks[[contour[(half + i) % n] for i in range(half + 1)], :2]
    return upper[np.argsort(upper[:, 0], kind="stable")], lower[np.argsort(lower[:, 0], kind="stable")]


def eye_atlas(image: np.ndarray, landmarks: np.ndarray, contour: tuple[int, ...]) -> Atlas:
    """The eye texture of a reference, in reference pixels (see the module docstring)."""
    upper, lower = eye_lids(landmarks, contour)
    xs = landmarks[list(contour), 0]
    ys = landmarks[list(contour), 1]
    x_lo, x_hi = float(xs.min()), float(xs.max())
    ew = max(x_hi - x_lo, 2.0)
    ox = np.floor(x_lo - 0.4 * ew)
    oy = np.floor(float(ys.min()) - 0.6 * ew)
    wa = int(np.ceil(x_hi + 0.4 * ew - ox)) + 1
    ha = int(np.ceil(float(ys.max()) + 0.6 * ew - oy)) + 1
    gx, gy = np.meshgrid(ox + np.arange(wa, dtype=np.float64), oy + np.arange(ha, dtype=np.float64))
    sx = np.clip(gx, x_lo, x_hi)
    up = np.interp(sx, upper[:, 0], upper[:, 1])
    lo = np.interp(sx, lower[:, 0], lower[:, 1])
    opening = lo - up
    margin = np.clip(0.25 * opening, 0.0, None)
    sy = np.where(gy < up, up + margin, np.where(gy > lo, lo - margin, gy))
    sy = np.where(opening > 0, sy, 0.5 * (up + lo))
    return Atlas(sample_bilinear(image, sx, sy), (float(ox), float(oy)), 1.0)
