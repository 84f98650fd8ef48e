"""Generator v1: a training-free renderer (mesh flow + one bilinear sample).

Per reference (once):
  * rigid pose of the reference: similarity canonical mean face -> reference landmarks;
  * ring points (canonical, from ``mesh.npz``) placed in the reference image by that pose;
  * the source region: the bounding box of the whole mesh (out to the static ring) plus room to
    move, in the frame;
  * the warp source: the region (edge-padded) plus the mouth and eye atlases below it;
  * per-corner source coordinates of every skin and ring triangle (they never change);
  * the background plate (``_plate.py``): the head segmented and inpainted away; the source
    then holds the head layer premultiplied with its alpha, and the warp blends it over the
    plate (with no background found, the source is the plain region and nothing is blended).

Per frame:
  * blink shaping: the upper lids brought down when Face Mesh's eye ratio says "closing";
  * rigid similarity reference -> driving landmarks (rigidity-weighted);
  * vertex positions: landmarks as given (the face outline low-passed along itself), lash-line
    points between lid and crease, ring points by their rigidity between the rigid motion and
    the reference position;
  * per-corner atlas coordinates of the mouth- and eye-interior triangles (rigidly un-posed);
  * the face box: the mesh's bounding box in reference and driving frame, within the region;
  * z-buffered rasterisation of the backward flow over the face box (numpy);
  * one GridSample of the source (ONNX, through :mod:`facelink.backend`), pasted into a copy of
    the reference.
"""

from __future__ import annotations

import numpy as np

from ..keypoints import default_basis, similarity_fit
from ._atlas import Atlas, MouthAtlas, mouth_atlas, mouth_colours, mouth_interior_from_crop, mouth_vertex_v
from ._eyes import LID_RINGS, EyeControls, EyeDriver, eyeball_atlas, lid_band, reference_iris
from ._mesh import (
    FACE_OVAL,
    LABEL_EYE_LEFT,
    LABEL_EYE_RIGHT,
    LABEL_MOUTH,
    LABEL_RING,
    LEFT_CORNERS,
    LEFT_EYE,
    LEFT_LIDS,
    LIPS_INNER,
    N_LANDMARKS,
    RIGHT_CORNERS,
    RIGHT_EYE,
    RIGHT_LIDS,
    load_mesh,
)
from ._plate import Plate, build_plate
from ._segment import segment
from ._raster import Rasterizer
from ._refine import Refiner, refiner_inputs, resolve_refiner
from ._warp import Warp

__all__ = ["Generator"]

#: depth offsets (pixels) that order the mesh's layers: skin in front of the mouth and eye
#: interiors, everything in front of the ring bands, inner ring bands before outer ones
_INTERIOR_OFFSET = 1.0
_RING_OFFSET = 1.0e4
#: the source region (what a face box can grow to) reaches this many inter-ocular distances
#: beyond the static ring, so a head can move about its own radius before it is clipped
_MOVE_MARGIN = 0.6
#: face boxes snap outwards to this grid (pixels), so their size changes less often
_BOX_SNAP = 8
#: blink shaping.  Face Mesh never quite closes its eye contour: on a shut eye its eye aspect
#: ratio (lid gap / eye width) stays around 0.11-0.22, against 0.20-0.40 open, depending on
#: the person.  Relative to the eye's usual open ratio, below ``_EAR_OPEN`` of it the upper lid
#: is brought down towards the lower one and meets it at ``_EAR_SHUT`` of it.  The usual open
#: ratio is the reference's, lowered to what the driving face has shown lately (a maximum
#: decaying by ``_EAR_DECAY`` per frame, held while the ratio is below ``_EAR_HOLD`` of it), so
#: a wide-eyed reference does not make every later frame squint, while a closed eye stays shut.
_EAR_OPEN = 0.85
_EAR_SHUT = 0.6
_EAR_HOLD = 0.66
_EAR_DECAY = 0.985
_EAR_MIN_REFERENCE = 0.16
#: how far the lid crease follows the lash line down when the eye closes
_CREASE_FOLLOW = 0.7
#: on a shut eye the lash-line points keep this fraction of their distance from the lid margin
_LASH_KEEP = 0.25
#: low-pass filter (shift, weight) along the face outline
_OVAL_KERNEL = ((-2, 1 / 9), (-1, 2 / 9), (0, 3 / 9), (1, 2 / 9), (2, 1 / 9))
#: a driving face smaller than this fraction of the reference's is rejected as degenerate
_MIN_SCALE = 1e-3


def _eye_aspect(lm: np.ndarray, lids: tuple[tuple[int, ...], ...], corners: tuple[int, int]) -> float:
    """Eye aspect ratio: mean gap of the three middle lid pairs over the corner distance."""
    upper, _, lower = lids
    gap = np.linalg.norm(lm[list(upper[2:5]), :2] - lm[list(lower[2:5]), :2], axis=1).mean()
    width = np.linalg.norm(lm[corners[0], :2] - lm[corners[1], :2])
    return float(gap / max(width, 1e-6))


def _smooth_outline(points: np.ndarray) -> np.ndarray:
    """Low-pass the face outline along itself (closed polygon).

    Face Mesh's contour points zig-zag along the silhouette, and the ear and hair just outside
    straddle it; with the raw zig-zag as the seam between the face and the rigid head band,
    ears tear into saw teeth.  Used for the reference and the driving outline alike.
    """
    return sum(k * np.roll(points, sh, axis=0) for sh, k in _OVAL_KERNEL)


def _smoothstep(e0: float, e1: float, x: float) -> float:
    t = min(max((x - e0) / (e1 - e0), 0.0), 1.0)
    return t * t * (3.0 - 2.0 * t)


def _rigid_head_bands(rigidity: np.ndarray, level: np.ndarray) -> np.ndarray:
    """Ring rigidities with a background plate: bands 2 and 3 follow the head like ring 1 in the
    head's directions (hair and ears move as one piece; the plate shows what they uncover),
    and keep their fade towards the neck and torso, which follow the neck smoothly."""
    w = rigidity.astype(np.float64).copy()
    ring1 = w[level == 1]
    head = np.clip((ring1 - 0.55) / 0.45, 0.0, 1.0)
    for lv in (2, 3):
        sel = level == lv
        w[sel] = w[sel] + (1.0 - w[sel]) * head
    return w


def _check_landmarks(name: str, landmarks: object) -> np.ndarray:
    arr = np.asarray(landmarks)
    if arr.shape != (N_LANDMARKS, 3):
        raise ValueError(f"{name} must have shape ({N_LANDMARKS}, 3) (Face Mesh x, y, z in pixels), got {arr.shape}")
    if arr.dtype.kind != "f":
        raise ValueError(f"{name} must be a float array (float32), got {arr.dtype}")
    arr = arr.astype(np.float64)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contain NaN or infinite values; pass a tracked face")
    return arr


class Generator:
    """Re-synthesises a face from one reference image and per-frame Face Mesh landmarks.

    ``reference_image`` (H, W, 3) uint8 RGB; ``reference_landmarks`` (468, 3) float Face Mesh
    landmarks of that image, in its pixels (x right, y down, z away from the camera).
    ``backend`` picks the inference backend of the warp (see :func:`facelink.backend.select_backend`).
    ``flow_scale`` in [0.25, 1]: resolution of the rasterised flow relative to the output,
    rounded to 1/k (1, 1/2, 1/3, 1/4).  Below 1 the flow is rasterised at 1/k and upsampled
    bilinearly (exact inside triangles, slightly soft along folds), while the mouth and eyes are
    always rasterised at full resolution; use it for large faces (see docs/generator.md).

    ``segmentation``: ``"auto"`` (default) segments the person for the background plate with
    MediaPipe's selfie-segmentation network when the model cache holds it, else by colour;
    ``"off"`` always by colour (see ``_plate.py`` and :attr:`plate_source`).

    ``refiner``: the learned refinement stage (``_refine.py``) applied to the warped face box:
    ``"off"``/``None`` (default) the pure warp, ``"on"`` the shipped network, or a path to
    another ONNX refiner.  Off by default until it beats the warp by the project's bar (see
    docs/generator.md, "Learned refinement").

    :meth:`render` returns a new full frame of the reference's size; only :attr:`face_box`
    is re-rendered, the rest is the reference unchanged.
    """

    def __init__(
        self,
        reference_image: np.ndarray,
        reference_landmarks: np.ndarray,
        *,
        backend: str = "auto",
        flow_scale: float = 1.0,
        refiner: str | None = "off",
        reference_eyes: object = None,
        segmentation: str = "auto",
    ) -> None:
        img = np.asarray(reference_image)
        if img.ndim != 3 or img.shape[2] != 3 or img.shape[0] < 2 or img.shape[1] < 2:
            raise ValueError(f"reference_image must be an (H, W, 3) RGB image, got shape {img.shape}")
        if img.dtype != np.uint8:
            raise ValueError(f"reference_image must be uint8, got {img.dtype}")
        ref = _check_landmarks("reference_landmarks", reference_landmarks)
        if not isinstance(flow_scale, (int, float)) or isinstance(flow_scale, bool) or not 0.25 <= flow_scale <= 1.0:
            raise ValueError(f"flow_scale must be a number in [0.25, 1], got {flow_scale!r}")
        if segmentation not in ("auto", "off"):
            raise ValueError(f"segmentation must be 'auto' or 'off', got {segmentation!r}")
        self._segmentation = segmentation
        self._backend_name = backend
        self.reference_image = np.ascontiguousarray(img)
        self.reference_landmarks = ref
        self._k = int(round(1.0 / float(flow_scale)))
        self.flow_scale = 1.0 / self._k
        h, w = img.shape[:2]
        self._h, self._w = h, w

        basis = default_basis()
        mesh = load_mesh()
        self._mesh = mesh
        self._weights = basis.weights
        s0, r0, t0 = similarity_fit(basis.mean, ref, basis.weights)
        if not s0 > 0:
            raise ValueError("reference_landmarks are degenerate (no face shape)")
        self._pose0 = (s0, r0, t0)
        canon = ((ref - t0) @ r0) / s0
        self._eyes = []
        for side, (lids, corners) in enumerate(((RIGHT_LIDS, RIGHT_CORNERS), (LEFT_LIDS, LEFT_CORNERS))):
            ear = _eye_aspect(ref, lids, corners)
            if ear >= _EAR_MIN_REFERENCE:
                self._eyes.append((side, lids, corners, ear))
        self._closed = np.zeros(2)
        self._ear_level = np.array([_eye_aspect(ref, RIGHT_LIDS, RIGHT_CORNERS), _eye_aspect(ref, LEFT_LIDS, LEFT_CORNERS)])
        self._oval = np.array(FACE_OVAL)

        ring_ref = s0 * mesh.ring_points @ r0.T + t0
        self._ring_ref = ring_ref
        self._ring_w = mesh.ring_rigidity[:, None]
        self._der_a = mesh.derived[:, 0]
        self._der_b = mesh.derived[:, 1]
        self._der_w = mesh.derived_weight[:, None]
        self._der_eye = mesh.derived_eye
        derived_ref = (1 - self._der_w) * ref[self._der_a] + self._der_w * ref[self._der_b]
        self._ring0 = mesh.ring_start
        verts_ref = np.concatenate([ref, derived_ref, ring_ref])
        verts_ref[self._oval] = _smooth_outline(ref[self._oval])

        # source region: the whole mesh (out to the static ring) plus room to move, in the frame
        lo = np.floor(verts_ref[:, :2].min(axis=0))
        hi = np.ceil(verts_ref[:, :2].max(axis=0)) + 1
        if hi[0] <= 1 or hi[1] <= 1 or lo[0] >= w - 1 or lo[1] >= h - 1:
            raise ValueError("reference_landmarks put the face outside the reference image")
        room = _MOVE_MARGIN * s0
        sx0, sy0 = int(np.clip(lo[0] - room, 0, w)), int(np.clip(lo[1] - room, 0, h))
        sx1, sy1 = int(np.clip(hi[0] + room, 0, w)), int(np.clip(hi[1] + room, 0, h))
        self._region = (sx0, sy0, sx1, sy1)
        self._rest = (int(np.clip(lo[0], 0, w)), int(np.clip(lo[1], 0, h)), int(np.clip(hi[0], 0, w)), int(np.clip(hi[1], 0, h)))
        self._box = self._rest
        rw, rh = sx1 - sx0, sy1 - sy0

        # the reference's irises (from its measured eye state), for the eyeball atlases
        iris: list = [None, None]
        if reference_eyes is not None:
            radius = np.where(reference_eyes.visible, reference_eyes.iris_radius, 0.0)
            iris = reference_iris(ref, reference_eyes.gaze, reference_eyes.openness, radius)
        self._eye_driver = EyeDriver(ref, (RIGHT_LIDS, LEFT_LIDS), iris, N_LANDMARKS)

        # the upper-lid bands, which sample lid atlases (reference band under synthetic lid skin)
        skin = ~np.isin(mesh.labels, (LABEL_MOUTH, LABEL_EYE_RIGHT, LABEL_EYE_LEFT, LABEL_RING))
        self._lid_bands = [
            lid_band(
                img, ref, lids, corners, N_LANDMARKS + np.flatnonzero(mesh.derived_eye == e), mesh.triangles, skin, verts_ref,
                LID_RINGS[e],
            )  # fmt: skip
            for e, (lids, corners) in enumerate(((RIGHT_LIDS, RIGHT_CORNERS), (LEFT_LIDS, LEFT_CORNERS)))
        ]
        # background plate: the head segmented off the region and inpainted behind (_plate.py);
        # the warp source carries the head layer (colours + alpha), the plate shows under it
        self._plate = self._build_plate(img, verts_ref, mesh, canon, self._region)
        if self._plate.segmented:
            self._ring_w = _rigid_head_bands(mesh.ring_rigidity, mesh.ring_level)[:, None]

        # warp source: the edge-padded region, then the atlases in a row below it
        pad = max(8, int(np.ceil(0.25 * max(rw, rh))))
        if self._plate.segmented:
            a = self._plate.alpha[..., None]
            layer = np.concatenate([self._plate.foreground * a, a], axis=-1)  # premultiplied
        else:  # nothing segmented: the background is the whole frame, the warp as without a plate
            layer = img[sy0:sy1, sx0:sx1].astype(np.float32)
        channels = layer.shape[2]
        region = np.pad(layer, ((pad, pad), (pad, pad), (0, 0)), mode="edge")
        self._canon = canon
        atlases: list[Atlas | MouthAtlas] = [
            mouth_atlas(img, ref, canon, s0, mesh.triangles[mesh.labels == LABEL_MOUTH]),
            eyeball_atlas(img, ref, RIGHT_EYE, iris[0]),
            eyeball_atlas(img, ref, LEFT_EYE, iris[1]),
            Atlas(self._lid_bands[0].band, self._lid_bands[0].origin, 1.0),
            Atlas(self._lid_bands[1].band, self._lid_bands[1].origin, 1.0),
        ]
        apad = 2
        placed: list[tuple[int, int]] = []
        ax = 0
        ay = region.shape[0] + apad
        for a in atlases:
            placed.append((ax + apad, ay))
            ax += a.rgb.shape[1] + 2 * apad
        src_h = ay + max(a.rgb.shape[0] for a in atlases) + apad
        src_w = max(region.shape[1], ax)
        src = np.zeros((src_h, src_w, channels), np.float32)
        src[: region.shape[0], : region.shape[1]] = region
        for a, (px, py) in zip(atlases, placed):
            ah, aw = a.rgb.shape[:2]
            src[py - apad : py + ah + apad, px - apad : px + aw + apad, :3] = np.pad(
                a.rgb, ((apad, apad), (apad, apad), (0, 0)), mode="edge"
            )
            if channels == 4:
                src[py - apad : py + ah + apad, px - apad : px + aw + apad, 3] = 1.0  # atlases are head
        self._src_hw = (src_h, src_w)
        self._warp = Warp(np.ascontiguousarray(src.transpose(2, 0, 1)[None]), backend=backend)
        # pixel -> normalised grid coordinate (align_corners=1)
        self._norm = np.array([2.0 / (src_w - 1), 2.0 / (src_h - 1)])
        self._offset = np.array([pad - sx0, pad - sy0], np.float64)  # frame pixel -> source pixel

        # atlas maps: atlas pixel = (coord - origin) * scale + placement, clamped into the atlas
        self._atlas_maps = []
        self._mouth_atlas = atlases[0]
        self._mouth_at = np.array(placed[0], np.float64)
        for a, (px, py) in zip(atlases, placed):
            if isinstance(a, MouthAtlas):
                self._atlas_maps.append(None)
                continue
            ah, aw = a.rgb.shape[:2]
            self._atlas_maps.append(
                (np.array(a.origin), a.scale, np.array([px, py], np.float64), np.array([px + aw - 1, py + ah - 1], np.float64))
            )

        # triangles and their constant per-corner source coordinates
        tris = mesh.triangles
        labels = mesh.labels
        self._tris = tris
        self._mouth = np.flatnonzero(labels == LABEL_MOUTH)
        self._mouth_v = mouth_vertex_v(mesh.n_vertices)[tris[self._mouth]]  # (M, 3) lip-relative v
        self._eye_r = np.flatnonzero(labels == LABEL_EYE_RIGHT)
        self._eye_l = np.flatnonzero(labels == LABEL_EYE_LEFT)
        level = np.concatenate([np.zeros(self._ring0), mesh.ring_level.astype(np.float64)])
        prio = np.where(labels == LABEL_RING, _RING_OFFSET * level[tris].max(axis=1), 0.0)
        prio[np.isin(labels, (LABEL_MOUTH, LABEL_EYE_RIGHT, LABEL_EYE_LEFT))] = _INTERIOR_OFFSET
        self._prio = prio[:, None]
        self._attr = self._to_grid(verts_ref[:, :2] + self._offset)[tris]  # (T, 3, 2)
        # per-frame state and buffers
        self._raster = Rasterizer()
        self._grids: dict[tuple[int, int], np.ndarray] = {}
        self._idents: dict[tuple[int, int, int, int], np.ndarray] = {}
        self._face_scale = float(s0)
        self._atlas_top = float(self._to_grid(np.array([0.0, region.shape[0] - 0.5]))[1])
        model = resolve_refiner(refiner)
        self._refiner = Refiner(model, backend=backend) if model is not None else None
        self._plates: dict[tuple[int, int, int, int], np.ndarray] = {}
        self._plate_nchw = np.ascontiguousarray(self._plate.plate.transpose(2, 0, 1)[None]) if self._warp.plate else None
        self._verts = verts_ref.copy()
        # the lid bands' triangles sample their lid atlases (constant sources), whose pixels
        # are blended per frame in the warp source (``_shut_lids``)
        self._lid_slots = []
        for e, band in enumerate(self._lid_bands):
            self._attr[band.triangles] = self._atlas_coords(3 + e, verts_ref[:, :2][tris[band.triangles]])
            px, py = (int(v) for v in self._atlas_maps[3 + e][2])
            bh, bw = band.band.shape[:2]
            self._lid_slots.append((slice(py, py + bh), slice(px, px + bw)))
        self._lid_closed = np.zeros(2)
        self._limit = 4.0 * max(w, h)

    # ----------------------------------------------------------------------------------
    def set_mouth_interior(self, image: np.ndarray, pixels: np.ndarray, canonical: np.ndarray) -> None:
        """Draw every open mouth's interior from a crop of this face's open mouth (a region
        reference): ``image`` RGB uint8, ``pixels``/``canonical`` (20, 2) the inner-lip
        landmarks (``LIPS_INNER`` order) in the crop and in canonical face units.

        The crop's colours are matched to the reference's lips; it replaces any earlier one.
        Only for the face the crop shows (not a motion-transfer target).
        """
        img = np.asarray(image)
        if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
            raise ValueError(f"image must be an (H, W, 3) uint8 RGB image, got {img.dtype} {img.shape}")
        px = np.asarray(pixels, np.float64)
        cn = np.asarray(canonical, np.float64)
        if px.shape != (len(LIPS_INNER), 2) or cn.shape != (len(LIPS_INNER), 2):
            raise ValueError(f"pixels and canonical must be ({len(LIPS_INNER)}, 2) arrays")
        lip = mouth_colours(self.reference_image, self.reference_landmarks)[0]
        old = self._mouth_atlas
        atlas = mouth_atlas(
            self.reference_image, self.reference_landmarks, self._canon, self._face_scale,
            self._tris[self._mouth], extra=mouth_interior_from_crop(img, px, cn, lip), openings=old.openings,
        )  # fmt: skip
        ah, aw = atlas.rgb.shape[:2]
        px0, py0 = (int(v) for v in self._mouth_at)
        self._warp.source[0, :3, py0 : py0 + ah, px0 : px0 + aw] = atlas.rgb.transpose(2, 0, 1)
        self._mouth_atlas = atlas

    @property
    def face_box(self) -> tuple[int, int, int, int]:
        """``(x0, y0, x1, y1)`` (x1, y1 exclusive) of the region re-rendered in the last frame.

        The bounding box of the mesh (out to its static ring) in the reference and in the last
        driving frame, snapped outwards to 8 pixels, clipped to the frame and to the region
        the reference was prepared for (the static ring plus about a face radius).  Outside it
        every output pixel is the reference's.  Before the first frame: the reference's box.
        """
        return self._box

    @property
    def plate_source(self) -> str:
        """What segmented the background plate: ``"network"`` (MediaPipe's selfie segmentation),
        ``"colour"`` (the fallback: model not cached, ``segmentation="off"``, or no person found
        on the face) or ``"none"`` (no background in the source region: no plate)."""
        if not self._plate.segmented:
            return "none"
        return "network" if self._plate.by_model else "colour"

    @property
    def backend(self) -> str:
        """Name of the inference backend running the warp."""
        return self._warp.session.backend

    @property
    def refiner(self) -> Refiner | None:
        """The learned refinement stage, or ``None`` for the pure warp."""
        return self._refiner

    def close(self) -> None:
        """Release the inference sessions (idempotent)."""
        self._warp.close()
        if self._refiner is not None:
            self._refiner.close()

    def __enter__(self) -> Generator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _to_grid(self, src_px: np.ndarray) -> np.ndarray:
        return src_px * self._norm - 1.0

    def _identity(self, x0: int, y0: int, out: np.ndarray, step: int = 1) -> None:
        """Fill ``out`` (h, w, 2) with the identity grid of frame pixels (x0 + step j, y0 + step i)."""
        h, w = out.shape[:2]
        gx = ((x0 + step * np.arange(w) + self._offset[0]) * self._norm[0] - 1.0).astype(np.complex64)
        gy = (1j * ((y0 + step * np.arange(h) + self._offset[1]) * self._norm[1] - 1.0)).astype(np.complex64)
        np.add(gx[None, :], gy[:, None], out=out.reshape(h, -1).view(np.complex64))

    def _face_box(self, verts: np.ndarray) -> tuple[int, int, int, int]:
        lo = np.minimum(np.floor(verts[:, :2].min(axis=0)), self._rest[:2])
        hi = np.maximum(np.ceil(verts[:, :2].max(axis=0)) + 1, self._rest[2:])
        sx0, sy0, sx1, sy1 = self._region
        snap = _BOX_SNAP
        x0 = int(np.clip(np.floor(lo[0] / snap) * snap, sx0, sx1 - 2))
        y0 = int(np.clip(np.floor(lo[1] / snap) * snap, sy0, sy1 - 2))
        x1 = int(np.clip(np.ceil(hi[0] / snap) * snap, x0 + 2, sx1))
        y1 = int(np.clip(np.ceil(hi[1] / snap) * snap, y0 + 2, sy1))
        return x0, y0, x1, y1

    def _build_plate(self, img: np.ndarray, verts_ref: np.ndarray, mesh, canon: np.ndarray, region) -> Plate:
        """Segment the head in the source region, inpaint behind it (see ``_plate.py``)."""
        sx0, sy0, sx1, sy1 = region
        level = np.concatenate([np.zeros(self._ring0), mesh.ring_level.astype(np.float64)])
        lev = np.full((sy1 - sy0, sx1 - sx0, 1), np.nan, np.float32)
        tris = mesh.triangles
        Rasterizer().draw(verts_ref[tris, :2] - np.array([sx0, sy0], np.float64), np.zeros(tris.shape), level[tris][..., None], lev)
        # canonical y of every region pixel (2-D inverse of the reference's pose): below the chin
        s0, r0, t0 = self._pose0
        ys = np.arange(sy0, sy1, dtype=np.float64)[:, None] - t0[1]
        xs = np.arange(sx0, sx1, dtype=np.float64)[None, :] - t0[0]
        r2 = r0[:2, :2] / max(float(np.linalg.det(r0[:2, :2])), 1e-6) ** 0.5
        yc = (r2[0, 1] * xs + r2[1, 1] * ys) / s0
        person = segment(img, region, self._backend_name) if self._segmentation == "auto" else None
        return build_plate(img[sy0:sy1, sx0:sx1], lev[..., 0], yc > canon[152, 1], person)

    def _plate_under(self, box: tuple[int, int, int, int]) -> np.ndarray:
        """The plate under a face box, (1, 3, h, w) float32 (cached per box)."""
        crop = self._plates.get(box)
        if crop is None:
            if len(self._plates) > 8:
                self._plates.clear()
            x0, y0, x1, y1 = box
            sx0, sy0 = self._region[:2]
            crop = self._plate_nchw[:, :, y0 - sy0 : y1 - sy0, x0 - sx0 : x1 - sx0]
            crop = self._plates[box] = np.ascontiguousarray(crop)
        return crop

    # ----------------------------------------------------------------------------------
    def flow(self, driving_landmarks: np.ndarray, eyes: EyeControls | None = None) -> np.ndarray:
        """The (1, h, w, 2) normalised sampling grid of the face box for one driving frame.

        The array is a buffer reused by the next call.  Exposed for tests and tooling.
        """
        drv = _check_landmarks("driving_landmarks", driving_landmarks)
        gaze = None
        if eyes is None:
            drv, closed = self._shape_blinks(drv)
        s1, r1, t1 = similarity_fit(self.reference_landmarks, drv, self._weights)
        if not (np.isfinite(s1) and s1 > _MIN_SCALE):
            raise ValueError("driving_landmarks are degenerate (collapsed to a point or a line)")
        if eyes is not None:  # explicit eye channels: lids and gaze as transmitted
            drv, closed, gaze = self._eye_driver.drive(drv, eyes, s1, r1)
        verts = self._verts
        verts[:N_LANDMARKS] = drv
        verts[self._oval] = _smooth_outline(drv[self._oval])
        # lash-line points: on a shutting eye they move onto the lid margin (lashes stay thin)
        w = self._der_w * (1.0 - (1.0 - _LASH_KEEP) * closed[self._der_eye])[:, None]
        verts[N_LANDMARKS : self._ring0] = (1 - w) * drv[self._der_a] + w * drv[self._der_b]
        rigid = s1 * self._ring_ref @ r1.T + t1
        verts[self._ring0 :] = self._ring_ref + self._ring_w * (rigid - self._ring_ref)
        np.clip(verts[:, :2], -self._limit, self._limit, out=verts[:, :2])

        self._box = x0, y0, x1, y1 = self._face_box(verts)
        tv = verts[self._tris]  # (T, 3, 3)
        xy = tv[:, :, :2] - np.array([x0, y0], np.float64)
        z = tv[:, :, 2] + self._prio
        attr = self._attr.copy()
        # upper-lid bands sample their lid atlases, blended towards the shut lid as the eye shuts
        self._shut_lids(closed)

        # mouth interior: canonical (head-fixed) coordinates into the mouth atlas
        s0, r0, t0 = self._pose0
        sd, rd, td = s1 * s0, r1 @ r0, s1 * (r1 @ t0) + t1
        tm = tv[self._mouth]
        canon = ((tm - td) @ rd) / sd
        lips = ((drv[[13, 14]] - td) @ rd) / sd  # inner lip centres, canonical
        tile = self._mouth_atlas.tile_for(float(lips[1, 1] - lips[0, 1]))
        ax, ay = self._mouth_atlas.pixel(canon[:, :, 0], self._mouth_v, tile)
        attr[self._mouth] = self._to_grid(np.stack([ax, ay], axis=-1) + self._mouth_at)
        # eye interiors: the eyeball moves rigidly with the head; lids slide over it
        for k, idx in ((1, self._eye_r), (2, self._eye_l)):
            q = ((tv[idx] - t1) @ r1) / s1
            if gaze is not None:  # the iris moves: the eyeball under the opening shifts
                q[:, :, :2] -= self._eye_driver.gaze_weight[self._tris[idx]][..., None] * gaze[k - 1]
            attr[idx] = self._atlas_coords(k, q[:, :, :2])

        grid = self._grids.get((y1 - y0, x1 - x0))
        if grid is None:
            if len(self._grids) > 8:
                self._grids.clear()
            grid = self._grids[(y1 - y0, x1 - x0)] = np.empty((1, y1 - y0, x1 - x0, 2), np.float32)
        if self._k == 1:
            self._identity(x0, y0, grid[0])
            self._raster.draw(xy, z, attr, grid[0])
        else:
            self._draw_coarse(xy, z, attr, grid[0], x0, y0)
        return grid

    def _shut_lids(self, closed: np.ndarray) -> None:
        """Blend each lid atlas in the warp source towards the shut lid (only when it changed)."""
        for e, band in enumerate(self._lid_bands):
            c = float(closed[e])
            if abs(c - self._lid_closed[e]) < 1e-3:
                continue
            ys, xs = self._lid_slots[e]
            self._warp.source[0, :3, ys, xs] = band.atlas(c).transpose(2, 0, 1)  # colour (alpha stays 1)
            self._lid_closed[e] = c

    def _shape_blinks(self, lm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Bring the upper lid down to the lower one as Face Mesh's eye ratio nears its "shut" value.

        Returns the landmarks (modified in place) and how shut each eye is, (right, left) in
        [0 open, 1 shut].  Updates the eyes' running open level (the only state carried from
        frame to frame).
        """
        closed = self._closed
        closed[:] = 0.0
        for side, (upper, crease, lower), corners, ref_ear in self._eyes:
            ear = _eye_aspect(lm, (upper, crease, lower), corners)
            if ear > _EAR_HOLD * self._ear_level[side]:  # hold the level while the eye is shut
                self._ear_level[side] = max(self._ear_level[side] * _EAR_DECAY, ear)
            usual = min(self._ear_level[side], ref_ear)
            c = 1.0 - _smoothstep(_EAR_SHUT * usual, _EAR_OPEN * usual, ear)
            if c > 0.0:
                u, lo = list(upper), list(lower)
                move = c * (lm[lo] - lm[u])
                lm[u] += move
                lm[list(crease)] += _CREASE_FOLLOW * move
            closed[side] = c
        return lm, closed

    def _atlas_coords(self, k: int, coords: np.ndarray) -> np.ndarray:
        origin, scale, lo, hi = self._atlas_maps[k]
        px = np.clip((coords - origin) * scale + lo, lo, hi)
        return self._to_grid(px)

    def _draw_coarse(self, xy: np.ndarray, z: np.ndarray, attr: np.ndarray, out: np.ndarray, x0: int, y0: int) -> None:
        """Flow at 1/k resolution, upsampled bilinearly (exact inside triangles: the flow is
        piecewise linear); the mouth and eyes, where the flow jumps into the atlases, are
        re-rasterised at full resolution in small windows."""
        k = self._k
        h, w = out.shape[:2]
        coarse = np.empty(((h - 1) // k + 2, (w - 1) // k + 2, 2), np.float32)
        self._identity(x0, y0, coarse, step=k)
        self._raster.draw(xy / k, z, attr, coarse)
        # bilinear upsampling by k, on (x, y) pairs viewed as complex numbers (half the work)
        cc = coarse.reshape(coarse.shape[0], -1).view(np.complex64)
        oc = out.reshape(h, -1).view(np.complex64)
        for a in range(k):
            na = len(range(a, h, k))
            fa = a / k
            rows = cc[:na] if fa == 0 else cc[:na] * np.float32(1 - fa) + cc[1 : na + 1] * np.float32(fa)
            for b in range(k):
                nb = len(range(b, w, k))
                fb = b / k
                dst = oc[a::k, b::k]
                if fb == 0:
                    dst[...] = rows[:, :nb]
                else:
                    np.multiply(rows[:, :nb], np.float32(1 - fb), out=dst)
                    dst += rows[:, 1 : nb + 1] * np.float32(fb)
        margin = k + 2
        tmin = xy.min(axis=1)
        tmax = xy.max(axis=1)
        for idx in (self._mouth, self._eye_r, self._eye_l):
            p = xy[idx].reshape(-1, 2)
            lo = np.floor(p.min(axis=0)) - margin
            hi = np.ceil(p.max(axis=0)) + margin + 1
            wx0, wy0 = int(max(lo[0], 0)), int(max(lo[1], 0))
            wx1, wy1 = int(min(hi[0], w)), int(min(hi[1], h))
            if wx1 <= wx0 or wy1 <= wy0:
                continue
            win = np.empty((wy1 - wy0, wx1 - wx0, 2), np.float32)
            self._identity(x0 + wx0, y0 + wy0, win)
            near = np.flatnonzero(
                (tmax[:, 0] >= wx0 - 1) & (tmin[:, 0] <= wx1) & (tmax[:, 1] >= wy0 - 1) & (tmin[:, 1] <= wy1)
            )
            self._raster.draw(xy[near] - np.array([wx0, wy0], np.float64), z[near], attr[near], win)
            out[wy0:wy1, wx0:wx1] = win

    def render(self, driving_landmarks: np.ndarray, eyes: EyeControls | None = None) -> np.ndarray:
        """The full (H, W, 3) uint8 frame for one frame of driving landmarks (reference pixels).

        Raises ``ValueError`` for landmarks of the wrong shape or dtype, non-finite values, or a
        degenerate (collapsed) face.  A face driven partly or wholly outside the frame (or
        further than about its own radius from where the reference has it) still gives a valid
        frame: the mesh is clipped to the face box.
        """
        patch, inputs = self.warp_parts(driving_landmarks, with_inputs=self._refiner is not None, eyes=eyes)
        if self._refiner is not None:
            patch = self._refiner(patch, inputs)
        out = self.reference_image.copy()
        x0, y0, x1, y1 = self._box
        out[y0:y1, x0:x1] = patch
        return out

    def warp_parts(
        self, driving_landmarks: np.ndarray, with_inputs: bool = True, eyes: EyeControls | None = None
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """The warped face box ``(h, w, 3)`` uint8 (a view of a reused buffer) and, with
        ``with_inputs``, the refiner's ``(6, h, w)`` input tensor for it (see
        :func:`~facelink.generator._refine.refiner_inputs`).  :attr:`face_box` says where the
        box lies.  Used by :meth:`render` and by the refiner's training data."""
        grid = self.flow(driving_landmarks, eyes)
        patch = (self._warp(grid, self._plate_under(self._box)) if self._warp.plate else self._warp(grid))[0]
        if not with_inputs:
            return patch, None
        x0, y0, x1, y1 = self._box
        key = (x0, y0, x1, y1)
        ident = self._idents.get(key)
        if ident is None:
            if len(self._idents) > 8:
                self._idents.clear()
            ident = self._idents[key] = np.empty((y1 - y0, x1 - x0, 2), np.float32)
            self._identity(x0, y0, ident)
        px = (1.0 / self._norm[0], 1.0 / self._norm[1])
        return patch, refiner_inputs(patch, grid[0], ident, px, self._face_scale, self._atlas_top)
