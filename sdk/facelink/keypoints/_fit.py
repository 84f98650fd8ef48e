"""Per-frame keypoint fitting: landmarks -> (head pose, expression coefficients) and back."""

from __future__ import annotations

import numpy as np

from ._basis import ExpressionBasis
from ._pose import Pose, euler_from_matrix, similarity_fit

__all__ = ["KeypointFitter", "canonicalize"]

#: coefficients are clamped to this many standard deviations (guards against tracker glitches)
COEFF_CLAMP = 6.0


def _pose_from(s: float, r: np.ndarray, t: np.ndarray) -> Pose:
    yaw, pitch, roll = euler_from_matrix(r)
    return Pose(yaw, pitch, roll, float(t[0]), float(t[1]), s)


def canonicalize(basis: ExpressionBasis, landmarks: np.ndarray) -> tuple[np.ndarray, Pose]:
    """The face in canonical coordinates and the pose that maps it back to the image."""
    s, r, t = similarity_fit(basis.mean, landmarks, basis.weights)
    shape = ((np.asarray(landmarks, np.float64) - t) @ r) / s
    return shape, _pose_from(s, r, t)


class KeypointFitter:
    """Fits ``landmarks ~ pose(identity + sum_k c_k mode_k)`` for one session's identity.

    The identity is the reference face in canonical coordinates (its own expression
    included), so coefficients describe the change from the reference.
    """

    def __init__(self, basis: ExpressionBasis, identity: np.ndarray, k: int, iterations: int = 2) -> None:
        if not 0 <= k <= basis.max_k:
            raise ValueError(f"k must be in 0..{basis.max_k}, got {k}")
        self.basis = basis
        self.identity = np.asarray(identity, dtype=np.float64).reshape(468, 3)
        self.k = k
        self.iterations = iterations
        self._b = basis.matrix(k)  # (k, 1404)
        self._limit = COEFF_CLAMP * basis.std[:k]

    @classmethod
    def from_reference(cls, basis: ExpressionBasis, landmarks: np.ndarray, k: int) -> tuple["KeypointFitter", Pose]:
        identity, pose = canonicalize(basis, landmarks)
        return cls(basis, identity, k), pose

    def shape(self, coeffs: np.ndarray) -> np.ndarray:
        """Canonical shape for expression coefficients (identity + modes)."""
        if self.k == 0:
            return self.identity.copy()
        return self.identity + (np.asarray(coeffs, np.float64) @ self._b).reshape(468, 3)

    def fit(self, landmarks: np.ndarray) -> tuple[Pose, np.ndarray]:
        """Pose and ``k`` expression coefficients for one frame's (468, 3) landmarks."""
        lm = np.asarray(landmarks, dtype=np.float64)
        coeffs = np.zeros(self.k)
        src = self.identity
        for _ in range(self.iterations):
            s, r, t = similarity_fit(src, lm, self.basis.weights)
            canon = ((lm - t) @ r) / s
            if self.k:
                coeffs = np.clip(self._b @ (canon - self.identity).reshape(-1), -self._limit, self._limit)
            src = self.shape(coeffs)
        return _pose_from(s, r, t), coeffs

    def reconstruct(self, pose: Pose, coeffs: np.ndarray) -> np.ndarray:
        """Image-space (468, 3) landmarks for a pose and expression."""
        return pose.apply(self.shape(coeffs))
