"""Keypoint representation: rigid geometry, the committed basis, fitting and reconstruction."""

import math

import numpy as np
import pytest

from facelink.keypoints import (
    KeypointFitter,
    Pose,
    canonicalize,
    default_basis,
    euler_from_matrix,
    matrix_from_euler,
    similarity_fit,
)


@pytest.fixture(scope="module")
def basis():
    return default_basis()


@pytest.mark.parametrize("angles", [(0.3, -0.2, 0.1), (-0.5, 0.4, -0.7), (0.0, 0.0, 0.0), (1.2, -0.1, 2.5)])
def test_euler_round_trip(angles):
    r = matrix_from_euler(*angles)
    assert np.allclose(r @ r.T, np.eye(3), atol=1e-12)
    assert np.isclose(np.linalg.det(r), 1.0)
    assert np.allclose(euler_from_matrix(r), angles, atol=1e-9)


def test_yaw_turns_about_the_vertical_axis():
    r = matrix_from_euler(math.radians(30), 0, 0)
    # a point on the vertical axis does not move under yaw; one on x gains depth
    assert np.allclose(r @ [0, 1, 0], [0, 1, 0])
    assert abs((r @ [1, 0, 0])[2]) > 0.4


def test_similarity_fit_recovers_a_known_transform():
    rng = np.random.default_rng(0)
    src = rng.normal(size=(468, 3))
    r = matrix_from_euler(0.2, -0.3, 0.4)
    dst = 2.5 * src @ r.T + [10, -4, 3]
    s, r2, t = similarity_fit(src, dst)
    assert np.isclose(s, 2.5) and np.allclose(r2, r) and np.allclose(t, [10, -4, 3])


def test_similarity_fit_never_returns_a_reflection():
    rng = np.random.default_rng(1)
    src = rng.normal(size=(50, 3))
    dst = src * [-1, 1, 1]  # a mirror image
    _, r, _ = similarity_fit(src, dst)
    assert np.linalg.det(r) > 0


def test_committed_basis_is_orthonormal_and_consistent(basis):
    m = basis.matrix(basis.max_k)
    assert basis.max_k >= 24
    assert np.allclose(m @ m.T, np.eye(basis.max_k), atol=1e-4)
    assert np.all(np.diff(basis.std) <= 1e-9), "modes sorted by variance"
    assert np.isclose(np.linalg.norm(basis.mean[263] - basis.mean[33]), 1.0, atol=1e-3)
    assert np.allclose(basis.mean.mean(0), 0, atol=1e-3)
    assert basis.weights.shape == (468,) and np.all(basis.weights > 0)
    assert basis.motion.shape == (6 + basis.max_k,) and np.all(basis.motion > 0)
    assert len(basis.basis_id) == 8


def _face(basis, pose: Pose, coeffs=None, k=0):
    fitter = KeypointFitter(basis, basis.mean, k)
    return fitter.reconstruct(pose, np.zeros(k) if coeffs is None else coeffs)


def test_fit_recovers_pose_and_expression(basis):
    ref_pose = Pose(0.05, -0.02, 0.01, 128, 120, 60)
    ref = _face(basis, ref_pose)
    fitter, pose0 = KeypointFitter.from_reference(basis, ref, 16)
    assert np.allclose(pose0.as_array(), ref_pose.as_array(), atol=1e-6)
    coeffs = basis.std[:16] * np.linspace(-1.5, 1.5, 16)
    drv_pose = Pose(0.3, 0.15, -0.1, 140, 110, 66)
    lm = fitter.reconstruct(drv_pose, coeffs)
    pose, c = fitter.fit(lm)
    rec = fitter.reconstruct(pose, c)
    assert np.abs(rec - lm).max() < 0.05  # pixels
    assert np.allclose(c, coeffs, atol=0.02)
    assert abs(pose.yaw - 0.3) < 0.01 and abs(pose.scale - 66) < 0.5


def test_fit_is_exact_for_the_reference_itself(basis):
    rng = np.random.default_rng(2)
    ref = _face(basis, Pose(0.1, 0.0, 0.0, 100, 100, 50)) + rng.normal(scale=0.5, size=(468, 3)).astype(np.float32)
    fitter, _ = KeypointFitter.from_reference(basis, ref, 16)
    pose, c = fitter.fit(ref)
    assert np.abs(c).max() < 1e-6
    rec = fitter.reconstruct(pose, c)
    assert np.abs(rec[:, :2] - ref[:, :2]).max() < 1e-3
    dz = rec[:, 2] - ref[:, 2]
    assert np.ptp(dz) < 1e-3, "depth is coded relative to the head (no depth translation)"


def test_coefficients_are_clamped_against_tracker_glitches(basis):
    ref = _face(basis, Pose(0, 0, 0, 100, 100, 50))
    fitter, _ = KeypointFitter.from_reference(basis, ref, 8)
    wild = fitter.reconstruct(Pose(0, 0, 0, 100, 100, 50), basis.std[:8] * 50)
    _, c = fitter.fit(wild)
    assert np.all(np.abs(c) <= 6 * basis.std[:8] + 1e-9)


def test_canonicalize_inverts_the_pose(basis):
    pose = Pose(-0.2, 0.1, 0.3, 50, 60, 40)
    lm = _face(basis, pose)
    shape, p = canonicalize(basis, lm)
    assert np.allclose(shape, basis.mean, atol=1e-4)
    assert np.allclose(p.as_array(), pose.as_array(), atol=1e-5)


def test_bad_k_is_a_value_error(basis):
    with pytest.raises(ValueError):
        KeypointFitter(basis, basis.mean, basis.max_k + 1)
