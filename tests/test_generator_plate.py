"""Tests for the generator's background plate (``_plate.py``) and synthetic mouth interior.

Synthetic scenes only (the drawn faces of test_generator.py): a skin-coloured face over a
blue-green gradient background, so "head" and "background" pixels are told apart by colour.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from facelink.generator._mesh import FACE_OVAL, LIPS_INNER, load_mesh
from facelink.generator._plate import build_plate, inpaint
from facelink.generator._warp import warp_model_bytes
from facelink.keypoints import default_basis, matrix_from_euler

from test_generator import SKIN, Generator, draw_face, luma, mask_of, posed  # noqa: E402

pytest.importorskip("onnxruntime")

IOD = 80.0
CENTRE = (128.0, 120.0)


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FACELINK_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("FACELINK_BACKEND", raising=False)


def background(h: int, w: int) -> np.ndarray:
    """The drawn faces' background gradient (without its texture), float (h, w, 3)."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    return np.stack([60 + 80 * xx / w, 90 + 60 * yy / h, 140 - 40 * xx / w], axis=-1)


def ring_polygon(level: int, centre: tuple[float, float], yaw: float = 0.0, pitch: float = 0.0, roll: float = 0.0) -> np.ndarray:
    """Image positions of one ring of the mesh for a face posed like :func:`posed` (rigidly)."""
    mesh = load_mesh()
    pts = mesh.ring_points[mesh.ring_level == level]
    r = matrix_from_euler(yaw, pitch, roll)
    return (IOD * pts @ r.T)[:, :2] + np.array(centre)


def skin_like(img: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Pixels of ``mask`` closer to the skin colour than to the background behind them."""
    px = img[mask].astype(np.float64)
    bg = background(*img.shape[:2])[mask]
    return np.linalg.norm(px - np.array(SKIN), axis=1) < np.linalg.norm(px - bg, axis=1)


def _cross(o, a, b) -> float:
    return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])


def convex_hull(p: np.ndarray) -> np.ndarray:
    """Convex hull of 2-D points (monotone chain), counter-clockwise."""
    pts = sorted(map(tuple, np.asarray(p, np.float64)))

    def half(seq):
        out: list = []
        for q in seq:
            while len(out) >= 2 and _cross(out[-2], out[-1], q) <= 0:
                out.pop()
            out.append(q)
        return out[:-1]

    return np.array(half(pts) + half(pts[::-1]))


@pytest.fixture(scope="module")
def scene():
    lm = posed(IOD, CENTRE, yaw=0.1, pitch=-0.05, roll=0.05)
    return draw_face(256, 256, lm), lm


def test_plate_has_no_head_pixels_where_the_head_moved_away(scene):
    img, lm = scene
    moved = (CENTRE[0] + 60.0, CENTRE[1])
    drv = posed(IOD, moved, yaw=0.1, pitch=-0.05, roll=0.05)
    with Generator(img, lm) as gen:
        assert gen._plate.segmented
        # the plate itself: no skin anywhere inside the original face
        oval = mask_of(256, 256, lm[list(FACE_OVAL), :2])
        sx0, sy0, sx1, sy1 = gen._region
        plate = np.zeros_like(img, dtype=np.float32)
        plate[sy0:sy1, sx0:sx1] = gen._plate.plate
        assert skin_like(plate, oval & (np.arange(256)[None, :] >= sx0)).mean() < 0.01
        out = gen.render(drv)
    # where the head was and no longer is (outside the moved head's rigid ring): background
    uncovered = oval & ~mask_of(256, 256, ring_polygon(1, moved, yaw=0.1, pitch=-0.05, roll=0.05))
    assert uncovered.sum() > 500
    assert skin_like(out, uncovered).mean() < 0.02
    diff = np.abs(out[uncovered].astype(np.float64) - background(256, 256)[uncovered]).mean()
    assert diff < 30.0  # the gradient continued behind the head (texture noise is +-28)
    # the moved face itself is there
    new_oval = mask_of(256, 256, drv[list(FACE_OVAL), :2]) & (np.arange(256)[None, :] < 250)
    assert skin_like(out, new_oval).mean() > 0.9


@pytest.mark.parametrize("yaw", [-0.52, 0.52])
def test_repose_30_degrees_leaves_no_ghost_of_the_original_head(scene, yaw):
    img, lm = scene
    drv = posed(IOD, CENTRE, yaw=0.1 + yaw, pitch=-0.05, roll=0.05)
    with Generator(img, lm) as gen:
        out = gen.render(drv)
    old = mask_of(256, 256, lm[list(FACE_OVAL), :2])
    # the new face's silhouette: the hull of all its landmarks (turned 30 degrees, the far cheek
    # bulges past the face-outline loop), grown by a few pixels (antialiased edge)
    new = mask_of(256, 256, convex_hull(drv[:, :2]))
    grown = new.copy()
    for dy in range(-3, 4):
        for dx in range(-3, 4):
            grown |= np.roll(new, (dy, dx), axis=(0, 1))
    outside = old & ~grown
    assert outside.sum() > 300  # the turned face really uncovers part of the old silhouette
    assert skin_like(out, outside).mean() < 0.02


def test_mouth_interior_is_shaded_not_a_flat_bright_shape(scene):
    img, lm = scene
    b = default_basis()
    with Generator(img, lm) as gen:
        for k in (3.0, 5.0, 7.0):
            drv = posed(IOD, CENTRE, shape=b.mean + k * b.std[0] * b.modes[0], yaw=0.1, pitch=-0.05, roll=0.05)
            out = gen.render(drv)
            inner = mask_of(256, 256, drv[list(LIPS_INNER), :2])
            core = inner.copy()
            for dy in (-2, 0, 2):
                for dx in (-2, 0, 2):
                    core &= np.roll(inner, (dy, dx), axis=(0, 1))
            y = luma(out[core])
            assert core.sum() > 100
            assert (y > 230).mean() < 0.01  # no saturated white
            assert y.max() < 235
            assert np.ptp(y) > 60 and y.std() > 15  # shaded: teeth and a dark cavity, not one flat colour
            assert np.median(y) < 0.75 * luma(np.array([SKIN]))[0]  # mostly cavity
            # no flat patch: rows of the interior are not one constant value
            rows = [luma(out[r][core[r]]) for r in np.nonzero(core.any(axis=1))[0]]
            assert np.mean([np.ptp(r) for r in rows if len(r) > 8]) > 8


def test_soft_lip_line(scene):
    """Across the inner lip line the luma changes over more than one pixel step."""
    img, lm = scene
    b = default_basis()
    drv = posed(IOD, CENTRE, shape=b.mean + 5.0 * b.std[0] * b.modes[0], yaw=0.1, pitch=-0.05, roll=0.05)
    with Generator(img, lm) as gen:
        out = luma(gen.render(drv))
    # a vertical profile down the middle of the mouth into the lower lip, averaged over 9
    # columns (the drawn lips are textured)
    x = int(round(float(drv[14, 0])))
    top = int(round(float(drv[14, 1] + drv[13, 1]) / 2))  # middle of the opening
    bottom = int(round(float(drv[14, 1] + drv[17, 1]) / 2))  # middle of the lower lip
    col = out[top : bottom + 1, x - 4 : x + 5].mean(axis=1)
    steps = np.abs(np.diff(col))
    total = abs(col[-1] - col[0])
    assert total > 30
    assert steps.max() < 0.55 * total


def test_build_plate_without_background_keeps_the_reference():
    rng = np.random.default_rng(1)
    region = rng.integers(0, 255, (40, 50, 3), dtype=np.uint8)
    level = np.full((40, 50), 2.0)
    level[10:30, 10:40] = 0.0
    plate = build_plate(region, level, np.zeros((40, 50), bool))
    assert not plate.segmented
    assert np.array_equal(plate.plate, region.astype(np.float32))
    assert np.all(plate.alpha[level < 3.0] == 1.0)


def test_face_filling_the_frame_falls_back_to_the_plain_warp():
    """No background in the source region: nothing is segmented, the warp has no plate."""
    lm = posed(170.0, (128.0, 128.0))
    img = draw_face(256, 256, lm)
    with Generator(img, lm) as gen:
        assert not gen._plate.segmented and not gen._warp.plate
        out = gen.render(lm)
        moved = gen.render(posed(170.0, (134.0, 128.0)))
    inner = mask_of(256, 256, lm[list(LIPS_INNER), :2])
    grown = inner.copy()
    for dy in range(-3, 4):
        for dx in range(-3, 4):
            grown |= np.roll(inner, (dy, dx), axis=(0, 1))
    err = np.abs(out.astype(int) - img.astype(int)).max(axis=2)
    assert err[~grown].max() <= 1, np.argwhere(err * ~grown > 1)[:5]
    assert np.abs(moved.astype(int) - img.astype(int)).mean() > 1.0


def test_build_plate_composite_is_the_reference():
    lm = posed(IOD, CENTRE)
    img = draw_face(256, 256, lm)
    with Generator(img, lm) as gen:
        p = gen._plate
        sx0, sy0, sx1, sy1 = gen._region
    a = p.alpha[..., None]
    comp = a * p.foreground + (1 - a) * p.plate
    assert np.abs(comp - img[sy0:sy1, sx0:sx1]).max() < 1.0
    assert p.alpha.min() == 0.0 and p.alpha.max() == 1.0


def test_inpaint_fills_from_the_known_pixels():
    img = np.zeros((32, 40, 3), np.float32)
    img[...] = (10.0, 200.0, 90.0)
    known = np.ones((32, 40), bool)
    known[8:24, 10:30] = False
    img[~known] = 0.0
    out = inpaint(img, known)
    assert np.allclose(out, (10.0, 200.0, 90.0), atol=1e-3)
    ramp = np.repeat(np.linspace(0, 255, 40, dtype=np.float32)[None, :, None], 32, axis=0).repeat(3, axis=2)
    out = inpaint(np.where(known[..., None], ramp, 0.0), known)
    assert np.array_equal(out[known], ramp[known])
    assert np.abs(out - ramp).max() < 40.0


def test_plate_inputs_are_checked():
    with pytest.raises(ValueError):
        inpaint(np.zeros((4, 4, 3), np.float32), np.zeros((4, 4), bool))
    with pytest.raises(ValueError):
        inpaint(np.zeros((4, 4, 3), np.float32), np.ones((4, 5), bool))
    with pytest.raises(ValueError):
        build_plate(np.zeros((4, 4, 3), np.float32), np.zeros((4, 4)), np.zeros((4, 4), bool))
    with pytest.raises(ValueError):
        build_plate(np.zeros((4, 4, 3), np.uint8), np.zeros((4, 5)), np.zeros((4, 4), bool))


def test_plate_warp_graph_is_rank4():
    model = onnx.load_from_string(warp_model_bytes(plate=True))
    ops = [n.op_type for n in model.graph.node]
    assert ops.count("GridSample") == 1
    assert {"Slice", "Sub", "Mul", "Add", "Cast"} <= set(ops)
    for value in list(model.graph.input) + list(model.graph.output):
        assert len(value.type.tensor_type.shape.dim) == 4
    assert model.graph.input[0].type.tensor_type.shape.dim[1].dim_value == 4
    assert model.graph.input[2].type.tensor_type.shape.dim[1].dim_value == 3  # the plate, NCHW


# -- the segmentation network's alpha (``person``) ------------------------------------------------


def _network_scene(n: int = 200):
    """A region with concentric ring levels: face r < 30, hair to r 60 (the network's person
    disc), rings every 15 px (static ring at r 90), and a red 'arm' of the person reaching the
    right edge below the head, partly beyond the static ring."""
    yy, xx = np.mgrid[0:n, 0:n].astype(np.float32)
    c = n / 2
    r = np.hypot(xx - c, yy - c)
    level = np.clip((r - 30.0) / 15.0, 0.0, None)
    level[level > 4.0] = np.nan
    below_chin = yy > c + 30
    img = background(n, n)
    hair = r < 60
    img[hair] = (90, 60, 30)
    img[r < 30] = SKIN
    arm = (yy > c + 20) & (yy < c + 45) & (xx > c + 50)
    img[arm] = (220, 30, 30)
    person = np.clip(61.0 - r, 0.0, 1.0)
    person[arm] = 1.0
    return img.astype(np.uint8), level, below_chin, person, r, arm


def test_network_alpha_moves_hair_and_the_plate_holds_background_only():
    img, level, below_chin, person, r, arm = _network_scene()
    plate = build_plate(img, level, below_chin, person)
    assert plate.segmented and plate.by_model
    hair = (r > 32) & (r < 58)
    assert plate.alpha[r < 58].min() > 0.99  # face and all the hair move with the head
    assert plate.alpha[:10, :10].max() == 0.0 and plate.alpha[:10, -10:].max() == 0.0
    # the plate under head and hair is the background continued: no skin, hair or arm colour
    under = plate.plate[(r < 58) & ~arm]
    bg = background(*img.shape[:2])[(r < 58) & ~arm]
    assert np.abs(under - bg).mean() < 12.0
    for colour in (SKIN, (90, 60, 30), (220, 30, 30)):
        assert np.linalg.norm(under - np.array(colour, np.float32), axis=1).min() > 40.0, colour
    # the arm beyond the static ring stays in the plate (nothing there lifts off) ...
    still = arm & np.isnan(level)
    assert still.sum() > 50 and plate.alpha[still].max() == 0.0
    np.testing.assert_array_equal(plate.plate[still], img[still].astype(np.float32))
    # ... and the unmoved composite is the reference
    a = plate.alpha[..., None]
    comp = a * plate.foreground + (1 - a) * plate.plate
    assert np.abs(comp - img).max() < 0.5
    assert (hair & (plate.alpha > 0)).sum() == hair.sum()


def test_network_plate_is_cleaner_than_the_colour_fallback():
    """The colour fallback fills the head's hole from hair it left in the plate; the network does not."""
    img, level, below_chin, person, r, arm = _network_scene()
    bg = background(*img.shape[:2])
    core = (r < 40) & ~arm
    err = {}
    for name, p in (("network", person), ("colour", None)):
        plate = build_plate(img, level, below_chin, p)
        err[name] = float(np.abs(plate.plate[core] - bg[core]).mean())
    assert err["network"] < 12.0 and err["network"] < err["colour"]


def test_network_without_a_person_on_the_face_falls_back_to_colour():
    img, level, below_chin, person, _, _ = _network_scene()
    plate = build_plate(img, level, below_chin, np.zeros_like(person))
    assert plate.segmented and not plate.by_model


def test_network_person_shape_is_checked():
    img, level, below_chin, person, _, _ = _network_scene()
    with pytest.raises(ValueError, match="person must have"):
        build_plate(img, level, below_chin, person[:-1])


def test_generator_segments_the_portrait_with_the_network(models, face_models, portrait, monkeypatch):
    """On the astronaut portrait, with the cached model: hair and shoulders are person, the studio
    backdrop is not, and the plate behind the face is backdrop-coloured, not face-coloured."""
    from facelink.face import FaceTracker
    from facelink.generator import Generator as FullGenerator

    monkeypatch.setenv("FACELINK_HOME", str(models.onnx["selfie_segmentation"].parents[1]))
    obs = FaceTracker(*face_models).update(portrait, 0.0)
    assert obs is not None
    lm = obs.landmarks.astype(np.float32)
    with FullGenerator(portrait, lm, backend="onnxruntime") as gen, FullGenerator(
        portrait, lm, backend="onnxruntime", segmentation="off"
    ) as off:
        assert gen.plate_source == "network" and off.plate_source == "colour"
        plate = gen._plate
        sx0, sy0, sx1, sy1 = gen._region
        local = lm[:, :2] - (sx0, sy0)
        face_h = float(np.ptp(lm[:, 1]))
        top = local[10]  # the forehead's top
        cx, cy = (int(round(v)) for v in local[1])  # the nose tip
        hair_y = int(top[1] - 0.15 * face_h)
        assert plate.alpha[cy, cx] == 1.0
        assert plate.alpha[hair_y, int(top[0])] > 0.9  # hair above the forehead moves with the head
        corner = plate.alpha[: 10, : 10]
        assert corner.max() == 0.0  # studio backdrop
        region = portrait[sy0:sy1, sx0:sx1].astype(np.float32)
        upper = np.zeros(plate.alpha.shape, bool)
        upper[: int(local[152, 1])] = True  # above the chin line
        backdrop = region[upper & (plate.alpha == 0.0)].mean(axis=0)
        face = portrait[int(lm[:, 1].min()) : int(lm[:, 1].max()), int(lm[:, 0].min()) : int(lm[:, 0].max())]
        skin = face.reshape(-1, 3).astype(np.float32).mean(axis=0)
        behind = plate.plate[cy - 10 : cy + 10, cx - 10 : cx + 10].reshape(-1, 3).mean(axis=0)
        assert np.linalg.norm(behind - backdrop) < 0.5 * np.linalg.norm(behind - skin)
        # the person covers more than the colour fallback's head (hair, neck, shoulders)
        assert (plate.alpha > 0.5).sum() > (off._plate.alpha > 0.5).sum()


def test_generator_never_downloads_the_segmentation_model(scene, monkeypatch):
    """With an empty model cache the plate uses the colour fallback; nothing is fetched."""
    from facelink.models import _fetch

    def no_network(*args, **kwargs):
        raise AssertionError("the generator must not download models")

    monkeypatch.setattr(_fetch, "_download_wheel", no_network)
    img, lm = scene
    with Generator(img, lm) as gen:
        assert gen.plate_source == "colour"
    with Generator(img, lm, segmentation="off") as gen:
        assert gen.plate_source == "colour"
    with pytest.raises(ValueError, match="segmentation must be"):
        Generator(img, lm, segmentation="on")
