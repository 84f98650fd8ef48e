"""Rigid geometry: weighted similarity alignment and yaw/pitch/roll conversions.

Conventions: image axes x right, y down, z away from the camera (Face Mesh's depth grows
away from the viewer).  ``R = Rz(roll) @ Ry(yaw) @ Rx(pitch)`` maps the canonical face
(upright, frontal, in image-like axes) into the camera frame.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["Pose", "matrix_from_euler", "euler_from_matrix", "similarity_fit"]


def matrix_from_euler(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """Rotation matrix from angles in radians (``Rz(roll) @ Ry(yaw) @ Rx(pitch)``)."""
    cy, sy = math.cos(yaw), math.sin(yaw)
    cp, sp = math.cos(pitch), math.sin(pitch)
    cr, sr = math.cos(roll), math.sin(roll)
    rx = np.array([[1, 0, 0], [0, cp, -sp], [0, sp, cp]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rz = np.array([[cr, -sr, 0], [sr, cr, 0], [0, 0, 1]])
    return rz @ ry @ rx


def euler_from_matrix(r: np.ndarray) -> tuple[float, float, float]:
    """(yaw, pitch, roll) in radians of a rotation built as in :func:`matrix_from_euler`."""
    yaw = math.asin(max(-1.0, min(1.0, -float(r[2, 0]))))
    pitch = math.atan2(float(r[2, 1]), float(r[2, 2]))
    roll = math.atan2(float(r[1, 0]), float(r[0, 0]))
    return yaw, pitch, roll


@dataclass(frozen=True)
class Pose:
    """Head pose: canonical face -> image pixels.  Angles in radians, translation in pixels,
    scale in pixels per canonical unit (the canonical inter-ocular distance is 1).

    Weak perspective: there is no depth translation, so projected depth is relative to the
    head's centre (only depth order matters downstream, for visibility)."""

    yaw: float
    pitch: float
    roll: float
    tx: float
    ty: float
    scale: float

    @property
    def rotation(self) -> np.ndarray:
        return matrix_from_euler(self.yaw, self.pitch, self.roll)

    def apply(self, shape: np.ndarray) -> np.ndarray:
        """Project a canonical (N, 3) shape to image pixels (x, y) and pixel-unit depth z."""
        out = self.scale * (shape @ self.rotation.T)
        out[:, 0] += self.tx
        out[:, 1] += self.ty
        return out.astype(np.float32)

    def as_array(self) -> np.ndarray:
        return np.array([self.yaw, self.pitch, self.roll, self.tx, self.ty, self.scale], dtype=np.float64)

    @classmethod
    def from_array(cls, a: np.ndarray) -> "Pose":
        return cls(*(float(v) for v in a[:6]))


def similarity_fit(src: np.ndarray, dst: np.ndarray, w: np.ndarray | None = None) -> tuple[float, np.ndarray, np.ndarray]:
    """Weighted least-squares ``dst ~ s * R @ src + t`` (Umeyama 1991), proper rotation only.

    ``src`` and ``dst`` are (N, 3); returns ``(s, R, t)``.
    """
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    w = np.full(len(src), 1.0 / len(src)) if w is None else np.asarray(w, dtype=np.float64) / np.sum(w)
    mu_s = w @ src
    mu_d = w @ dst
    a = src - mu_s
    b = dst - mu_d
    cov = (b * w[:, None]).T @ a
    u, sig, vt = np.linalg.svd(cov)
    d = np.ones(3)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        d[2] = -1.0
    r = (u * d) @ vt
    var_s = float(w @ np.sum(a * a, axis=1))
    s = float(np.sum(sig * d) / max(var_s, 1e-12))
    t = mu_d - s * r @ mu_s
    return s, r, t
