"""The expression basis FaceLink fits from real landmark tracks (``tools/fit_basis.py``)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np

__all__ = ["ExpressionBasis", "default_basis"]


@dataclass(frozen=True, eq=False)
class ExpressionBasis:
    """Mean face, orthonormal expression modes and rigid-alignment weights.

    ``mean`` (468, 3) canonical face (inter-ocular distance 1, centred); ``modes``
    (K_max, 468, 3) orthonormal deformation modes sorted by variance; ``std`` (K_max,)
    the standard deviation of each mode's coefficient over the training tracks;
    ``weights`` (468,) how much each landmark counts in the rigid fit (stable points
    count more, so expression does not leak into pose); ``motion`` (6 + K_max,) the mean
    absolute frame-to-frame change at 30 fps of each coded field (yaw, pitch, roll in
    degrees, tx, ty in face units, log scale, then the coefficients), which sets the
    entropy models for any quantiser step.
    """

    mean: np.ndarray
    modes: np.ndarray
    std: np.ndarray
    weights: np.ndarray
    motion: np.ndarray

    @property
    def max_k(self) -> int:
        return int(self.modes.shape[0])

    @property
    def basis_id(self) -> bytes:
        """8-byte content hash: a stream names the basis it was coded with."""
        h = hashlib.sha256()
        for a in (self.mean, self.modes, self.std, self.weights, self.motion):
            h.update(np.ascontiguousarray(a, dtype=np.float32).tobytes())
        return h.digest()[:8]

    def matrix(self, k: int) -> np.ndarray:
        """(k, 1404) mode matrix for the first ``k`` modes."""
        return self.modes[:k].reshape(k, 468 * 3)

    def save(self, path: str | Path) -> None:
        np.savez_compressed(
            path,
            mean=self.mean.astype(np.float32),
            modes=self.modes.astype(np.float32),
            std=self.std.astype(np.float32),
            weights=self.weights.astype(np.float32),
            motion=self.motion.astype(np.float32),
        )

    @classmethod
    def load(cls, path: str | Path) -> "ExpressionBasis":
        with np.load(path) as z:
            return cls(
                z["mean"].astype(np.float64),
                z["modes"].astype(np.float64),
                z["std"].astype(np.float64),
                z["weights"].astype(np.float64),
                z["motion"].astype(np.float64),
            )


@lru_cache(maxsize=1)
def default_basis() -> ExpressionBasis:
    """The committed basis (``facelink/keypoints/data/basis.npz``)."""
    with resources.as_file(resources.files(__package__) / "data" / "basis.npz") as p:
        return ExpressionBasis.load(p)
