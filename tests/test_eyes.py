"""Eyes end to end: features from the Iris model, eye channels in the codec, controls at the
receiver, and the generator's lids, brows and moving iris."""

from __future__ import annotations

import math

import numpy as np
import pytest

from facelink.codec import QUALITY_PRESETS, Reference, StreamDecoder, StreamEncoder
from facelink.codec._stream import eye_reference
from facelink.errors import InvalidPacket
from facelink.face import EyeObservation, EyeState, EyeTracker, eye_state
from facelink.generator import EyeControls
from facelink.generator._eyes import EyeDriver
from facelink.generator._mesh import LEFT_EYE, LEFT_LIDS, RIGHT_EYE, RIGHT_LIDS
from facelink.keypoints import KeypointFitter, Pose, default_basis
from facelink.receiver import EYE_CONTACT_GAIN, Retargeter

from test_generator import IRIS, SKIN, Generator, draw_face, luma, mask_of, posed  # noqa: E402

#: the Iris model's 16 lid-contour points follow these Face Mesh landmarks (lower lid outer ->
#: inner corner, then the upper lid outer -> inner)
CONTOUR = (
    (33, 7, 163, 144, 145, 153, 154, 155, 133, 246, 161, 160, 159, 158, 157, 173),
    (263, 249, 390, 373, 374, 380, 381, 382, 362, 466, 388, 387, 386, 385, 384, 398),
)


def observation(lm: np.ndarray, gaze_px: tuple[float, float] = (0.0, 0.0), radius: float = 5.0) -> EyeObservation:
    """What a perfect Iris model would report on a face with landmarks ``lm``: its lid contour,
    and an iris at the eye-corner midpoint shifted by ``gaze_px``."""
    contour = np.stack([lm[list(c), :2] for c in CONTOUR]).astype(np.float32)
    iris = np.zeros((2, 5, 2), np.float32)
    for e, (a, b) in enumerate(((33, 133), (263, 362))):
        c = 0.5 * (lm[a, :2] + lm[b, :2]) + np.array(gaze_px)
        iris[e] = [c, c + [radius, 0], c + [0, -radius], c + [-radius, 0], c + [0, radius]]
    return EyeObservation(contour, iris)


@pytest.fixture(scope="module")
def face():
    return posed(80.0, (128.0, 120.0))


# ------------------------------------------------------------------ features (face/_eyes.py)


def test_eye_state_measures_gaze_opening_and_brows(face):
    st = eye_state(observation(face, gaze_px=(3.0, -1.5)), face)
    w = np.array([np.linalg.norm(face[33, :2] - face[133, :2]), np.linalg.norm(face[263, :2] - face[362, :2])])
    assert np.allclose(st.gaze[:, 0], 3.0 / w, atol=1e-4) and np.allclose(st.gaze[:, 1], -1.5 / w, atol=1e-4)
    gap = np.mean([face[lo, 1] - face[up, 1] for up, lo in ((160, 144), (159, 145), (158, 153))])
    assert st.openness[0] == pytest.approx(gap / w[0], rel=1e-3)
    ex = (face[263, :2] - face[33, :2]) / np.linalg.norm(face[263, :2] - face[33, :2])
    mid = 0.5 * (face[33, :2] + face[133, :2])
    brow = (mid - face[[70, 63, 105, 66, 107, 46, 53, 52, 65, 55], :2].mean(axis=0)) @ np.array([-ex[1], ex[0]])
    assert st.brow[0] == pytest.approx(brow / np.linalg.norm(face[263, :2] - face[33, :2]), rel=1e-4)
    assert st.visible.all() and np.allclose(st.iris_radius, 5.0 / w, rtol=1e-3)
    assert np.allclose(EyeState.from_array(st.as_array()).as_array(), st.as_array())


def test_an_eye_that_reads_open_but_shows_no_contrast_is_hidden(face):
    # sunglasses or a hand read as half-open eyes looking down, over a uniform region
    obs = observation(face)
    st = eye_state(EyeObservation(obs.contour, obs.iris, np.array([3.0, 95.0])), face)
    assert st.visible.tolist() == [False, True]
    shut = face.copy()
    for upper, _, lower in (RIGHT_LIDS, LEFT_LIDS):
        shut[list(upper)] = shut[list(lower)]
    obs = observation(shut)  # a shut eye has little contrast too, but it reads shut: still visible
    assert eye_state(EyeObservation(obs.contour, obs.iris, np.array([3.0, 3.0])), shut).visible.all()


def test_a_closing_eye_with_little_contrast_is_a_blink_not_a_hidden_eye(face):
    """A closing eye reads 0.1-0.15 open with a luminance spread of ~15: the tracker judges
    contrast against the eye's usual opening, so the blink survives; a lens does not."""

    class Contrast(_ScriptedModel):
        def __init__(self, lm, script, contrast):
            super().__init__(lm, script)
            self.contrast = contrast

        def __call__(self, frame, landmarks):
            obs = super().__call__(frame, landmarks)
            return EyeObservation(obs.contour, obs.iris, np.full(2, self.contrast[self.i - 1]))

    script = [(1.0, 0.0)] * 8 + [(0.5, 0.0)] * 3 + [(1.0, 0.0)] * 4
    contrast = [90.0] * 8 + [15.0] * 3 + [90.0] * 4
    tracker = EyeTracker(Contrast(face, script, contrast))
    out = [tracker.update(None, face, i / 30) for i in range(len(script))]
    assert all(o.visible.all() for o in out)  # the half-closed frames stay visible
    assert min(o.openness[0] for o in out[8:11]) < 0.7 * out[7].openness[0]
    lens = EyeTracker(Contrast(face, [(1.0, 0.0)] * 8 + [(0.9, 0.0)] * 3, [90.0] * 8 + [20.0] * 3))
    seen = [lens.update(None, face, i / 30) for i in range(11)]
    assert not seen[-1].visible.any()  # as open as usual over a uniform region: hidden


def test_implausible_iris_is_not_visible(face):
    st = eye_state(observation(face, radius=40.0), face)  # an iris wider than the eye: not an eye
    assert not st.visible.any()


class _ScriptedModel:
    """Stands in for the Iris model: per call, the next scripted (gap scale, gaze px) for both eyes."""

    def __init__(self, lm: np.ndarray, script: list[tuple[float, float]]) -> None:
        self.lm, self.script, self.i = lm, script, 0

    def __call__(self, frame, landmarks) -> EyeObservation:
        scale, gx = self.script[self.i]
        self.i += 1
        lm = self.lm.copy()
        for upper, _, lower in (RIGHT_LIDS, LEFT_LIDS):
            lm[list(upper)] = lm[list(lower)] + scale * (self.lm[list(upper)] - self.lm[list(lower)])
        return observation(lm, gaze_px=(gx, 0.0))


def test_a_three_frame_blink_survives_tracking_and_the_gaze_is_held(face):
    script = [(1.0, 2.0)] * 10 + [(0.15, -6.0)] * 3 + [(1.0, 2.0)] * 5
    tracker = EyeTracker(_ScriptedModel(face, script))
    out = [tracker.update(None, face, i / 30) for i in range(len(script))]
    opening = np.array([o.openness[0] for o in out])
    assert opening[10:13].min() < 0.4 * opening[9]  # the blink is there, deep
    gaze = np.array([o.gaze[0, 0] for o in out])
    assert np.all(np.abs(gaze[10:13] - gaze[9]) < 0.02)  # the lid hid the iris: gaze held
    assert tracker.update(None, None, 1.0) is None  # face lost: reset


def test_a_hidden_eye_copies_the_visible_one(face):
    class OneEye(_ScriptedModel):
        def __call__(self, frame, landmarks):
            obs = super().__call__(frame, landmarks)
            iris = obs.iris.copy()
            iris[1, 1:] = iris[1, 0] + 60.0  # left iris implausibly large: hidden
            return EyeObservation(obs.contour, iris)

    st = EyeTracker(OneEye(face, [(1.0, 4.0)] * 3)).update(None, face, 0.0)
    assert st.visible.tolist() == [True, False]
    assert st.gaze[1, 0] == pytest.approx(st.gaze[0, 0])


# ------------------------------------------------------------------ codec (eye channels)


def _reference(face: np.ndarray, eyes: EyeState | None) -> Reference:
    img = draw_face(256, 256, face)
    ref = Reference.create(img, face)
    return ref.with_eyes(eyes)


def test_eye_values_round_trip_within_half_a_step(face):
    ref_eyes = eye_state(observation(face), face)
    ref = _reference(face, ref_eyes)
    params = QUALITY_PRESETS["medium"]
    enc = StreamEncoder(ref, params, width=256, height=256, fps=30)
    assert enc.header.version == 3 and enc.header.eye_channels is not None
    values, radius = eye_reference(enc.header)
    assert np.allclose(values, ref_eyes.as_array(), atol=1e-6) and np.allclose(radius, ref_eyes.iris_radius, atol=1e-6)
    dec = StreamDecoder(reference=ref)
    for p in enc.start():
        assert dec.feed(p) is None
    rng = np.random.default_rng(1)
    steps = np.array([params.gaze_step] * 2 + [2 * params.gaze_step] * 2 + [params.open_step] * 2)
    for i in range(40):
        v = ref_eyes.as_array() + rng.normal(0, 0.03, 6)
        pkt, sent = enc.encode(i, i / 30, face, eyes=v)
        got = dec.feed(pkt)
        assert np.array_equal(got.eyes, sent.eyes)
        assert np.all(np.abs(got.eyes - v) <= (0.5 + params.hysteresis) * steps + 1e-9)
    shut = ref_eyes.as_array()
    shut[4:] = 0.02  # the eyes were shut ...
    pkt, sent = enc.encode(40, 40 / 30, face, eyes=shut)
    dec.feed(pkt)
    for i in range(41, 41 + 30):  # ... then vanish (hand, profile): they ease back open, not stay shut
        pkt, sent = enc.encode(i, i / 30, face, eyes=None)
        got = dec.feed(pkt)
    assert np.all(np.abs(got.eyes - ref_eyes.as_array()) <= steps)


def test_streams_without_eye_channels_decode_without_eyes(face):
    ref = _reference(face, None)
    enc = StreamEncoder(ref, QUALITY_PRESETS["medium"].with_(eyes=False), width=256, height=256, fps=30)
    assert enc.header.eye_channels is None
    dec = StreamDecoder(reference=ref)
    for p in enc.start():
        dec.feed(p)
    pkt, _ = enc.encode(0, 0.0, face)
    assert dec.feed(pkt).eyes is None


def test_a_version_1_packet_in_a_newer_session_is_refused(face):
    from facelink.bitstream import NoFace

    ref = _reference(face, None)
    enc = StreamEncoder(ref, QUALITY_PRESETS["medium"], width=256, height=256, fps=30)
    dec = StreamDecoder(reference=ref)
    for p in enc.start():
        dec.feed(p)
    with pytest.raises(InvalidPacket, match="a version 1 packet in a version 3 session"):
        dec.feed(bytes(NoFace(0, version=1)))


def test_reference_without_measured_eyes_gets_nominal_values_and_no_iris(face):
    enc = StreamEncoder(_reference(face, None), QUALITY_PRESETS["low"], width=256, height=256, fps=30)
    values, radius = eye_reference(enc.header)
    assert np.all(radius == 0) and np.all(values[4:] > 0.1) and np.all(values[:4] == 0)


# ------------------------------------------------------------------ receiver (eye controls)


def _retargeter(face: np.ndarray, sender_eyes: np.ndarray | None, **kw) -> Retargeter:
    basis = default_basis()
    return Retargeter(basis, 16, face, None, sender_eyes=sender_eyes, **kw)


def _frame(face: np.ndarray, eyes: np.ndarray | None):
    from facelink.codec import FrameKind, KeypointFrame

    fitter, pose = KeypointFitter.from_reference(default_basis(), face, 16)
    return KeypointFrame(0, 0.0, FrameKind.KEY, pose, np.zeros(16), eyes)


REF_EYES = np.array([0.0, 0.0, 0.0, 0.0, 0.2, 0.2])


def _with(open_r: float, open_l: float, gaze: float = 0.0) -> np.ndarray:
    """Coded eye values: both eyes looking ``gaze`` sideways, these openings."""
    return np.array([gaze, 0.0, 0.0, 0.0, open_r, open_l])


def test_no_eye_channels_no_controls(face):
    assert _retargeter(face, None).eyes(_frame(face, _with(0.2, 0.2))) is None
    assert _retargeter(face, REF_EYES).eyes(_frame(face, None)) is None


def test_blinks_shut_the_lids_and_winks_stay_one_sided(face):
    rt = _retargeter(face, REF_EYES)
    assert np.allclose(rt.eyes(_frame(face, _with(0.2, 0.2))).openness, 1.0)
    assert np.allclose(rt.eyes(_frame(face, _with(0.1, 0.1))).openness, 0.0)  # a blink: both shut
    # bilateral: one eye clearly shut pulls its half-shut partner (the Iris model's weaker eye)
    both = rt.eyes(_frame(face, _with(0.165, 0.1))).openness
    assert both.max() < 0.05
    wink = rt.eyes(_frame(face, _with(0.2, 0.1))).openness  # a wink: the other eye stays open
    assert wink[0] > 0.95 and wink[1] < 0.05
    assert rt.eyes(_frame(face, _with(0.26, 0.26))).openness.min() > 1.2  # wide eyes open wider


def test_gaze_is_a_difference_from_the_reference(face):
    rt = _retargeter(face, REF_EYES)
    c = rt.eyes(_frame(face, _with(0.2, 0.2, gaze=0.1)))
    assert np.allclose(c.gaze[:, 0], 0.1) and np.allclose(c.gaze[:, 1], 0.0)


def test_eye_contact_counter_rotates_the_eyes_against_the_head(face):
    # the head is turned by free view; the eyes must turn back towards the camera
    turned = _retargeter(face, REF_EYES, eye_contact=True, pose_offset_deg=(20.0, 0.0, 0.0))
    c = turned.eyes(_frame(face, _with(0.2, 0.2, gaze=0.05)))  # its usual gaze: removed
    tgt = turned.target_pose.rotation
    d_render = turned.pose(_frame(face, None).pose).rotation.T @ [0, 0, -1]
    expect = EYE_CONTACT_GAIN * (d_render - tgt.T @ [0, 0, -1])[0]
    assert abs(expect) > 0.1
    assert np.allclose(c.gaze[:, 0], expect, atol=1e-6)
    assert np.allclose(c.openness, 1.0)  # lids untouched
    # without free view, eye contact keeps glances away from the usual gaze
    rt = _retargeter(face, REF_EYES, eye_contact=True)
    for _ in range(30):
        rt.eyes(_frame(face, _with(0.2, 0.2, gaze=0.05)))
    glance = rt.eyes(_frame(face, _with(0.2, 0.2, gaze=0.15)))
    assert np.allclose(glance.gaze[:, 0], 0.10, atol=1e-6)


# ------------------------------------------------------------------ generator (lids, brows, iris)


def _reference_eyes(lm: np.ndarray) -> EyeState:
    """The eye state of draw_face's eyes: the iris disc at the eye contour's centroid."""
    c = np.stack([lm[list(e), :2].mean(axis=0) for e in (RIGHT_EYE, LEFT_EYE)])
    mid = np.stack([0.5 * (lm[33, :2] + lm[133, :2]), 0.5 * (lm[263, :2] + lm[362, :2])])
    w = np.array([np.linalg.norm(lm[33, :2] - lm[133, :2]), np.linalg.norm(lm[263, :2] - lm[362, :2])])
    r = np.array([0.3 * float(np.ptp(lm[list(e), 0])) for e in (RIGHT_EYE, LEFT_EYE)])
    ex = (lm[263, :2] - lm[33, :2]) / np.linalg.norm(lm[263, :2] - lm[33, :2])
    ey = np.array([-ex[1], ex[0]])
    gaze = np.stack([[(c[e] - mid[e]) @ ex / w[e], (c[e] - mid[e]) @ ey / w[e]] for e in range(2)])
    opening = eye_state(observation(lm), lm).openness
    return EyeState(gaze, opening, np.zeros(2), r / w, np.ones(2, bool))


def _iris_centroid(img: np.ndarray, region: np.ndarray) -> np.ndarray:
    dark = region & (luma(img) < 90)
    ys, xs = np.nonzero(dark)
    return np.array([xs.mean(), ys.mean()])


@pytest.fixture(scope="module")
def eye_face():
    lm = posed(110.0, (128.0, 124.0))
    rings = ((113, 225, 224, 223, 222, 221, 189), (342, 445, 444, 443, 442, 441, 413))
    for (upper, crease, lower), ring in zip((RIGHT_LIDS, LEFT_LIDS), rings):
        # open the eyes wider (room for the iris to move); the skin above moves with the lid
        lift = 0.7 * (lm[list(upper)] - lm[list(lower)])
        for pts in (upper, crease, ring):
            lm[list(pts)] += lift
    return draw_face(256, 256, lm, seed=3), lm


def test_neutral_controls_reproduce_the_reference(eye_face):
    img, lm = eye_face
    with Generator(img, lm, reference_eyes=_reference_eyes(lm)) as gen:
        out = gen.render(lm, EyeControls.neutral())
    assert np.abs(out.astype(float) - img).mean() < 1.0


def test_gaze_moves_the_iris_inside_the_opening(eye_face):
    img, lm = eye_face
    w = np.linalg.norm(lm[33, :2] - lm[133, :2])
    with Generator(img, lm, reference_eyes=_reference_eyes(lm)) as gen:
        still = gen.render(lm, EyeControls.neutral())
        right = gen.render(lm, EyeControls(np.ones(2), np.array([[0.12, 0.0], [0.12, 0.0]])))
        up = gen.render(lm, EyeControls(np.ones(2), np.array([[0.0, -0.06], [0.0, -0.06]])))
    for eye in (RIGHT_EYE, LEFT_EYE):
        region = mask_of(256, 256, lm[list(eye), :2])
        c0 = _iris_centroid(still, region)
        dx = _iris_centroid(right, region) - c0
        assert dx[0] == pytest.approx(0.12 * w, abs=1.5) and abs(dx[1]) < 1.0
        # looking up: the lid hides the top of the iris and sclera shows under it
        assert _iris_centroid(up, region)[1] < c0[1] - 0.3
        below = region & (np.mgrid[0:256, 0:256][0] > c0[1] + 3)
        assert np.count_nonzero(below & (luma(up) < 90)) < np.count_nonzero(below & (luma(still) < 90)) - 5
        # where the iris was, the eyeball now shows sclera (bright), not iris or skin
        vacated = region & (luma(still) < 90) & ~(luma(right) < 90)
        assert vacated.sum() > 5 and luma(right)[vacated].mean() > 180


def test_shut_lids_cover_the_eye_with_skin(eye_face):
    img, lm = eye_face
    with Generator(img, lm, reference_eyes=_reference_eyes(lm)) as gen:
        shut = gen.render(lm, EyeControls(np.zeros(2), np.zeros((2, 2))))
    for eye in (RIGHT_EYE, LEFT_EYE):
        region = mask_of(256, 256, lm[list(eye), :2])
        inner = region & np.roll(region, 3, axis=0) & np.roll(region, -3, axis=0)
        assert inner.sum() > 20
        assert luma(shut[inner]).min() > 110  # no iris left
        assert np.abs(shut[inner].astype(float) - np.array(SKIN)).mean() < 35  # lid skin
        assert np.abs(np.array(IRIS) - np.array(SKIN)).mean() > 100


def test_lids_are_rebuilt_on_the_lower_lid_and_no_iris_means_no_gaze(eye_face):
    _, lm = eye_face
    ref = lm.astype(np.float64)
    driver = EyeDriver(ref, (RIGHT_LIDS, LEFT_LIDS), [None, None], 468)
    out, closed, shift = driver.drive(ref.copy(), EyeControls(np.array([0.3, 0.0]), np.full((2, 2), 0.1)), 1.0, np.eye(3))
    (up_r, _, lo_r), (up_l, _, lo_l) = RIGHT_LIDS, LEFT_LIDS
    assert np.allclose(out[list(up_r)] - out[list(lo_r)], 0.3 * (ref[list(up_r)] - ref[list(lo_r)]))
    assert np.all(out[list(up_l), 1] >= out[list(lo_l), 1])  # shut: the lid meets (overlaps) the lower lid
    assert closed[1] == 1.0 and 0.0 < closed[0] < 1.0
    assert np.all(shift == 0)  # no iris known: the gaze is not moved


def test_eye_controls_validate():
    with pytest.raises(ValueError, match="openness"):
        EyeControls(np.ones(3), np.zeros((2, 2)))
    with pytest.raises(ValueError, match="gaze"):
        EyeControls(np.ones(2), np.full((2, 2), math.nan))


def test_eye_contact_end_to_end_moves_only_the_eyes(eye_face):
    """Encode a synthetic face with eye channels, decode it re-posed by 20 degrees of yaw with and
    without eye contact: only the eyes differ (the direction is checked on the controls above)."""
    from facelink.receiver import FrameRenderer

    img, lm = eye_face
    ref = Reference.create(img, lm, fmt="PNG").with_eyes(_reference_eyes(lm))
    enc = StreamEncoder(ref, QUALITY_PRESETS["medium"], width=256, height=256, fps=30)
    packets = enc.start() + [enc.encode(i, i / 30, lm, eyes=ref.eyes)[0] for i in range(3)]
    frames = {}
    for contact in (False, True):
        rnd = FrameRenderer(pose_offset=(20.0, 0.0, 0.0), eye_contact=contact, receiver_key=bytes(32))
        frames[contact] = [f.image for f in rnd.render_all(packets)][-1].astype(float)
    diff = np.abs(frames[True] - frames[False]).max(axis=2) > 30
    eyes = np.zeros_like(diff)
    for eye in (RIGHT_EYE, LEFT_EYE):
        x0, y0 = lm[list(eye), :2].min(axis=0) - 12
        x1, y1 = lm[list(eye), :2].max(axis=0) + 12
        eyes[int(y0) : int(y1), int(x0) : int(x1)] = True
    assert diff[eyes].sum() > 10 and not diff[~eyes].any()


def test_lid_atlas_blends_from_the_reference_band_to_the_shut_lid(eye_face):
    img, lm = eye_face
    with Generator(img, lm, reference_eyes=_reference_eyes(lm)) as gen:
        band = gen._lid_bands[0]
        assert np.array_equal(band.atlas(0.0), band.band)  # open: exactly the reference
        shut = band.atlas(1.0)
        full = band.weight[..., 0] > 0.999
        assert full.any() and np.allclose(shut[full], band.shut[full])
        half = band.atlas(0.5)
        lo, hi = np.minimum(band.band, band.shut), np.maximum(band.band, band.shut)
        assert np.all(half >= lo - 1e-4) and np.all(half <= hi + 1e-4)  # never darker (or brighter) than both
        # the warp source follows the eye: shut, then open again restores the reference band
        ys, xs = gen._lid_slots[0]
        gen.render(lm, EyeControls(np.zeros(2), np.zeros((2, 2))))
        assert np.allclose(gen._warp.source[0, :3, ys, xs].transpose(1, 2, 0), shut)
        gen.render(lm, EyeControls.neutral())
        assert np.array_equal(gen._warp.source[0, :3, ys, xs].transpose(1, 2, 0), band.band)


# ------------------------------------------------------------------ the sender's reference frame


class _FakeTracker:
    """Scripted observations: ``None`` (no face) or an eye opening for both eyes."""

    def __init__(self, script, face):
        from facelink.face import FaceObservation, Roi

        self.obs = [
            None if o is None else FaceObservation(face, face, 1.0, Roi(0, 0, 1), False, 1,
                                                   EyeState(np.zeros((2, 2)), np.full(2, o), np.zeros(2), np.full(2, 0.2), np.ones(2, bool)))
            for o in script
        ]  # fmt: skip

    def update(self, image, t):
        return self.obs[int(round(t * 30))]


def _frames(n):
    from facelink.io import Frame

    return [Frame(np.zeros((4, 4, 3), np.uint8), i / 30, i) for i in range(n)]


def test_the_reference_is_not_taken_mid_blink(face):
    from facelink.sender import pick_reference_frame

    # no face, then a blink, then open eyes: the first open frame
    frame, obs = pick_reference_frame(_frames(8), _FakeTracker([None, 0.05, 0.06, 0.2, 0.2, 0.2, 0.2, 0.2], face))
    assert frame.index == 3 and obs is not None
    # eyes never open enough within 2 s: the most open frame seen
    script = [0.05] * 10 + [0.1] + [0.06] * 60
    frame, _ = pick_reference_frame(_frames(len(script)), _FakeTracker(script, face))
    assert frame.index == 10
    assert pick_reference_frame(_frames(3), _FakeTracker([None] * 3, face)) == (None, None)
