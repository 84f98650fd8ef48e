"""Background plate: what lies behind the head, so a turned or re-posed head never shows a ghost.

Computed once per reference, inside the generator's source region:

* **Person alpha** (what moves with the head).  The mesh's ring levels give each pixel its
  distance from the face in ring units (0 inside the face outline, 1 … 4 at the rings; the
  static ring, 4, never moves).

  *Segmentation network* (``person`` given: MediaPipe's selfie-segmentation model, run by
  ``_segment.py``).  The network's person probability, soft-thresholded (0.25 … 0.75), is the
  alpha of hair, ears, neck and shoulders; the face itself (ring level <= 0.3) is always
  person.  The mask is grown by 3 % of the face size with a soft outer edge, so the hair
  fringe just outside the network's mask travels with the head (the matting equation below
  unmixes its colours from the plate) instead of staying behind.  The ring rules stay: above
  the chin line the alpha fades out between ring levels 3.2 and 4 (nothing beyond the moving
  bands lifts off the plate: hair beyond the static ring stays where it is, and hair crossing
  it stretches to it rather than being cut at 3.8 as in the fallback); below the chin
  line the person (neck, torso) keeps its alpha out to the static ring and follows the neck
  band's fading motion.
  *Colour fallback* (no ``person``: the model is not cached, ``segmentation="off"``, or the
  network's mean probability on the face is below 0.5 — a painting, a cartoon, a statue).  Up
  to level 1 (the face and the band to the rigid ring: hair, ears) the alpha is 1, as that
  band always moved rigidly; beyond, up to the static ring, a pixel is classified by colour —
  nearest of a few hundred *person* samples (face, and the band just outside the outline)
  against *background* samples (the outer bands and beyond, above the chin line, where the
  torso cannot be) — and faded out between ring levels 3 and 3.8.  Below the chin line the
  alpha is 1 out to the static ring.  With no background sample in the region (a face filling
  the frame), nothing is segmented: the alpha is 1 inside the static ring and the plate is the
  reference itself (the background is the whole frame).
* **Plate**: the reference with every pixel of alpha > 0 filled by push-pull inpainting (a
  mask-weighted image pyramid, filled coarse to fine and relaxed at every level by a few
  Jacobi steps of the membrane equation — a multigrid harmonic fill that meets the background
  around the hole without a seam — then smoothed by a few diffusion steps) from *background
  pixels only*: pixels of alpha 0 that lie more than the growth radius from any pixel the
  network calls person (the hair and shoulders beyond the rings included; alpha > 0 already
  reaches about twice the radius beyond its mask), or, in the colour fallback, more than twice
  the radius from any pixel of alpha > 0.  So the fill is a smooth continuation of the
  background around the person, never a face- or hair-coloured blob.  Pixels of alpha 0 keep
  the reference.
* **Foreground**: the colours the head layer carries, solved from the matting equation
  ``reference = alpha * F + (1 - alpha) * plate``, so the unmoved composite is the reference
  again (up to rounding) even along soft edges.

Per frame the generator samples ``(F, alpha)`` with its one bilinear sample and blends the
result over the plate (``plate + alpha * (F - plate)``: a per-pixel mask blend, rank 4).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

__all__ = ["Plate", "build_plate", "inpaint"]

#: ring levels over which the person alpha fades out (the rigid bands end at 3, the static ring is 4)
FADE_LEVELS = (3.0, 3.8)
#: with the segmentation network (no background in its alpha) the fade reaches the static ring,
#: where the head layer stops moving, so hair crossing it stretches instead of being cut
NETWORK_FADE_LEVELS = (3.2, 4.0)
#: up to this ring level (0 the face outline, 1 the rigid ring) everything is head: hair and ears
#: (0.8 scored +0.006 median SSIM better in self-reenactment, but cut hair the colour of the
#: background off the head at +-30 degrees)
_HEAD_LEVEL = 1.0
#: colour samples per class, and the working resolution (longest side) of the classification
_SAMPLES = 256
_WORK_SIDE = 192
#: diffusion steps smoothing the push-pull fill, and Jacobi steps at every pyramid level
_DIFFUSE = 12
_RELAX = 8
#: with the segmentation network: up to this ring level the pixel is always head (it absorbs the
#: face outline's landmark slop), and a face on which the network's mean person probability is
#: below ``_MIN_FACE_PERSON`` means it found no person (colour fallback)
_FACE_LEVEL = 0.3
_MIN_FACE_PERSON = 0.5
#: the network's mask grows by this fraction of the face size (soft outer edge), and person
#: pixels (probability above ``_SOURCE_PERSON``), grown by as much, never feed the fill
_GROW = 0.03
_SOURCE_PERSON = 0.1


@dataclass(frozen=True)
class Plate:
    """Per-reference layers over the source region (all (h, w, …) float32, region pixels).

    ``alpha`` the person (head layer) alpha in [0, 1]; ``plate`` the background with the head
    inpainted; ``foreground`` the head layer's colours; ``by_model`` whether the alpha comes from
    the segmentation network (else the colour fallback); ``segmented`` whether any background
    was found (False: the plate is the reference, the alpha 1 inside the static ring).
    """

    alpha: np.ndarray
    plate: np.ndarray
    foreground: np.ndarray
    segmented: bool
    by_model: bool = False


def _down2(a: np.ndarray) -> np.ndarray:
    h, w = a.shape[:2]
    a = np.pad(a, ((0, h % 2), (0, w % 2)) + ((0, 0),) * (a.ndim - 2), mode="edge")
    return 0.25 * (a[0::2, 0::2] + a[1::2, 0::2] + a[0::2, 1::2] + a[1::2, 1::2])


def _up2(a: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    img = np.repeat(np.repeat(a, 2, axis=0), 2, axis=1)[: shape[0], : shape[1]]
    # a 3-tap smoothing of the nearest-neighbour doubling (cheap bilinear), edges replicated
    # (not wrapped: the top of a hole must not take the colours of the image's bottom)
    return _smooth3(img)


def _smooth3(img: np.ndarray) -> np.ndarray:
    for axis in (0, 1):
        pad = [(1, 1) if ax == axis else (0, 0) for ax in range(img.ndim)]
        p = np.pad(img, pad, mode="edge")
        n = img.shape[axis]
        img = 0.25 * np.take(p, range(0, n), axis=axis) + 0.5 * img + 0.25 * np.take(p, range(2, n + 2), axis=axis)
    return img


def _neighbours(img: np.ndarray) -> np.ndarray:
    """Mean of the 4 neighbours of every pixel (edges replicated)."""
    p = np.pad(img, ((1, 1), (1, 1), (0, 0)), mode="edge")
    return 0.25 * (p[:-2, 1:-1] + p[2:, 1:-1] + p[1:-1, :-2] + p[1:-1, 2:])


def inpaint(image: np.ndarray, known: np.ndarray) -> np.ndarray:
    """Fill the unknown pixels of an (H, W, C) float image from the known ones (push-pull).

    ``known`` (H, W) bool.  Known pixels are returned unchanged.  Raises ``ValueError`` when no
    pixel is known or the shapes disagree.
    """
    img = np.asarray(image, np.float32)
    k = np.asarray(known, bool)
    if img.ndim != 3 or k.shape != img.shape[:2]:
        raise ValueError(f"image must be (H, W, C) and known (H, W); got {img.shape} and {k.shape}")
    if not k.any():
        raise ValueError("inpaint needs at least one known pixel")
    w = k.astype(np.float32)[..., None]
    levels = [(img * w, w)]
    while min(levels[-1][1].shape[:2]) > 1:
        c, wt = levels[-1]
        levels.append((_down2(c), _down2(wt)))
    # pull: coarse to fine; at each level the weighted mean where known, the coarser fill elsewhere,
    # relaxed by a few Jacobi steps of the membrane equation (the unknown part becomes a smooth
    # interpolation of its boundary, level by level: a multigrid harmonic fill, so the fill meets
    # the background around a hole without a seam instead of taking one blurred average colour)
    c, wt = levels[-1]
    fill = c / np.maximum(wt, 1e-8)
    for c, wt in reversed(levels[:-1]):
        up = _up2(fill, c.shape[:2])
        mean = c / np.maximum(wt, 1e-8)
        a = np.clip(wt * 4.0, 0.0, 1.0)  # fully trusted once a quarter of the footprint is known
        fill = a * mean + (1.0 - a) * up
        if (1.0 - a).max() > 0.0:
            for _ in range(_RELAX):
                fill = a * mean + (1.0 - a) * _neighbours(fill)
    out = np.where(k[..., None], img, fill)
    hole = ~k
    for _ in range(_DIFFUSE):
        out[hole] = _neighbours(out)[hole]
    return out


def _smoothstep(e0: float, e1: float, x: np.ndarray) -> np.ndarray:
    t = np.clip((x - e0) / (e1 - e0), 0.0, 1.0)
    return t * t * (3 - 2 * t)


def _resize(a: np.ndarray, size: tuple[int, int], resample: int) -> np.ndarray:
    """Resize a float (h, w) or (h, w, c) array to ``size`` = (width, height)."""
    if a.ndim == 2:
        return np.asarray(Image.fromarray(a.astype(np.float32), mode="F").resize(size, resample))
    return np.stack([_resize(a[..., i], size, resample) for i in range(a.shape[2])], axis=-1)


def _nearest_distance(pixels: np.ndarray, samples: np.ndarray) -> np.ndarray:
    """Colour distance of each pixel (N, 3) to its nearest sample (S, 3), in chunks."""
    out = np.empty(len(pixels), np.float32)
    for i in range(0, len(pixels), 4096):
        d = pixels[i : i + 4096, None, :] - samples[None, :, :]
        out[i : i + 4096] = np.sqrt(np.min(np.einsum("nsc,nsc->ns", d, d), axis=1))
    return out


def _dilate(mask: np.ndarray, r: int) -> np.ndarray:
    """Binary dilation of an (h, w) bool mask by a (2r+1)-square (separable sliding max)."""
    out = mask.copy()
    for axis in (0, 1):
        src, acc = out, out.copy()
        for k in range(1, r + 1):
            fwd = np.zeros_like(src)
            bwd = np.zeros_like(src)
            if axis == 0:
                fwd[k:], bwd[:-k] = src[:-k], src[k:]
            else:
                fwd[:, k:], bwd[:, :-k] = src[:, :-k], src[:, k:]
            acc |= fwd | bwd
        out = acc
    return out


def _box_blur(a: np.ndarray, r: int) -> np.ndarray:
    """(2r+1)-box blur of an (h, w) float map, edges replicated."""
    for axis in (0, 1):
        p = np.pad(a, [(r, r) if ax == axis else (0, 0) for ax in (0, 1)], mode="edge")
        c = np.cumsum(np.insert(p, 0, 0.0, axis=axis), axis=axis, dtype=np.float64)
        n = a.shape[axis]
        hi = np.take(c, np.arange(2 * r + 1, n + 2 * r + 1), axis=axis)
        lo = np.take(c, np.arange(0, n), axis=axis)
        a = ((hi - lo) / (2 * r + 1)).astype(np.float32)
    return a


def _model_alpha(person: np.ndarray, lev: np.ndarray) -> np.ndarray | None:
    """Head-layer alpha from the segmentation network's person probability, before the ring rules.

    The face itself (ring level <= ``_FACE_LEVEL``) is always person; elsewhere the probability
    is soft-thresholded and grown by ``_GROW`` of the face size with a soft outer edge, so the
    hair fringe the network leaves just outside its mask travels with the head (its colours are
    unmixed from the plate by the matting equation) instead of staying behind as a ghost.
    Returns None when the network finds no person on the face (a painting, a cartoon).
    """
    face = lev <= 0.0
    if face.sum() < 8 or float(np.mean(person[face])) < _MIN_FACE_PERSON:
        return None
    p = _smoothstep(0.25, 0.75, person)
    p = np.maximum(p, (lev <= _FACE_LEVEL).astype(np.float32))
    # grow by about 3 % of the face size (>= 1 px): max filter then a blur of the same radius
    r = _grow_radius(lev)
    grown = np.where(_dilate(p > 0.5, r), 1.0, p).astype(np.float32)
    return np.maximum(p, _box_blur(grown, r))


def build_plate(region: np.ndarray, level: np.ndarray, below_chin: np.ndarray, person: np.ndarray | None = None) -> Plate:
    """Segment the head, inpaint what lies behind it, and solve the head layer's colours.

    ``region`` (h, w, 3) uint8 (the generator's source region of the reference); ``level``
    (h, w) float ring level of each pixel (0 inside the face outline, 1 … 4 at the rings, NaN
    beyond the static ring); ``below_chin`` (h, w) bool, pixels below the chin line (torso
    side: never used as background samples).  ``person`` (h, w) float in [0, 1]: the
    segmentation network's person probability (``_segment.py``), or None for the colour
    fallback (also used when the network finds no person on the face).
    """
    rgb = np.asarray(region)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"region must be an (h, w, 3) uint8 image, got {rgb.shape} {rgb.dtype}")
    h, w = rgb.shape[:2]
    if level.shape != (h, w) or below_chin.shape != (h, w):
        raise ValueError("level and below_chin must have the region's (h, w) shape")
    if person is not None and np.shape(person) != (h, w):
        raise ValueError(f"person must have the region's (h, w) shape {(h, w)}, got {np.shape(person)}")
    img = rgb.astype(np.float32)
    lev = np.where(np.isfinite(level), level, 5.0).astype(np.float32)
    inside = lev < FADE_LEVELS[1]  # where the head layer may be
    model = None if person is None else _model_alpha(np.clip(np.asarray(person, np.float32), 0.0, 1.0), lev)
    r = _grow_radius(lev)
    if model is not None:
        # the ring rules: above the chin line the alpha fades out between ring levels 3.2 and 4
        # (nothing beyond the moving bands lifts off the plate); below it the person is the neck
        # and torso, which follow the neck band's fading motion out to the static ring (no fade)
        fade = 1.0 - _smoothstep(NETWORK_FADE_LEVELS[0], NETWORK_FADE_LEVELS[1], lev)
        alpha = np.where(below_chin, np.where(lev < 4.5, model, 0.0), model * fade)
        alpha = np.where(alpha >= 0.02, alpha, 0.0).astype(np.float32)
        # the fill draws on background only: not on any person pixel (the hair and shoulders
        # beyond the rings included), nor on the fringe just outside them
        person_px = np.asarray(person) > _SOURCE_PERSON
        return _finish(img, alpha, ~_dilate(person_px, r), inside, by_model=True)

    # -- colour fallback ------------------------------------------------------------------
    # colour classification at a small working resolution
    f = min(1.0, _WORK_SIDE / max(h, w))
    ws = (max(2, int(round(w * f))), max(2, int(round(h * f))))
    small = _resize(img, ws, Image.Resampling.BILINEAR)
    slev = _resize(lev, ws, Image.Resampling.NEAREST)
    schin = _resize(below_chin.astype(np.float32), ws, Image.Resampling.NEAREST) > 0.5
    px = small.reshape(-1, 3)
    flat = slev.reshape(-1)
    skin_pool = px[flat <= 0.0]
    near_pool = px[(flat > 0.0) & (flat <= _HEAD_LEVEL)]  # hair, ears, neck just outside the outline
    bg_pool = px[((slev.reshape(-1) >= 3.3) & ~schin.reshape(-1))]
    rng = np.random.default_rng(0)
    segmented = len(bg_pool) >= 8 and len(skin_pool) + len(near_pool) >= 8
    if segmented:
        fg = np.concatenate(
            [pool[rng.choice(len(pool), min(_SAMPLES // 2, len(pool)), replace=False)] for pool in (skin_pool, near_pool) if len(pool)]
        )
        bg = bg_pool[rng.choice(len(bg_pool), min(_SAMPLES, len(bg_pool)), replace=False)]
        band = (slev > _HEAD_LEVEL) & (slev < FADE_LEVELS[1])
        p = np.ones(slev.shape, np.float32)
        cand = px[band.reshape(-1)]
        d_fg = _nearest_distance(cand, fg)
        d_bg = _nearest_distance(cand, bg)
        p[band] = d_bg / np.maximum(d_bg + d_fg, 1e-3)
        p[slev >= FADE_LEVELS[1]] = 0.0
        # a little spatial smoothing (3x3 box, twice), then a soft threshold
        for _ in range(2):
            q = np.pad(p, 1, mode="edge")
            p = sum(q[i : i + p.shape[0], j : j + p.shape[1]] for i in range(3) for j in range(3)) / 9.0
        p = _smoothstep(0.4, 0.7, p)
        alpha = np.clip(_resize(p, (w, h), Image.Resampling.BILINEAR), 0.0, 1.0)
    else:
        alpha = np.ones((h, w), np.float32)
    alpha = np.where(lev <= _HEAD_LEVEL, 1.0, alpha) * (1.0 - _smoothstep(FADE_LEVELS[0], FADE_LEVELS[1], lev))
    alpha = np.where(inside & (alpha >= 0.02), alpha, 0.0)
    # below the chin line the person is the neck and torso, which follow the neck band's fading
    # motion out to the static ring exactly as without a plate: no colour test, no fade
    alpha = np.where(below_chin & (lev < 4.5), 1.0, alpha).astype(np.float32)
    if not segmented:
        return Plate(alpha, img, img.copy(), False)

    return _finish(img, alpha, ~_dilate(alpha > 0, 2 * r), inside)


def _grow_radius(lev: np.ndarray) -> int:
    """``_GROW`` of the face size (square root of the face's pixel count), in pixels, >= 1."""
    return max(1, int(round(_GROW * float(np.sqrt(np.count_nonzero(lev <= 0.0))))))


def _finish(img: np.ndarray, alpha: np.ndarray, sources: np.ndarray, inside: np.ndarray, by_model: bool = False) -> Plate:
    """Inpaint the plate under ``alpha > 0`` from the ``sources`` pixels and solve the head layer.

    The fill draws only on ``sources`` (background pixels away from the person; all pixels of
    alpha 0 when fewer than 8 of them are sources); pixels of alpha 0 keep the reference.
    """
    hole = alpha > 0.0
    known = ~hole
    if not known.any():
        return Plate(np.where(inside, 1.0, 0.0).astype(np.float32), img, img.copy(), False)
    src = sources & known
    if np.count_nonzero(src) < 8:
        src = known
    plate = np.where(hole[..., None], inpaint(img, src), img)
    # matting equation: reference = a F + (1 - a) plate  ->  F; where a is tiny F is irrelevant
    a = alpha[..., None]
    raw = np.where(a > 0.0, (img - (1.0 - a) * plate) / np.maximum(a, 0.02), img)
    fore = np.clip(raw, 0.0, 255.0)
    # where F had to be clipped (a faint alpha over a very different plate), the plate takes the
    # rest, so the composite stays the reference (exactly, unless that too would leave [0, 255])
    fix = (raw != fore) & (a < 1.0)
    plate = np.where(fix, np.clip((img - a * fore) / np.maximum(1.0 - a, 1e-6), 0.0, 255.0), plate)
    return Plate(alpha, plate.astype(np.float32), fore.astype(np.float32), True, by_model)
