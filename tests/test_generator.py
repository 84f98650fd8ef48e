"""Tests for facelink.generator: the training-free mesh-flow renderer.

Everything here is synthetic (no real data, no camera): a drawn face-like image whose landmarks
are the canonical mean face under a chosen pose, so every expected result is known exactly.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from facelink.generator import Generator as _Generator
from facelink.generator._mesh import (
    FACE_OVAL,
    LABEL_EYE_LEFT,
    LABEL_EYE_RIGHT,
    LABEL_MOUTH,
    LEFT_EYE,
    LIPS_INNER,
    LIPS_OUTER,
    RIGHT_EYE,
    RIGHT_LIDS,
    load_mesh,
    mean_face_hash,
)
from facelink.generator._raster import Rasterizer
from facelink.generator._warp import WARP_OPSET, warp_model_bytes
from facelink.keypoints import default_basis, matrix_from_euler
from PIL import Image, ImageDraw

pytest.importorskip("onnxruntime")


def Generator(*args, **kwargs) -> _Generator:  # noqa: N802 - the class under test, warp only
    """These tests are of the warp: the learned refiner (tests/test_refiner.py) stays off."""
    kwargs.setdefault("refiner", "off")
    return _Generator(*args, **kwargs)

SKIN = (205, 150, 120)
LIP = (215, 95, 105)
SCLERA = (235, 235, 230)
IRIS = (40, 30, 25)


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    """Each test writes the warp graph into its own cache (no writes to the user's cache)."""
    monkeypatch.setenv("FACELINK_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("FACELINK_BACKEND", raising=False)


def posed(iod: float, centre: tuple[float, float], yaw: float = 0.0, pitch: float = 0.0, roll: float = 0.0,
          shape: np.ndarray | None = None) -> np.ndarray:
    """Landmarks of the mean face (or ``shape``) with inter-ocular distance ``iod`` px at ``centre``."""
    m = default_basis().mean if shape is None else shape
    r = matrix_from_euler(yaw, pitch, roll)
    return (iod * m @ r.T + np.array([centre[0], centre[1], 0.0])).astype(np.float32)


def texture(h: int, w: int, period: int, seed: int) -> np.ndarray:
    """Smooth random texture in [-1, 1] (bilinearly upsampled noise), for measuring shifts."""
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(-1, 1, (h // period + 2, w // period + 2)).astype(np.float32)
    img = Image.fromarray(coarse, mode="F").resize((w + 2 * period, h + 2 * period), Image.BILINEAR)
    return np.asarray(img)[period : period + h, period : period + w]


def draw_face(h: int, w: int, lm: np.ndarray, seed: int = 0) -> np.ndarray:
    """A face-like RGB image for landmarks ``lm``: textured background, skin, lips, eyes."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    bg = np.stack([60 + 80 * xx / w, 90 + 60 * yy / h, 140 - 40 * xx / w], axis=-1)
    base = Image.fromarray(np.clip(bg, 0, 255).astype(np.uint8))
    d = ImageDraw.Draw(base)
    pts = lambda idx: [(float(lm[i, 0]), float(lm[i, 1])) for i in idx]  # noqa: E731
    d.polygon(pts(FACE_OVAL), fill=SKIN)
    d.polygon(pts(LIPS_OUTER), fill=LIP)  # lips closed: the inner-lip sliver is lip too
    for eye in (RIGHT_EYE, LEFT_EYE):
        d.polygon(pts(eye), fill=SCLERA)
        c = lm[list(eye), :2].mean(axis=0)
        r = 0.3 * float(np.ptp(lm[list(eye), 0]))
        iris = Image.new("RGB", (w, h), IRIS)
        lids = Image.new("L", (w, h), 0)
        ImageDraw.Draw(lids).polygon(pts(eye), fill=255)
        disc = Image.new("L", (w, h), 0)
        ImageDraw.Draw(disc).ellipse((c[0] - r, c[1] - r, c[0] + r, c[1] + r), fill=255)
        base.paste(iris, (0, 0), Image.fromarray(np.minimum(np.asarray(lids), np.asarray(disc))))  # cut by the lids
    img = np.asarray(base).astype(np.float32)
    img += 28.0 * texture(h, w, 5, seed)[..., None]
    return np.clip(img, 0, 255).astype(np.uint8)


def mask_of(h: int, w: int, polygon: np.ndarray) -> np.ndarray:
    img = Image.new("L", (w, h), 0)
    ImageDraw.Draw(img).polygon([(float(x), float(y)) for x, y in polygon], fill=1)
    return np.asarray(img, dtype=bool)


def luma(img: np.ndarray) -> np.ndarray:
    return img.astype(np.float64) @ np.array([0.299, 0.587, 0.114])


@pytest.fixture(scope="module")
def face256():
    lm = posed(80.0, (128.0, 120.0), yaw=0.1, pitch=-0.05, roll=0.05)
    return draw_face(256, 256, lm), lm


# --------------------------------------------------------------------------- basics
def test_identity_render_reproduces_reference(face256):
    img, lm = face256
    with Generator(img, lm) as gen:
        out = gen.render(lm)
    assert out.shape == img.shape and out.dtype == np.uint8
    err = np.abs(out.astype(np.int16) - img.astype(np.int16))
    assert err.mean() < 0.3
    # everywhere but the mouth interior (resampled once more through its atlas) it is exact
    inner = mask_of(256, 256, lm[list(LIPS_INNER), :2])
    grown = np.zeros_like(inner)
    for dy in range(-2, 3):
        for dx in range(-2, 3):
            grown |= np.roll(inner, (dy, dx), axis=(0, 1))
    assert err[~grown].max() <= 1


def test_render_returns_a_new_frame_each_time(face256):
    img, lm = face256
    with Generator(img, lm) as gen:
        a = gen.render(lm)
        b = gen.render(lm + np.float32([3, 0, 0]))
        assert a is not b and not np.shares_memory(a, b)
        assert not np.array_equal(a, b)
        assert not np.shares_memory(a, gen.reference_image)


def test_translation_moves_the_face(face256):
    img, lm = face256
    shift = np.array([6.0, -4.0])
    with Generator(img, lm) as gen:
        out = gen.render(lm + np.float32([shift[0], shift[1], 0]))
    # the face's centre patch, found again by exhaustive search in the output
    cx, cy = np.round(lm[[1, 4, 5, 195], :2].mean(axis=0)).astype(int)
    patch = img[cy - 30 : cy + 30, cx - 24 : cx + 24].astype(np.float64)
    best, err = None, np.inf
    for dy in range(-10, 11):
        for dx in range(-10, 11):
            cand = out[cy - 30 + dy : cy + 30 + dy, cx - 24 + dx : cx + 24 + dx].astype(np.float64)
            e = np.mean((cand - patch) ** 2)
            if e < err:
                best, err = (dx, dy), e
    assert best == (6, -4)
    assert err < 4.0


def test_background_far_from_the_face_is_unchanged():
    lm = posed(40.0, (160.0, 150.0))
    img = draw_face(320, 320, lm, seed=3)
    with Generator(img, lm) as gen:
        out = gen.render(lm + np.float32([5, 3, 0]))
        x0, y0, x1, y1 = gen.face_box
    assert 0 < x0 < x1 < 320 and 0 < y0 < y1 < 320
    outside = np.ones((320, 320), bool)
    outside[y0:y1, x0:x1] = False
    assert np.array_equal(out[outside], img[outside])
    # the box corners lie outside the static ring: reference pixels there too
    assert np.array_equal(out[y0 : y0 + 3, x0 : x0 + 3], img[y0 : y0 + 3, x0 : x0 + 3])
    # but the face did move
    assert np.abs(out[y0:y1, x0:x1].astype(int) - img[y0:y1, x0:x1]).mean() > 2.0


def test_face_box_follows_a_face_that_moves_away():
    lm = posed(40.0, (150.0, 160.0))
    img = draw_face(320, 320, lm, seed=4)
    with Generator(img, lm) as gen:
        gen.render(lm)
        rest = gen.face_box
        moved = lm + np.float32([30.0, 0.0, 0.0])
        out = gen.render(moved)
        box = gen.face_box
    assert box[2] > rest[2] and box[0] == rest[0]  # grew to the right, still covers the reference
    # the whole moved face is rendered (not clipped at the reference's box): its right cheek
    # patch is where it should be
    x, y = np.round(moved[454, :2]).astype(int) - np.array([6, 0])
    src = np.round(lm[454, :2]).astype(int) - np.array([6, 0])
    a = out[y - 4 : y + 4, x - 4 : x + 4].astype(float)
    b = img[src[1] - 4 : src[1] + 4, src[0] - 4 : src[0] + 4].astype(float)
    assert np.abs(a - b).mean() < 6.0


def test_head_rotation_changes_the_face_not_the_corners(face256):
    img, lm = face256
    drv = posed(80.0, (128.0, 120.0), yaw=0.35, pitch=-0.05, roll=0.05)
    with Generator(img, lm) as gen:
        out = gen.render(drv)
    face = mask_of(256, 256, lm[list(FACE_OVAL), :2])
    assert np.abs(out[face].astype(int) - img[face]).mean() > 5.0
    assert np.array_equal(out[:4, :4], img[:4, :4])


# --------------------------------------------------------------------------- mouth and eyes
def _open_mouth(iod: float, centre: tuple[float, float], **pose: float) -> np.ndarray:
    b = default_basis()
    return posed(iod, centre, shape=b.mean + 4.0 * b.std[0] * b.modes[0], **pose)


def test_open_mouth_shows_a_dark_interior_not_stretched_lips(face256):
    img, lm = face256
    drv = _open_mouth(80.0, (128.0, 120.0), yaw=0.1, pitch=-0.05, roll=0.05)
    with Generator(img, lm) as gen:
        out = gen.render(drv)
    inner = mask_of(256, 256, drv[list(LIPS_INNER), :2])
    ref_inner = mask_of(256, 256, lm[list(LIPS_INNER), :2])
    assert inner.sum() > 2.5 * ref_inner.sum()  # the driving mouth is much more open
    # lower half of the opening (below the upper-teeth band): a dark cavity
    ys = np.nonzero(inner)[0]
    lower = inner & (np.arange(256)[:, None] > (ys.min() + ys.max()) / 2)
    lip_luma = luma(np.array([LIP]))[0]
    assert luma(out[lower]).mean() < 0.75 * lip_luma
    # and the interior is not simply the lips stretched: it differs from the lip colour
    assert np.abs(out[lower].astype(float) - np.array(LIP)).mean() > 40


def _closed_eyes(lm: np.ndarray) -> np.ndarray:
    drv = lm.copy()
    for upper, lower in ((RIGHT_LIDS[0], RIGHT_LIDS[2]), ((466, 388, 387, 386, 385, 384, 398), (249, 390, 373, 374, 380, 381, 382))):
        drv[list(upper)] = drv[list(lower)]
    return drv


def test_closed_eyes_cover_the_eyeball_with_lid_skin(face256):
    img, lm = face256
    with Generator(img, lm) as gen:
        shut = gen.render(_closed_eyes(lm))
        still = gen.render(lm)
    for eye in (RIGHT_EYE, LEFT_EYE):
        region = mask_of(256, 256, lm[list(eye), :2])
        # shrink the region a little: the lower lid keeps its own lash line
        inner = region & np.roll(region, 2, axis=0) & np.roll(region, -2, axis=0)
        assert luma(still[inner]).min() < 80  # open: the dark iris is there
        assert luma(shut[inner]).min() > 120  # shut: no iris, no sclera, lid skin
        assert np.abs(shut[inner].astype(float) - np.array(SKIN)).mean() < 30


def test_lids_move_over_a_still_eyeball(face256):
    """Lids opened wider uncover more eyeball; the eyeball itself is not stretched with them."""
    img, lm = face256
    drv = lm.copy()
    for upper, lower in ((RIGHT_LIDS[0], RIGHT_LIDS[2]), ((466, 388, 387, 386, 385, 384, 398), (249, 390, 373, 374, 380, 381, 382))):
        drv[list(upper)] = drv[list(lower)] + 1.6 * (lm[list(upper)] - lm[list(lower)])
    with Generator(img, lm) as gen:
        out = gen.render(drv)
    for eye in (RIGHT_EYE, LEFT_EYE):
        before = mask_of(256, 256, lm[list(eye), :2])
        before &= np.roll(before, 1, axis=0) & np.roll(before, -1, axis=0)
        assert before.sum() > 40
        assert np.abs(out[before].astype(float) - img[before]).mean() < 4.0  # iris where it was
        after = mask_of(256, 256, drv[list(eye), :2])
        uncovered = out[after & ~before].astype(float)
        assert np.abs(uncovered - np.array(SKIN)).mean() > 40  # eyeball (iris, sclera), not lid skin


def test_half_closed_face_mesh_eye_renders_shut(face256):
    """Face Mesh keeps ~40 % of the lid gap on a shut eye; the generator closes it fully."""
    img, lm = face256
    drv = lm.copy()
    for upper, lower in ((RIGHT_LIDS[0], RIGHT_LIDS[2]), ((466, 388, 387, 386, 385, 384, 398), (249, 390, 373, 374, 380, 381, 382))):
        drv[list(upper)] = drv[list(lower)] + 0.45 * (lm[list(upper)] - lm[list(lower)])
    with Generator(img, lm) as gen:
        out = gen.render(drv)
    region = mask_of(256, 256, lm[list(RIGHT_EYE), :2])
    inner = region & np.roll(region, 2, axis=0) & np.roll(region, -2, axis=0)
    assert luma(out[inner]).min() > 120


def test_wide_eyed_reference_does_not_make_every_frame_squint(face256):
    """Blink shaping adapts to the driving face's usual opening (a decaying maximum)."""
    img, lm = face256
    drv = lm.copy()
    for upper, lower in ((RIGHT_LIDS[0], RIGHT_LIDS[2]), ((466, 388, 387, 386, 385, 384, 398), (249, 390, 373, 374, 380, 381, 382))):
        drv[list(upper)] = drv[list(lower)] + 0.72 * (lm[list(upper)] - lm[list(lower)])
    with Generator(img, lm) as gen:
        first = gen.render(drv)
        for _ in range(60):  # two seconds of a narrower-eyed driver
            last = gen.render(drv)
    region = mask_of(256, 256, drv[list(RIGHT_EYE), :2])
    inner = region & np.roll(region, 1, axis=0) & np.roll(region, -1, axis=0)
    dark_first = np.count_nonzero(luma(first[inner]) < 80)  # iris pixels
    dark_last = np.count_nonzero(luma(last[inner]) < 80)
    assert dark_first < 0.7 * dark_last  # at first the lid comes down (read as half-closed)
    assert np.abs(last[inner].astype(int) - img[inner]).mean() < 6  # then: the driver's open eye


# --------------------------------------------------------------------------- frames
def test_large_frame_only_rerenders_the_face_box():
    lm = posed(100.0, (1100.0, 500.0), yaw=-0.1)
    img = draw_face(1080, 1920, lm, seed=5)
    with Generator(img, lm) as gen:
        out = gen.render(_open_mouth(100.0, (1106.0, 497.0), yaw=-0.05))
        x0, y0, x1, y1 = gen.face_box
    assert out.shape == (1080, 1920, 3) and out.dtype == np.uint8
    assert (x1 - x0) * (y1 - y0) < 0.2 * 1920 * 1080
    assert x0 <= lm[:, 0].min() and x1 >= lm[:, 0].max() and y0 <= lm[:, 1].min() and y1 >= lm[:, 1].max()
    outside = np.ones((1080, 1920), bool)
    outside[y0:y1, x0:x1] = False
    assert np.array_equal(out[outside], img[outside])
    assert not np.array_equal(out[y0:y1, x0:x1], img[y0:y1, x0:x1])


def test_face_driven_out_of_the_frame_still_renders(face256):
    img, lm = face256
    with Generator(img, lm) as gen:
        for offset in ([2000.0, 0.0, 0.0], [-300.0, 400.0, 0.0], [0.0, 0.0, 5000.0]):
            out = gen.render(lm + np.float32(offset))
            assert out.shape == img.shape and out.dtype == np.uint8
        huge = gen.render(lm * np.float32(1e6))
        assert huge.shape == img.shape


def test_face_at_the_frame_edge(face256):
    img, lm = face256
    edge = lm + np.float32([-100.0, 0.0, 0.0])  # half the face outside the reference
    ref = draw_face(256, 256, edge, seed=2)
    with Generator(ref, edge) as gen:
        out = gen.render(edge + np.float32([4.0, 2.0, 0.0]))
        x0, _, x1, _ = gen.face_box
    assert out.shape == img.shape
    assert x0 == 0 and x1 < 256
    visible = mask_of(256, 256, edge[list(FACE_OVAL), :2])
    assert np.abs(out[visible].astype(int) - ref[visible]).mean() > 2.0  # the visible half moved
    assert np.array_equal(out[:, x1:], ref[:, x1:])


def test_reduced_flow_resolution_is_close_to_full(face256):
    img, lm = face256
    drv = _open_mouth(80.0, (131.0, 118.0), yaw=0.2, pitch=-0.05, roll=0.08)
    with Generator(img, lm) as full, Generator(img, lm, flow_scale=0.5) as half:
        a, b = full.render(drv), half.render(drv)
        assert half.flow_scale == 0.5
    diff = np.abs(a.astype(int) - b.astype(int))
    assert diff.mean() < 0.5
    assert np.percentile(diff, 99) <= 6


# --------------------------------------------------------------------------- bad input
def test_bad_inputs_raise_value_error(face256):
    img, lm = face256
    bad_images = [img.astype(np.float32), img[..., 0], img[..., :2], np.zeros((1, 1, 3), np.uint8), "img"]
    for bad in bad_images:
        with pytest.raises(ValueError):
            Generator(bad, lm)
    bad_landmarks = [lm[:, :2], lm[:467], lm.astype(np.int32), lm.reshape(-1), None]
    nan, inf = lm.copy(), lm.copy()
    nan[10, 1] = np.nan
    inf[3, 0] = np.inf
    bad_landmarks += [nan, inf]
    for bad in bad_landmarks:
        with pytest.raises(ValueError):
            Generator(img, bad)
    for scale in (0.0, 1.5, -1.0, True, "1"):
        with pytest.raises(ValueError):
            Generator(img, lm, flow_scale=scale)
    with pytest.raises(ValueError):
        Generator(img, lm + np.float32([5000.0, 0.0, 0.0]))  # reference face not in its image
    with Generator(img, lm) as gen:
        for bad in bad_landmarks:
            with pytest.raises(ValueError):
                gen.render(bad)
        with pytest.raises(ValueError):
            gen.render(np.zeros((468, 3), np.float32))  # collapsed to a point
        # float64 landmarks are fine
        assert gen.render(lm.astype(np.float64)).shape == img.shape


# --------------------------------------------------------------------------- internals
def test_warp_graph_is_rank4_gridsample_opset17():
    model = onnx.load_from_string(warp_model_bytes())
    assert {o.domain: o.version for o in model.opset_import}[""] == WARP_OPSET == 17
    ops = [n.op_type for n in model.graph.node]
    assert ops.count("GridSample") == 1
    for value in list(model.graph.input) + list(model.graph.output):
        assert len(value.type.tensor_type.shape.dim) == 4


def test_rasterizer_matches_brute_force():
    rng = np.random.default_rng(7)
    h, w, t = 40, 52, 25
    xy = rng.uniform(-8, 60, (t, 3, 2))
    xy[0] = [[3, 3], [20, 3], [3, 20]]  # axis-aligned edges on exact pixel rows and columns
    z = rng.uniform(0, 10, (t, 3))
    attr = rng.uniform(-1, 1, (t, 3, 2))
    out = np.full((h, w, 2), -5.0, np.float32)
    Rasterizer().draw(xy, z, attr, out)
    yy, xx = np.mgrid[0:h, 0:w].astype(float)
    best = np.full((h, w), np.inf)
    ref = np.full((h, w, 2), -5.0)
    for k in range(t):
        a, b, c = xy[k]
        d = (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])
        l1 = ((xx - a[0]) * (c[1] - a[1]) - (yy - a[1]) * (c[0] - a[0])) / d
        l2 = ((b[0] - a[0]) * (yy - a[1]) - (b[1] - a[1]) * (xx - a[0])) / d
        l0 = 1 - l1 - l2
        inside = (l0 >= -1e-9) & (l1 >= -1e-9) & (l2 >= -1e-9)
        depth = l0 * z[k, 0] + l1 * z[k, 1] + l2 * z[k, 2]
        m = inside & (depth < best)
        best[m] = depth[m]
        for ch in range(2):
            ref[..., ch][m] = (l0 * attr[k, 0, ch] + l1 * attr[k, 1, ch] + l2 * attr[k, 2, ch])[m]
    covered = np.isfinite(best)
    assert np.array_equal(covered, out[..., 0] != -5.0)
    assert np.abs(out[covered] - ref[covered]).max() < 1e-4


def test_mesh_is_current_and_consistent():
    mesh = load_mesh()
    assert mesh.source_hash == mean_face_hash(default_basis().mean), "rebuild: python tools/build_mesh.py"
    assert mesh.triangles.min() >= 0 and mesh.triangles.max() < mesh.n_vertices
    assert np.count_nonzero(mesh.labels == LABEL_MOUTH) == len(LIPS_INNER) - 2
    assert np.count_nonzero(mesh.labels == LABEL_EYE_RIGHT) == len(RIGHT_EYE) - 2
    assert np.count_nonzero(mesh.labels == LABEL_EYE_LEFT) == len(LEFT_EYE) - 2
    assert set(np.unique(mesh.ring_level)) == {1, 2, 3, 4}
    assert np.all(mesh.ring_rigidity[mesh.ring_level == 4] == 0)
