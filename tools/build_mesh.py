#!/usr/bin/env python3
"""Compute the generator's triangle mesh (``sdk/facelink/generator/data/mesh.npz``).

    python tools/build_mesh.py [--out sdk/facelink/generator/data/mesh.npz] [--png mesh.png]

The mesh is FaceLink's own data, computed from the committed canonical mean face
(``facelink.keypoints.default_basis().mean``):

1. Virtual ring points around the face oval, in canonical coordinates (inter-ocular distance 1):
   ring 1 moves rigidly with the head (hair above, ears and hair at the sides; below the chin
   a neck that follows the head only half way), rings 2 and 3 fade the motion out linearly, ring 4 is
   static.  Each ring point carries a *rigidity* in [0, 1]: its driving position is
   ``rigidity * (rigid head motion) + (1 - rigidity) * (reference position)``.
2. Derived points: a "lash line" just above each upper-lid landmark, a fixed fraction of the
   way to the lid crease above it (``(1 - w) L[a] + w L[b]``).  When a driving eye shuts, the
   generator pulls them onto the lid margin, so the reference's lashes stay a thin line and the
   lid skin above them is what stretches over the eye.
3. Triangles: a Delaunay triangulation (scipy) of the frontal (x, y) of the landmarks and
   derived points inside the face outline, cut to the outline (so the outline is exactly the
   seam between face and head band), and the bands between outline and rings stitched by angle.  The triangulation is taken on a copy of the mean face whose mouth and eyes are
   opened (expression mode 0 and a vertical stretch of the eye contours) so that the inner-lip
   and eye contours come out as mesh edges; the script checks that every contour edge is there.
4. Labels per triangle: face skin, mouth interior (inside the inner-lip contour), right and left
   eye interior (inside the eye contours), ring band.

Arrays written (all small):
``triangles`` (T, 3) int32 vertex indices (0..467 landmarks, then D derived points, then the
ring points); ``derived`` (D, 2) int32 landmark pairs (a, b), ``derived_weight`` (D,) float32 w,
``derived_eye`` (D,) uint8 (0 = right eye, 1 = left eye);
``labels`` (T,) uint8 (see ``facelink.generator._mesh``);
``ring_points`` (R, 3) float32 canonical coordinates; ``ring_rigidity`` (R,) float32;
``ring_level`` (R,) uint8 (1 = rigid ring .. 4 = static ring);
``source_hash`` the SHA-256 of the mean face it was computed from (hex, for a staleness check).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from scipy.spatial import Delaunay

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "sdk"))

from facelink.generator._mesh import (  # noqa: E402
    FACE_OVAL,
    LABEL_EYE_LEFT,
    LABEL_EYE_RIGHT,
    LABEL_FACE,
    LABEL_MOUTH,
    LABEL_RING,
    LASH_FRACTION,
    LEFT_EYE,
    LEFT_LIDS,
    LIPS_INNER,
    RIGHT_EYE,
    RIGHT_LIDS,
    mean_face_hash,
)
from facelink.keypoints import default_basis  # noqa: E402

#: ring 1 (rigid) radius as a multiple of the face-oval radius, by direction
#: (angle in degrees, 0 = image right, 90 = down (chin), 270 = up (forehead)); interpolated
RING1_SCALE = [(0, 1.30), (45, 1.22), (75, 1.30), (90, 1.36), (105, 1.30), (135, 1.22), (180, 1.30),
               (225, 1.45), (270, 1.50), (315, 1.45), (360, 1.30)]
#: ring 4 (static) radius relative to the face-oval radius
RING4_SCALE = [(0, 1.6), (90, 1.45), (180, 1.6), (270, 1.7), (360, 1.6)]
#: how much of the head motion ring 1 follows: the neck (below the chin) only part of it
RING1_RIGIDITY = [(0, 1.0), (50, 1.0), (70, 0.55), (110, 0.55), (130, 1.0), (360, 1.0)]
#: rings between ring 1 and ring 4: (fraction of the way out, fraction of ring-1 rigidity).
#: Linear, so the band only folds when the head moves by more than the band's width
EASE_RINGS = [(1 / 3, 2 / 3), (2 / 3, 1 / 3)]
#: canonical depth of the ring points: about the depth of the head's silhouette (the ears)
RING_Z = 0.6
N_RING = 40


def _interp_deg(table: list[tuple[float, float]], deg: np.ndarray) -> np.ndarray:
    a = np.array([t[0] for t in table], float)
    v = np.array([t[1] for t in table], float)
    return np.interp(np.mod(deg, 360.0), a, v)


def oval_radius(mean: np.ndarray, centre: np.ndarray, ang: np.ndarray) -> np.ndarray:
    """Radius of the (closed) face-oval polygon seen from ``centre`` in direction ``ang`` (radians)."""
    p = mean[FACE_OVAL, :2] - centre
    th = np.arctan2(p[:, 1], p[:, 0])
    r = np.hypot(p[:, 0], p[:, 1])
    order = np.argsort(th)
    th, r = th[order], r[order]
    th = np.concatenate([th[-1:] - 2 * np.pi, th, th[:1] + 2 * np.pi])
    r = np.concatenate([r[-1:], r, r[:1]])
    a = np.mod(ang + np.pi, 2 * np.pi) - np.pi
    return np.interp(a, th, r)


def ring_points(mean: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    centre = mean[FACE_OVAL, :2].mean(axis=0)
    ang = np.linspace(0.0, 2 * np.pi, N_RING, endpoint=False) + np.pi / N_RING
    deg = np.degrees(ang)
    r0 = oval_radius(mean, centre, ang)
    s1 = _interp_deg(RING1_SCALE, deg)
    s4 = _interp_deg(RING4_SCALE, deg)
    w1 = _interp_deg(RING1_RIGIDITY, deg)
    rings = [(s1, w1, 1)]
    for i, (f, wf) in enumerate(EASE_RINGS):
        rings.append((s1 + f * (s4 - s1), w1 * wf, 2 + i))
    rings.append((s4, np.zeros_like(w1), 2 + len(EASE_RINGS)))
    pts, rig, lev = [], [], []
    direction = np.stack([np.cos(ang), np.sin(ang)], axis=1)
    for scale, w, level in rings:
        xy = centre + direction * (r0 * scale)[:, None]
        pts.append(np.concatenate([xy, np.full((N_RING, 1), RING_Z)], axis=1))
        rig.append(w)
        lev.append(np.full(N_RING, level))
    return np.concatenate(pts), np.concatenate(rig), np.concatenate(lev)


def derived_points() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    pairs, weight, eye = [], [], []
    for side, (upper, crease, _) in enumerate((RIGHT_LIDS, LEFT_LIDS)):
        for a, b in zip(upper, crease):
            pairs.append((a, b))
            weight.append(LASH_FRACTION)
            eye.append(side)
    return np.array(pairs, np.int32), np.array(weight, np.float32), np.array(eye, np.uint8)


def opened_face(basis) -> np.ndarray:
    """The mean face with the mouth opened (mode 0) and the eyes stretched vertically."""
    shape = basis.mean + 4.0 * basis.std[0] * basis.modes[0]
    shape = shape.copy()
    for eye in (RIGHT_EYE, LEFT_EYE):
        c = shape[eye, :2].mean(axis=0)
        # stretch everything near the eye vertically about the eye's centre line, fading out
        d = shape[:, :2] - c
        dist = np.hypot(d[:, 0] / 0.25, d[:, 1] / 0.2)
        gain = 1.0 + 0.8 * np.clip(1.0 - dist, 0.0, 1.0) ** 2
        shape[:, 1] = c[1] + d[:, 1] * gain
    return shape


def contour_edges(contour: list[int]) -> list[tuple[int, int]]:
    return [(contour[i], contour[(i + 1) % len(contour)]) for i in range(len(contour))]


def inside(poly: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Even-odd point-in-polygon for many points."""
    x, y = pts[:, 0][:, None], pts[:, 1][:, None]
    x0, y0 = poly[:, 0][None], poly[:, 1][None]
    x1, y1 = np.roll(poly[:, 0], -1)[None], np.roll(poly[:, 1], -1)[None]
    cross = ((y0 > y) != (y1 > y)) & (x < (x1 - x0) * (y - y0) / np.where(y1 == y0, 1e-12, y1 - y0) + x0)
    return np.count_nonzero(cross, axis=1) % 2 == 1


def stitch(inner: np.ndarray, outer: np.ndarray, pts: np.ndarray, centre: np.ndarray) -> list[tuple[int, int, int]]:
    """Triangulate the band between two closed polylines around ``centre`` (vertex indices).

    Both are walked once around by angle; each step advances whichever side lags behind.
    """

    def by_angle(idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        d = pts[idx] - centre
        a = np.mod(np.arctan2(d[:, 1], d[:, 0]), 2 * np.pi)
        o = np.argsort(a)
        return idx[o], a[o]

    a_idx, a_ang = by_angle(np.asarray(inner))
    b_idx, b_ang = by_angle(np.asarray(outer))
    n, m = len(a_idx), len(b_idx)
    # unwrap: a full turn of both, starting where both sequences start (angle >= 0)
    a_ang = np.concatenate([a_ang, a_ang[:1] + 2 * np.pi])
    b_ang = np.concatenate([b_ang, b_ang[:1] + 2 * np.pi])
    tris = []
    i = j = 0
    while i < n or j < m:
        if j >= m or (i < n and a_ang[i + 1] <= b_ang[j + 1]):
            tris.append((a_idx[i % n], b_idx[j % m], a_idx[(i + 1) % n]))
            i += 1
        else:
            tris.append((a_idx[i % n], b_idx[j % m], b_idx[(j + 1) % m]))
            j += 1
    return tris


def build() -> dict[str, np.ndarray]:
    basis = default_basis()
    mean = basis.mean
    ring, rigidity, level = ring_points(mean)
    opened = opened_face(basis)
    pairs, weight, eye = derived_points()
    derived = (1 - weight[:, None]) * opened[pairs[:, 0], :2] + weight[:, None] * opened[pairs[:, 1], :2]
    n_face = 468 + len(pairs)
    pts2 = np.concatenate([opened[:, :2], derived, ring[:, :2]])

    # the face: Delaunay of the landmarks (and derived points) inside the outline, cut to it;
    # landmarks that fall outside the frontal outline (5 cheek-edge points) are left out
    oval_poly = opened[list(FACE_OVAL), :2]
    face_pts = np.arange(n_face)
    face_pts = face_pts[inside(oval_poly, pts2[face_pts]) | np.isin(face_pts, FACE_OVAL)]
    tri = face_pts[Delaunay(pts2[face_pts]).simplices]
    tri = tri[inside(oval_poly, pts2[tri].mean(axis=1))]
    # the head band: the outline stitched to ring 1, then ring to ring
    centre = oval_poly.mean(axis=0)
    bands = stitch(np.array(FACE_OVAL), n_face + np.flatnonzero(level == 1), pts2, centre)
    for lv in range(1, int(level.max())):
        bands += stitch(n_face + np.flatnonzero(level == lv), n_face + np.flatnonzero(level == lv + 1), pts2, centre)
    tri = np.concatenate([tri, np.array(bands)]).astype(np.int32)
    # orient every triangle the same way in image axes (y down)
    a, b, c = pts2[tri[:, 0]], pts2[tri[:, 1]], pts2[tri[:, 2]]
    area = (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0])
    tri[area < 0] = tri[area < 0][:, [0, 2, 1]]

    edges = {tuple(sorted(e)) for t in tri for e in ((t[0], t[1]), (t[1], t[2]), (t[2], t[0]))}
    missing = []
    for name, contour in (("outline", FACE_OVAL), ("inner lips", LIPS_INNER), ("right eye", RIGHT_EYE), ("left eye", LEFT_EYE)):
        for e in contour_edges(list(contour)):
            if tuple(sorted(e)) not in edges:
                missing.append((name, e))
    if missing:
        raise SystemExit(f"contour edges missing from the triangulation: {missing}")
    # the triangles must tile the region out to the static ring exactly once
    outer = pts2[n_face + np.flatnonzero(level == level.max())]
    d = outer - centre
    outer = outer[np.argsort(np.arctan2(d[:, 1], d[:, 0]))]
    hull = 0.5 * abs(np.sum(outer[:, 0] * np.roll(outer[:, 1], -1) - np.roll(outer[:, 0], -1) * outer[:, 1]))
    if abs(0.5 * np.abs(area).sum() - hull) > 1e-6 * hull:
        raise SystemExit(f"triangles cover {0.5 * np.abs(area).sum():.6f}, the static ring encloses {hull:.6f}")

    cent = pts2[tri].mean(axis=1)
    labels = np.full(len(tri), LABEL_FACE, np.uint8)
    labels[np.any(tri >= n_face, axis=1)] = LABEL_RING
    for lab, contour in ((LABEL_MOUTH, LIPS_INNER), (LABEL_EYE_RIGHT, RIGHT_EYE), (LABEL_EYE_LEFT, LEFT_EYE)):
        m = inside(opened[list(contour), :2], cent) & np.all(np.isin(tri, contour), axis=1)
        labels[m] = lab
    return {
        "triangles": tri,
        "labels": labels,
        "derived": pairs,
        "derived_weight": weight,
        "derived_eye": eye,
        "ring_points": ring.astype(np.float32),
        "ring_rigidity": rigidity.astype(np.float32),
        "ring_level": level.astype(np.uint8),
        "source_hash": np.array(mean_face_hash(mean)),
        "_pts2": pts2,
    }


def draw(mesh: dict[str, np.ndarray], path: Path) -> None:
    from PIL import Image, ImageDraw

    pts = mesh["_pts2"]
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    size = 900
    k = (size - 20) / float(np.max(hi - lo))
    img = Image.new("RGB", (size, size), "white")
    d = ImageDraw.Draw(img)
    colours = {LABEL_FACE: (200, 170, 150), LABEL_MOUTH: (150, 20, 20), LABEL_EYE_RIGHT: (20, 20, 160),
               LABEL_EYE_LEFT: (20, 120, 160), LABEL_RING: (200, 220, 200)}
    for t, lab in zip(mesh["triangles"], mesh["labels"]):
        xy = [tuple((pts[i] - lo) * k + 10) for i in t]
        d.polygon(xy, fill=colours[int(lab)], outline=(60, 60, 60))
    img.save(path)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=ROOT / "sdk/facelink/generator/data/mesh.npz")
    ap.add_argument("--png", type=Path, default=None, help="also draw the mesh into this PNG")
    args = ap.parse_args(argv)
    mesh = build()
    if args.png:
        draw(mesh, args.png)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, **{k: v for k, v in mesh.items() if not k.startswith("_")})
    counts = {int(v): int(n) for v, n in zip(*np.unique(mesh["labels"], return_counts=True))}
    print(f"wrote {args.out}: {len(mesh['triangles'])} triangles, {len(mesh['derived'])} derived and "
          f"{len(mesh['ring_points'])} ring points, "
          f"labels {counts}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
