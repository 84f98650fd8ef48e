"""Face front end: ROI geometry, One-Euro smoothing, detection and tracking on a real portrait."""

import math

import numpy as np
import pytest

from facelink.face import OneEuroFilter, Roi, crop, inter_ocular, roi_from_landmarks


def test_roi_maps_crop_centre_to_roi_centre_and_scales_depth():
    roi = Roi(100.0, 80.0, 64.0, math.radians(30))
    pts = roi.to_image(np.array([[96.0, 96.0, 10.0]]), 192)
    assert np.allclose(pts[0, :2], [100, 80])
    assert np.isclose(pts[0, 2], 10.0 * 64 / 192)


def test_rotated_roi_keeps_the_eye_line_horizontal_in_the_crop():
    lm = np.zeros((468, 3), np.float32)
    lm[:, :2] = np.random.default_rng(0).normal(100, 10, size=(468, 2))
    ang = math.radians(25)
    # outer eye corners on a line rising to the right on screen
    lm[33, :2] = [80, 100]
    lm[263, :2] = [80 + 40 * math.cos(ang), 100 - 40 * math.sin(ang)]
    roi = roi_from_landmarks(lm)
    assert math.isclose(roi.angle, ang, abs_tol=1e-5)
    m = roi.crop_to_image(192)
    inv = np.linalg.inv(np.vstack([m, [0, 0, 1]]))
    a = inv @ [*lm[33, :2], 1]
    b = inv @ [*lm[263, :2], 1]
    assert abs(a[1] - b[1]) < 1e-3 and b[0] > a[0]


def test_crop_samples_the_right_pixels():
    img = np.zeros((100, 200, 3), np.uint8)
    img[40:60, 140:160] = 255  # a white square centred at (150, 50)
    out = crop(img, Roi(150, 50, 20, 0.0), 20)
    assert out.shape == (20, 20, 3) and out.dtype == np.float32
    assert out[2:-2, 2:-2].min() > 0.95
    out2 = crop(img, Roi(50, 50, 20, 0.0), 20)
    assert out2.max() < 0.05


def test_one_euro_is_causal_and_smooths_jitter_without_lagging_motion():
    rng = np.random.default_rng(0)
    f = OneEuroFilter(min_cutoff=1.0, beta=20.0)
    t = np.arange(300) / 30
    still = 100 + rng.normal(0, 1.0, size=300)
    out = np.array([f(np.array([v]), ti, scale=60.0)[0] for v, ti in zip(still, t)])
    assert np.std(np.diff(out[30:])) < 0.35 * np.std(np.diff(still[30:]))
    # causality: changing the future does not change the past
    f2 = OneEuroFilter(min_cutoff=1.0, beta=20.0)
    alt = still.copy()
    alt[200:] += 50
    out2 = np.array([f2(np.array([v]), ti, scale=60.0)[0] for v, ti in zip(alt, t)])
    assert np.array_equal(out[:200], out2[:200])
    # a fast move is followed within a few frames
    f3 = OneEuroFilter(min_cutoff=1.0, beta=20.0)
    step = np.where(np.arange(60) < 30, 0.0, 60.0)
    out3 = [f3(np.array([v]), i / 30, scale=60.0)[0] for i, v in enumerate(step)]
    assert out3[36] > 50


def test_one_euro_rejects_bad_parameters():
    with pytest.raises(ValueError):
        OneEuroFilter(min_cutoff=0)


@pytest.mark.usefixtures("face_models")
class TestOnRealFace:
    def test_detects_and_tracks_the_portrait(self, face_models, portrait):
        from facelink.face import FaceTracker

        tracker = FaceTracker(*face_models)
        obs = tracker.update(portrait, 0.0)
        assert obs is not None and obs.detected and obs.score > 0.9
        iod = inter_ocular(obs.landmarks)
        assert 40 < iod < 120
        # tracking: the next frame follows the landmarks without detection
        obs2 = tracker.update(portrait, 1 / 30)
        assert obs2 is not None and not obs2.detected
        assert np.abs(obs2.raw_landmarks - obs.raw_landmarks)[:, :2].mean() < 0.02 * iod

    def test_follows_a_moving_face_and_redetects_after_loss(self, face_models, portrait):
        from facelink.face import FaceTracker

        tracker = FaceTracker(*face_models)
        h, w = portrait.shape[:2]
        canvas = np.zeros((h, w + 64, 3), np.uint8)
        xs = []
        for i in range(8):
            canvas[:] = 0
            canvas[:, 8 * i : 8 * i + w] = portrait
            obs = tracker.update(canvas, i / 30)
            xs.append(obs.landmarks[1, 0])
        assert np.allclose(np.diff(xs), 8, atol=1.5), xs
        assert tracker.update(np.zeros_like(canvas), 1.0) is None
        obs = tracker.update(canvas, 1.1)
        assert obs is not None and obs.detected

    def test_blank_and_noise_frames_have_no_face(self, face_models):
        from facelink.face import FaceTracker

        tracker = FaceTracker(*face_models)
        assert tracker.update(np.zeros((240, 320, 3), np.uint8), 0.0) is None
        noise = np.random.default_rng(0).integers(0, 255, size=(240, 320, 3), dtype=np.uint8)
        assert tracker.update(noise, 0.1) is None

    def test_small_face_in_a_wide_frame_is_found_by_tiling(self, face_models, portrait):
        from PIL import Image

        from facelink.face import FaceTracker

        small = np.asarray(Image.fromarray(portrait).resize((256, 256)))
        frame = np.full((1080, 1920, 3), 90, np.uint8)
        frame[700:956, 1500:1756] = small
        obs = FaceTracker(*face_models).update(frame, 0.0)
        assert obs is not None
        cx, cy = obs.landmarks[:, :2].mean(0)
        assert 1500 < cx < 1756 and 700 < cy < 956

    def test_picks_one_face_when_several_are_visible(self, face_models, portrait):
        from facelink.face import FaceTracker

        face = portrait[20:276, 100:356]  # a head-and-shoulders crop
        two = np.concatenate([face, face[:, ::-1]], axis=1)
        obs = FaceTracker(*face_models).update(two, 0.0)
        assert obs is not None and obs.faces_detected == 2
        xs = obs.landmarks[:, 0]
        assert xs.max() - xs.min() < face.shape[1], "landmarks belong to a single face"
        assert xs.mean() < face.shape[1] or xs.mean() > face.shape[1]
