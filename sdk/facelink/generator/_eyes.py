"""The eyes: lids that close and an iris that moves inside the eye opening.

Driven by :class:`EyeControls` (per frame, in the target face's own terms), computed by the
receiver from a stream's eye channels (``facelink.receiver``):

* **Lids.** The upper lid is rebuilt on the driving lower lid: ``upper = lower + g * R (upper_ref
  - lower_ref)`` (the reference's lid gap, posed rigidly like the head), with ``g`` from
  :func:`lid_factor`: the measured opening relative to the reference's, with the Iris model's
  floor on a shut eye (it reads ~45 % of the open value) mapped to a fully shut lid.  The crease
  follows the lid margin part of the way, the lash-line points fold onto it (the generator's
  lid triangles then cover the eye with the reference's own lid skin).
* **Gaze.** The eye interior samples an *eyeball atlas*: the reference's eye opening, and around
  it the eyeball the lids hide — each column's sclera colour, and the iris completed to a full
  disc (mirrored from its visible half, else its median colour) — so that sampling it shifted
  by the gaze change moves the iris inside the opening and the lids (skin, in front) occlude it.
  The shift applies to the eye-contour vertices and fades to zero at the two corners, so the
  corners (caruncle, lid angles) stay where they are and the sclera between compresses.

Everything happens in the per-frame vertex and source coordinates: the warp stays one flow
field and one bilinear sample (rank-4, backend-friendly).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._atlas import Atlas, eye_atlas, polygon_mask, sample_bilinear

__all__ = [
    "EyeControls",
    "EyeDriver",
    "eye_axes",
    "eyeball_atlas",
    "LidBand",
    "lid_band",
    "lid_factor",
    "reference_iris",
]

#: Face Mesh eye corners (outer, inner) of the right and the left eye
CORNERS = ((33, 133), (263, 362))
#: gaze weight of eye-contour vertices next to a corner (the corners themselves: 0)
NEAR_CORNER = {7: 0.5, 246: 0.5, 155: 0.6, 173: 0.6, 249: 0.5, 466: 0.5, 382: 0.6, 398: 0.6}
#: how far the crease follows the lid margin down: not at all (the lid unfolds from under it;
#: 30 % changed no benchmark figure)
CREASE_FOLLOW = 0.0
#: below this lid factor the shut upper lid overlaps the lower one by up to SHUT_OVERLAP
#: canonical units (~0.7 px on a 256 px face)
SHUT_OVERLAP_BELOW = 0.1
SHUT_OVERLAP = 0.008
#: below this lid factor the lid unfolds (lid skin replaces the fold, the lashes thin): a blink,
#: not an eye that is merely narrower than the reference's
LID_UNFOLD = 0.5
#: widest opening rendered, relative to the reference's
LID_MAX = 1.6
#: largest iris shift rendered, eye widths (beyond it the iris would leave the eyeball atlas)
GAZE_MAX = 0.22
#: a reference eye narrower than this (lid gap / eye width) has no usable eyeball: no gaze
MIN_OPEN_FOR_GAZE = 0.08


@dataclass(frozen=True, eq=False)
class EyeControls:
    """What the eyes of the rendered face do, per eye (0 = subject's right, 1 = left).

    ``openness``: lid gap relative to the reference image's (1 as in it, 0 shut, > 1 wider);
    ``gaze``: iris shift from where the reference image has it, in eye widths along the head's
    horizontal and downward axes.  (The brows follow the expression basis.)
    """

    openness: np.ndarray
    gaze: np.ndarray

    def __post_init__(self) -> None:
        for name, shape in (("openness", (2,)), ("gaze", (2, 2))):
            v = np.asarray(getattr(self, name), np.float64)
            if v.shape != shape or not np.all(np.isfinite(v)):
                raise ValueError(f"EyeControls.{name} must be {shape} finite values")
            object.__setattr__(self, name, v)

    @classmethod
    def neutral(cls) -> "EyeControls":
        """The reference's own eyes."""
        return cls(np.ones(2), np.zeros((2, 2)))


def lid_factor(openness: float) -> float:
    """Rendered lid gap relative to the reference's, clamped to what the eyeball atlas covers."""
    return min(max(float(openness), 0.0), LID_MAX)


def eye_axes(lm: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """The head's horizontal and downward unit vectors in the image, and the inter-ocular distance."""
    d = lm[263, :2] - lm[33, :2]
    iod = float(np.hypot(*d))
    ex = d / max(iod, 1e-9)
    return ex, np.array([-ex[1], ex[0]]), iod


def reference_iris(
    landmarks: np.ndarray, gaze: np.ndarray, openness: np.ndarray, radius: np.ndarray
) -> list[tuple[float, float, float] | None]:
    """Iris centre and radius (reference pixels) per eye from the reference's gaze (eye widths
    from the eye-corner midpoint), lid opening and iris radii (eye widths; 0 = none)."""
    ex, ey, _ = eye_axes(landmarks)
    v = np.column_stack([np.asarray(gaze, np.float64).reshape(2, 2), np.asarray(openness, np.float64)])
    out: list[tuple[float, float, float] | None] = []
    for e in range(2):
        a, b = CORNERS[e]
        w = float(np.linalg.norm(landmarks[a, :2] - landmarks[b, :2]))
        if not (radius[e] > 0 and v[e, 2] >= MIN_OPEN_FOR_GAZE and w > 2):
            out.append(None)
            continue
        mid = 0.5 * (landmarks[a, :2] + landmarks[b, :2])
        c = mid + w * (v[e, 0] * ex + v[e, 1] * ey)
        out.append((float(c[0]), float(c[1]), float(radius[e] * w)))
    return out


def eyeball_atlas(image: np.ndarray, landmarks: np.ndarray, contour: tuple[int, ...], iris: tuple[float, float, float] | None) -> Atlas:
    """The eye texture of a reference with the hidden eyeball around the opening.

    Without an iris (not found, eye closed, a cartoon) it is the plain :func:`eye_atlas`.
    """
    base = eye_atlas(image, landmarks, contour)
    if iris is None:
        return base
    ha, wa = base.rgb.shape[:2]
    ox, oy = base.origin
    pts = landmarks[list(contour), :2] - np.array([ox, oy])
    inside = polygon_mask((ha, wa), pts)
    cx, cy, r = iris[0] - ox, iris[1] - oy, max(iris[2], 1.0)
    gy, gx = np.mgrid[0:ha, 0:wa].astype(np.float64)
    rho = np.hypot(gx - cx, gy - cy)
    disc = rho <= r
    ref = sample_bilinear(image, gx + ox, gy + oy)
    lum = ref @ np.array([0.299, 0.587, 0.114], np.float32)
    visible_iris = inside & disc
    sclera_px = inside & (rho > 1.25 * r)
    # sclera: per column, the brighter half of the visible non-iris pixels; else the eye's median
    if np.count_nonzero(sclera_px) >= 4:
        bright = sclera_px & (lum >= np.median(lum[sclera_px]))
        sclera_all = np.median(ref[bright], axis=0)
    else:
        sclera_all = np.clip(np.percentile(ref[inside].reshape(-1, 3), 90, axis=0) if inside.any() else np.full(3, 200.0), 0, 255)
    col = np.tile(sclera_all, (wa, 1)).astype(np.float32)
    for x in range(wa):
        m = sclera_px[:, x]
        if np.count_nonzero(m) >= 2:
            col[x] = 0.5 * col[x] + 0.5 * np.median(ref[m, x], axis=0)
    sclera = np.broadcast_to(col[None], (ha, wa, 3)).astype(np.float32)
    # iris: the visible part as it is; the part under the lids mirrored from the other half,
    # else the iris' median colour (darker towards the limbus)
    if np.count_nonzero(visible_iris) >= 3:
        iris_col = np.median(ref[visible_iris], axis=0)
    else:
        iris_col = 0.45 * sclera_all
    my = np.clip(2 * cy - gy, 0, ha - 1)
    mirror_ok = inside[np.round(my).astype(int), gx.astype(int)] & disc
    filled = np.where(mirror_ok[..., None], sample_bilinear(image, gx + ox, my + oy), iris_col * (1.0 - 0.25 * (rho / r) ** 2)[..., None])
    # compose the hidden eyeball: sclera, iris disc over it (soft limbus), the reference inside
    a_disc = np.clip(r + 0.5 - rho, 0.0, 1.0)[..., None]
    hidden = sclera * (1 - a_disc) + filled * a_disc
    out = np.where(inside[..., None], ref, hidden)
    return Atlas(np.ascontiguousarray(out, np.float32), base.origin, base.scale)


#: the Face Mesh points above each eye's crease (the top of the lid band)
LID_RINGS = ((113, 225, 224, 223, 222, 221, 189), (342, 445, 444, 443, 442, 441, 413))


@dataclass(frozen=True, eq=False)
class LidBand:
    """One eye's upper-lid band (lid margin -> lash line -> crease -> the ring above) and its
    lid atlas, in reference pixels (origin ``origin``, scale 1).

    ``triangles``: mesh triangle indices of the band (they always sample the lid atlas, at
    their reference positions); ``band``: the reference's pixels of the band's box (an open
    eye looks exactly as in the reference); ``shut``: the same box as a shut lid; ``weight``:
    how much of ``shut`` a fully shut eye shows (1 from the lid margin up to the crease,
    fading to 0 at the ring, so the lid meets the skin above seamlessly).  Per frame the
    atlas is ``band + closed * weight * (shut - band)``: a blend in place, so a half-shut lid
    is a half-faded one — never a texture dragged through the fold's shadow.
    """

    triangles: np.ndarray
    origin: tuple[float, float]
    band: np.ndarray
    shut: np.ndarray
    weight: np.ndarray

    def atlas(self, closed: float) -> np.ndarray:
        """The lid atlas (H, W, 3) for an eye ``closed`` (0 open .. 1 shut)."""
        return self.band + (float(closed) * self.weight) * (self.shut - self.band)


def _curve(points: np.ndarray, x: np.ndarray) -> np.ndarray:
    order = np.argsort(points[:, 0])
    return np.interp(x, points[order, 0], points[order, 1])


def lid_band(
    image: np.ndarray, ref: np.ndarray, lids: tuple, corners: tuple[int, int], derived_idx: np.ndarray,
    triangles: np.ndarray, labels_ok: np.ndarray, verts_ref: np.ndarray, ring: tuple[int, ...] = (),
) -> LidBand:
    """The lid band of one eye (see :class:`LidBand`).

    An open eye folds its upper lid under the crease, so the reference shows lashes and the
    fold's shadow where a shut eye shows smooth, lit lid skin.  The shut lid is drawn in the
    band's own coordinates: skin (its colour measured below the eye: the lower lid and the top
    of the cheek, lit, no lashes, no brow, mixed half and half with the reference's lid skin above
    the crease: make-up and shadow), a little darker towards a thin lash line that lies along the
    reference's lid margin, where the margin's vertices take it when the lid shuts.  It fades
    out towards the ring and over the outer fifth of the eye at both corners.
    ``ring``: the Face Mesh points above the crease, where the shut lid fades into the skin.
    """
    upper, crease, lower = lids
    members = set(upper) | set(crease) | set(corners) | set(ring) | {int(i) for i in derived_idx}
    in_band = np.all(np.isin(triangles, list(members)), axis=1) & labels_ok
    tris = np.flatnonzero(in_band)
    pts = verts_ref[np.unique(triangles[tris])][:, :2] if len(tris) else verts_ref[list(members)][:, :2]
    x0, y0 = np.floor(pts.min(axis=0)) - 2
    x1, y1 = np.ceil(pts.max(axis=0)) + 3
    bw, bh = int(x1 - x0), int(y1 - y0)
    gy, gx = np.mgrid[0:bh, 0:bw].astype(np.float64)
    band = sample_bilinear(image, gx + x0, gy + y0)
    h, w = image.shape[:2]
    lo = ref[list(lower), :2]
    ew = float(np.linalg.norm(ref[corners[0], :2] - ref[corners[1], :2]))
    under = polygon_mask((h, w), np.concatenate([lo + [0.0, 0.15 * ew], (lo + [0.0, 0.5 * ew])[::-1]]))
    px = image[under].reshape(-1, 3).astype(np.float32)
    dark = np.percentile(band.reshape(-1, 3), 8, axis=0).astype(np.float32)
    # curves across the box: the lid margin, the crease and the ring above it
    xs = gx[0] + x0
    margin = _curve(ref[list(upper) + list(corners), :2], xs)[None, :] - y0
    top = _curve(ref[list(crease), :2], xs)[None, :] - y0
    ring_y = _curve(ref[list(ring), :2], xs)[None, :] - y0 if ring else top - 0.5 * (margin - top)
    # the lid's colour: half the skin under the eye (lit, no lashes), half the reference's own
    # lid skin between crease and ring (make-up, shadow), so the shut lid matches its frame
    above = (gy >= ring_y) & (gy <= top)
    lid_px = band[above].reshape(-1, 3)
    skin = np.median(px, axis=0) if len(px) >= 8 else np.median(band.reshape(-1, 3), axis=0)
    if len(lid_px) >= 8:
        skin = 0.5 * skin + 0.5 * np.median(lid_px, axis=0)
    d = gy - margin  # rows below (+) / above (-) the margin
    shade = (0.9 + 0.1 * np.clip(-d / np.maximum(margin - top, 1.0), 0.0, 1.0))[..., None]
    lash = np.exp(-((d / 0.7) ** 2))[..., None]
    shut = (skin[None, None] * shade) * (1.0 - 0.8 * lash) + dark[None, None] * (0.8 * lash)
    weight = np.clip((gy - ring_y) / np.maximum(top - ring_y, 1.0), 0.0, 1.0)
    # ... and fades out over the outer fifth of the eye's width at both corners
    cx = np.sort(ref[list(corners), 0].astype(np.float64)) - x0
    fade = max(0.2 * (cx[1] - cx[0]), 1.0)
    weight = (weight * np.clip(np.minimum(gx - cx[0], cx[1] - gx) / fade, 0.0, 1.0))[..., None]
    return LidBand(tris, (float(x0), float(y0)), band.astype(np.float32), shut.astype(np.float32), weight.astype(np.float32))


class EyeDriver:
    """Per-reference state for driving the eyes of one generator (see the module docstring).

    ``reference_landmarks`` (468, 3) of the reference image; ``iris``: per eye the reference's
    iris (centre x, y, radius in pixels) or ``None`` where there is none to move.
    """

    def __init__(self, reference_landmarks: np.ndarray, lids: tuple, iris: list[tuple[float, float, float] | None], n_vertices: int) -> None:
        self.ref = reference_landmarks
        self.lids = lids
        self.iris = iris
        ex, ey, _ = eye_axes(reference_landmarks)
        self._axes = np.stack([ex, ey])
        self._width = np.array([np.linalg.norm(reference_landmarks[a, :2] - reference_landmarks[b, :2]) for a, b in CORNERS])
        self.gaze_weight = np.zeros(n_vertices)
        for (upper, _, lower), (a, b) in zip(lids, CORNERS):
            for i in upper + lower:
                self.gaze_weight[i] = NEAR_CORNER.get(i, 1.0)
            self.gaze_weight[a] = self.gaze_weight[b] = 0.0

    def drive(self, drv: np.ndarray, c: EyeControls, s1: float, r1: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Apply the lids to the driving landmarks (in place).  Returns them, how shut
        each eye is (0..1, for the lash lines) and the iris shift per eye in reference pixels."""
        closed = np.zeros(2)
        for e, (upper, crease, lower) in enumerate(self.lids):
            g = lid_factor(c.openness[e])
            gap = s1 * (self.ref[list(upper)] - self.ref[list(lower)]) @ r1.T
            new_upper = drv[list(lower)] + g * gap
            if g < SHUT_OVERLAP_BELOW:  # a shut lid overlaps the lower lid a little: no sclera slivers
                new_upper[:, :2] += (1.0 - g / SHUT_OVERLAP_BELOW) * SHUT_OVERLAP * s1 * eye_axes(drv)[1]
            move = new_upper - drv[list(upper)]
            drv[list(upper)] = new_upper
            drv[list(crease)] += CREASE_FOLLOW * move
            closed[e] = min(max(1.0 - g / LID_UNFOLD, 0.0), 1.0)
        shift = np.zeros((2, 2))
        for e in range(2):
            if self.iris[e] is not None:
                g = np.clip(c.gaze[e], -GAZE_MAX, GAZE_MAX)
                shift[e] = self._width[e] * (g @ self._axes)
        return drv, closed, shift
