"""Per-reference textures for what the reference image does not show: mouth interior, eyeballs.

Both are precomputed once per reference and appended to the warp's source image, so the
per-frame path stays one flow field and one bilinear sample.

Mouth atlas
    A texture over (canonical x, v): x head-fixed (inter-ocular distance 1; twice the image's
    resolution), v the relative position between the upper (0) and lower (1) inner lip, one
    tile per mouth opening (:data:`MOUTH_OPENINGS`; each frame samples the tile nearest its
    own).  A tile holds shaded upper teeth of about their real height under the upper lip,
    faint lower teeth on wide openings, a dark cavity with a lit tongue, and a ramp into the
    lip's shaded colour along both lips and the corners (a soft lip line).  Colours come from
    the reference's lips and skin; teeth are the reference's own if it shows them, else a
    warm, skin-tinted off-white well below a flat white.  Where the reference itself shows
    its mouth interior (open by more than ~2 px), its own pixels are used instead.

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

__all__ = [
    "Atlas",
    "MouthAtlas",
    "MouthInterior",
    "eye_atlas",
    "eye_lids",
    "mouth_atlas",
    "mouth_colours",
    "mouth_interior_from_crop",
    "mouth_vertex_v",
    "polygon_mask",
    "sample_bilinear",
]

#: visible height of the upper teeth below the upper lip's rest line, canonical units (~6 mm)
TEETH_HEIGHT = 0.13
#: canonical half-width of the mouth atlas around the reference mouth
MOUTH_HALF_WIDTH = 0.6


@dataclass(frozen=True)
class Atlas:
    """An RGB float32 texture and the affine map into it: ``pixel = (coord - origin) * scale``."""

    rgb: np.ndarray
    origin: tuple[float, float]
    scale: float


def sample_bilinear(img: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Bilinear samples of an (H, W, C) image at float pixel coordinates (clamped to the edges)."""
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
    level = float(np.clip(TEETH_GAIN * skin_lum, 100.0, 215.0))
    return level * (0.55 + 0.45 * skin / skin_lum) * np.array([1.0, 0.97, 0.92], np.float32)


def _smoothstep(e0: float, e1: float, x: np.ndarray) -> np.ndarray:
    t = np.clip((x - e0) / (e1 - e0), 0.0, 1.0)
    return t * t * (3 - 2 * t)


#: openings (canonical units: lip gap at the centre over the inter-ocular distance) for which
#: the mouth atlas holds a tile; each frame samples the tile nearest its own opening
MOUTH_OPENINGS = (0.06, 0.12, 0.2, 0.3, 0.42, 0.56, 0.72)
#: synthetic interior: darkness of the cavity (fraction of the lip colour at the back; the
#: tongue adds to it), strength of the lower-teeth row, teeth brightness relative to the skin
CAVITY_LEVEL = 0.45
LOWER_TEETH = 0.8
LOWER_TEETH_HEIGHT = 0.1
TEETH_GAIN = 1.6
#: the reference's own interior is used where its lip gap exceeds this (canonical units) and it
#: shows an interior (dark or teeth), fading in from half of it
OWN_MIN_OPENING = 0.07
#: rows of one tile per unit of v (upper lip 0 .. lower lip 1), and the margin rows around it
_TILE_SPAN = 64
_TILE_MARGIN = 3


@dataclass(frozen=True)
class MouthAtlas:
    """The mouth-interior texture: one tile per opening in :data:`MOUTH_OPENINGS`, stacked.

    Coordinates: ``x`` canonical (head-fixed, so teeth do not slide or stretch sideways),
    ``v`` the relative position between the upper (0) and lower (1) inner lip (0.5 at the
    corners).  Because the lips map to fixed rows, the shading along them (the lips' shadow,
    the dark corners) is always where the lips are, whatever shape the mouth takes.
    """

    rgb: np.ndarray
    origin_x: float
    scale: float
    openings: tuple[float, ...]
    tile_rows: int

    def pixel(self, x: np.ndarray, v: np.ndarray, tile: int) -> tuple[np.ndarray, np.ndarray]:
        """Atlas pixel coordinates of canonical ``x`` and lip-relative ``v`` in tile ``tile``."""
        px = np.clip((x - self.origin_x) * self.scale, 0.0, self.rgb.shape[1] - 1.0)
        py = tile * self.tile_rows + _TILE_MARGIN + np.clip(v, -0.04, 1.04) * _TILE_SPAN
        return px, py

    def tile_for(self, opening: float) -> int:
        """Index of the tile made for the opening nearest ``opening`` (canonical units)."""
        return int(np.argmin(np.abs(np.log(max(opening, 1e-3)) - np.log(np.array(self.openings)))))


def mouth_vertex_v(n_vertices: int) -> np.ndarray:
    """Lip-relative ``v`` of every mesh vertex: 0 upper inner lip, 1 lower, 0.5 corners (NaN elsewhere)."""
    v = np.full(n_vertices, np.nan)
    v[list(LIPS_INNER_UPPER)] = 0.0
    v[list(LIPS_INNER_LOWER)] = 1.0
    v[[LIPS_INNER_UPPER[0], LIPS_INNER_UPPER[-1]]] = 0.5
    return v


def _shows_interior(image: np.ndarray, interior: np.ndarray, lip: np.ndarray) -> bool:
    """Whether the reference's lip gap shows a mouth interior (a dark cavity or bright teeth)
    rather than lip skin pressed together."""
    px = image[interior].reshape(-1, 3).astype(np.float32)
    if len(px) < 6:
        return False
    lum = px @ _LUMA
    lip_lum = float(lip @ _LUMA)
    return bool(np.median(lum) < 0.8 * lip_lum or np.percentile(lum, 80) > 1.25 * lip_lum)


def _mouth_tile(u: np.ndarray, v: np.ndarray, opening: float, lip: np.ndarray, teeth: np.ndarray) -> np.ndarray:
    """Synthetic interior for one opening: (rows, cols, 3) float32 over the (u, v) grid.

    ``u`` horizontal position relative to the reference's mouth half-width (0 centre, 1 corner),
    ``v`` 0 at the upper inner lip, 1 at the lower.  Upper teeth hang under the upper lip with
    about their real height (so narrower in ``v`` for wider openings), faint lower teeth
    above the lower lip only on wide openings, a cavity that is darkest at the back and
    corners with a lit tongue low in the middle, and at both lips a ramp into the lip's own
    (shaded) colour, so the lip line is soft rather than a cut.
    """
    au = np.clip(np.abs(u), 0.0, 1.4)
    o = max(opening, 1e-3)
    # cavity: lip colour in deep shade, darker to the corners, the tongue lighter low in the middle
    cavity = (lip * np.array([0.95, 0.72, 0.74], np.float32))[None, None]
    tongue = _smoothstep(0.45, 0.95, v) * (1.0 - _smoothstep(0.3, 0.9, au)) * _smoothstep(0.12, 0.35, o)
    g = (CAVITY_LEVEL + 0.3 * tongue) * (1.0 - 0.55 * np.minimum(au, 1.0) ** 2)
    rgb = cavity * g[..., None]
    # upper teeth: ~TEETH_HEIGHT canonical below the lip (at most 45 % of the opening), lower at
    # the corners where the arch turns away; shaded top (under the lip) and bottom (the edges)
    th = np.minimum(TEETH_HEIGHT / o, 0.5) * (1.0 - 0.45 * np.minimum(au, 1.0) ** 2)
    t = v / np.maximum(th, 1e-3)  # 0 at the lip, 1 at the teeth's edge
    body = 0.62 + 0.38 * np.sin(np.clip(t, 0.0, 1.0) * np.pi) ** 0.6
    arch = 1.0 - 0.55 * np.minimum(au, 1.1) ** 2
    gaps = np.zeros_like(u)
    for b in (0.0, 0.22, -0.22, 0.42, -0.42, 0.6, -0.6, 0.76, -0.76):
        gaps = np.maximum(gaps, np.exp(-(((u - b) / 0.03) ** 2)))
    shade = body * arch * (1.0 - 0.22 * gaps)
    alpha = (1.0 - _smoothstep(0.8, 1.15, t)) * (1.0 - _smoothstep(0.8, 1.05, au))
    alpha *= 0.9 * _smoothstep(0.04, 0.1, o)  # a slit shows a hint of teeth, never a bar
    rgb = rgb * (1.0 - alpha[..., None]) + teeth[None, None] * (shade * alpha)[..., None]
    # lower teeth: on wide openings only, dimmer (in the lower lip's shadow), narrower
    tl = np.minimum(LOWER_TEETH_HEIGHT / o, 0.4) * (1.0 - 0.5 * np.minimum(au, 1.0) ** 2)
    tb = (1.0 - v) / np.maximum(tl, 1e-3)
    la = (1.0 - _smoothstep(0.75, 1.1, tb)) * (1.0 - _smoothstep(0.55, 0.85, au)) * LOWER_TEETH * _smoothstep(0.12, 0.3, o)
    lshade = (0.55 + 0.25 * np.sin(np.clip(tb, 0.0, 1.0) * np.pi)) * arch * (1.0 - 0.2 * gaps)
    rgb = rgb * (1.0 - la[..., None]) + teeth[None, None] * (lshade * la)[..., None]
    # soft lip line: the last few rows before either lip (and the corners) ramp into the lip's
    # colour in shade; the ramp is a fixed share of the opening, at least ~1.5 px on a 256 face
    edge = np.maximum(_smoothstep(0.1, 0.0, v), _smoothstep(0.85, 1.0, v))
    edge = np.maximum(edge, _smoothstep(0.85, 1.05, au))
    rim = lip[None, None] * (0.45 + 0.35 * edge[..., None])  # the lip's colour in shade at the very edge
    rgb = rgb * (1.0 - edge[..., None]) + rim * edge[..., None]
    return rgb.astype(np.float32)


@dataclass(frozen=True)
class MouthInterior:
    """An image that shows a mouth interior: the inner-lip points (:data:`LIPS_INNER` order) in
    its pixels and in canonical units.  ``anchored``: upper teeth stay with the upper lip and
    lower teeth with the lower one when the mouth opens less or more than in the image (for a
    wide-open crop); otherwise the interior hangs from the upper lip and a wider opening shows
    synthetic cavity below it (for the reference's own slightly open mouth)."""

    image: np.ndarray
    pixels: np.ndarray
    canonical: np.ndarray
    anchored: bool = False
    colour_gain: np.ndarray | None = None

    @property
    def opening(self) -> float:
        return float(self.canonical[_LOWER_MID, 1] - self.canonical[_UPPER_MID, 1])


_UPPER_MID = LIPS_INNER.index(13)
_LOWER_MID = LIPS_INNER.index(14)
_LOCAL = {v: i for i, v in enumerate(LIPS_INNER)}


def _interior_canvas(src: MouthInterior, ox: float, wa: int, scale: float, triangles: np.ndarray):
    """The interior rasterised into canonical (x, y): premultiplied RGBA canvas, its top y,
    the upper lip's y and the lip gap per atlas column."""
    canon = src.canonical
    cx = ox + np.arange(wa, dtype=np.float64) / scale
    upper = [_LOCAL[i] for i in LIPS_INNER_UPPER]
    lower = [_LOCAL[i] for i in LIPS_INNER_LOWER]
    ou, lu = np.argsort(canon[upper, 0], kind="stable"), np.argsort(canon[lower, 0], kind="stable")
    up = np.interp(cx, canon[upper, 0][ou], canon[upper, 1][ou])
    profile = np.interp(cx, canon[lower, 0][lu], canon[lower, 1][lu]) - up
    y0 = float(canon[upper, 1].min()) - 0.05
    hc = int(np.ceil((float(canon[lower, 1].max()) + 0.05 - y0) * scale)) + 1
    local = np.vectorize(_LOCAL.__getitem__)(triangles)
    corners = (canon[local] - np.array([ox, y0])) * scale
    where = np.full((hc, wa, 2), np.nan, np.float32)
    Rasterizer().draw(corners, np.zeros(triangles.shape), src.pixels[local], where)
    alpha = np.isfinite(where[..., 0]).astype(np.float32)
    _grow(where, 1)  # a 50 % ring: bilinear taps at the polygon's edge read the image's pixels
    alpha = np.where(np.isfinite(where[..., 0]) & (alpha == 0), 0.5, alpha)
    # only where the mouth is really open (> ~2 px and a clear gap between the lips): a
    # nearly closed mouth's sliver is lip and shadow, not interior
    alpha *= (_smoothstep(1.5, 3.0, profile * (scale / 2.0)) * _smoothstep(0.5, 1.0, profile / OWN_MIN_OPENING))[None, :]
    canvas = np.zeros((hc, wa, 4), np.float32)
    ok = alpha > 0
    canvas[ok, :3] = sample_bilinear(src.image, where[ok][:, 0], where[ok][:, 1])
    if src.colour_gain is not None:
        canvas[..., :3] = np.clip(canvas[..., :3] * src.colour_gain, 0.0, 255.0)
    canvas[..., :3] *= alpha[..., None]  # premultiplied, so bilinear taps at the edge stay true
    canvas[..., 3] = alpha
    return canvas, y0, up, profile


def _over_interior(rgb: np.ndarray, src: MouthInterior, canvas, y0: float, up, profile, gv: np.ndarray, o: float, scale: float) -> np.ndarray:
    """One tile (opening ``o``) with the interior drawn over the synthetic one."""
    o_src = src.opening
    shape = np.clip(profile / o_src, 0.3, None)[None, :]
    d = o * shape  # this tile's lip gap per column, canonical
    s = gv * d  # distance below the upper lip
    if src.anchored:
        D = o_src * shape
        a = 0.5 * np.minimum(d, D)
        # top part from the upper lip down, bottom part from the lower lip up; the middle of a
        # gap wider than the crop's is the synthetic cavity (NaN: not read; stretching the
        # crop's middle row would draw streaks where it shows teeth)
        ref = np.where(s <= a, s, np.where(s >= d - a, D - (d - s), np.nan))
    else:
        ref = s
    yy = (up[None, :] + ref - y0) * scale
    wa = rgb.shape[1]
    xx = np.broadcast_to(np.arange(wa, dtype=np.float64)[None, :], yy.shape)
    inside = np.isfinite(yy) & (yy >= -0.5) & (yy <= canvas.shape[0] - 0.5)
    got = sample_bilinear(canvas, xx, np.nan_to_num(yy, nan=-1.0))
    a = np.where(inside, got[..., 3], 0.0)[..., None]
    return got[..., :3] / np.maximum(got[..., 3:], 1e-6) * a + rgb * (1.0 - a)


def _lip_colour_around(image: np.ndarray, pixels: np.ndarray) -> np.ndarray | None:
    """Median colour of the lips around an inner-lip polygon (a band grown out of it)."""
    h, w = image.shape[:2]
    c = pixels.mean(axis=0)
    grown = c + 1.5 * (pixels - c)
    band = polygon_mask((h, w), grown) & ~polygon_mask((h, w), pixels)
    if np.count_nonzero(band) < 8:
        return None
    return np.median(image[band].reshape(-1, 3).astype(np.float32), axis=0)


def mouth_interior_from_crop(image: np.ndarray, pixels: np.ndarray, canonical: np.ndarray, lip: np.ndarray) -> MouthInterior:
    """A sender's open-mouth crop as an interior source, its colours matched to ``lip`` (the
    reference's lip colour: the crop was lit and white-balanced at another moment)."""
    own = _lip_colour_around(image, pixels)
    gain = None if own is None else np.clip(lip / np.maximum(own, 1.0), 0.75, 1.33).astype(np.float32)
    return MouthInterior(image, np.asarray(pixels, np.float64), np.asarray(canonical, np.float64), anchored=True, colour_gain=gain)


def mouth_colours(image: np.ndarray, landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Lip, skin and teeth colours of a reference."""
    h, w = image.shape[:2]
    lm2 = landmarks[:, :2]
    lips = polygon_mask((h, w), lm2[list(LIPS_OUTER)]) & ~polygon_mask((h, w), lm2[list(LIPS_INNER)])
    lip = _median_colour(image, lips, (150.0, 80.0, 80.0))
    skin = _median_colour(image, polygon_mask((h, w), lm2[list(FACE_OVAL)]), (180.0, 140.0, 120.0))
    interior = polygon_mask((h, w), lm2[list(LIPS_INNER)])
    return lip, skin, _teeth_colour(image, interior, lip, skin)


def mouth_atlas(
    image: np.ndarray,
    landmarks: np.ndarray,
    canon: np.ndarray,
    scale: float,
    triangles: np.ndarray,
    *,
    extra: MouthInterior | None = None,
    openings: tuple[float, ...] | None = None,
) -> MouthAtlas:
    """The mouth-interior texture of a reference (see the module docstring).

    ``canon`` is the reference face in canonical coordinates (468, 3); ``scale`` the
    reference's pixels per canonical unit; ``triangles`` (M, 3) the mouth-interior triangles.
    ``extra``: a better interior (a region reference of the sender's open mouth), drawn over
    the synthetic one and the reference's own.  ``openings``: the tiles to make (default: as
    the reference needs); pass an atlas' own to rebuild it at the same size.
    """
    h, w = image.shape[:2]
    scale = 2.0 * float(np.clip(scale, 4.0, 1000.0))  # atlas columns per canonical unit
    lm2 = landmarks[:, :2]
    lip, skin, teeth = mouth_colours(image, landmarks)
    interior = polygon_mask((h, w), lm2[list(LIPS_INNER)])

    left, right = float(canon[78, 0]), float(canon[308, 0])
    centre = 0.5 * (left + right)
    half_w = max(0.5 * (right - left), 0.08)
    ox = centre - MOUTH_HALF_WIDTH
    wa = int(np.ceil(2 * MOUTH_HALF_WIDTH * scale)) + 1
    rows = _TILE_SPAN + 2 * _TILE_MARGIN + 1
    cx = ox + np.arange(wa, dtype=np.float64) / scale
    cv = (np.arange(rows, dtype=np.float64) - _TILE_MARGIN) / _TILE_SPAN
    gx, gv = np.meshgrid(cx, cv)
    u = (gx - centre) / half_w

    # where the reference shows its own interior, use it, head-fixed like the synthetic upper
    # teeth: its mouth triangles rasterised into canonical (x, y) with their image positions as
    # attributes, then each tile reads that at y = upper lip + v * (the tile's opening, shaped
    # like the reference's own opening), so the reference's teeth keep their size and place
    # and a wider opening uncovers synthetic cavity below them
    sources: list[MouthInterior] = []
    o_ref = float(canon[14, 1] - canon[13, 1])
    own = bool(len(triangles)) and o_ref >= OWN_MIN_OPENING and _shows_interior(image, interior, lip)
    if own and extra is None:  # a crop of the open mouth shows all the reference's does, and more
        sources.append(MouthInterior(image, lm2[list(LIPS_INNER)], canon[list(LIPS_INNER), :2]))
    if extra is not None and len(triangles):
        sources.append(extra)
    if openings is None:
        openings = tuple(sorted(set(MOUTH_OPENINGS) | ({o_ref} if own else set())))
    canvases = [(src, *_interior_canvas(src, ox, wa, scale, triangles)) for src in sources]
    tiles = []
    for o in openings:
        rgb = _mouth_tile(u, gv, o, lip, teeth)
        for src, canvas, y0, up, profile in canvases:
            rgb = _over_interior(rgb, src, canvas, y0, up, profile, gv, o, scale)
        tiles.append(rgb)
    atlas = np.ascontiguousarray(np.concatenate(tiles, axis=0), dtype=np.float32)
    return MouthAtlas(atlas, float(ox), scale, tuple(openings), rows)


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
