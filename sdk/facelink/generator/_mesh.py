"""The generator's triangle mesh: Face Mesh landmarks plus virtual rings around the head.

The mesh (``data/mesh.npz``) is computed by ``tools/build_mesh.py`` from the canonical mean face;
this module loads it and names the Face Mesh contours the generator relies on.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import numpy as np

from ..face._topology import LIPS_INNER, LIPS_INNER_LOWER, LIPS_INNER_UPPER, LIPS_OUTER

__all__ = [
    "FACE_OVAL",
    "LABEL_EYE_LEFT",
    "LABEL_EYE_RIGHT",
    "LABEL_FACE",
    "LABEL_MOUTH",
    "LABEL_RING",
    "LASH_FRACTION",
    "LEFT_CORNERS",
    "LEFT_EYE",
    "LEFT_LIDS",
    "LIPS_INNER",
    "LIPS_INNER_LOWER",
    "LIPS_INNER_UPPER",
    "LIPS_OUTER",
    "RIGHT_CORNERS",
    "RIGHT_EYE",
    "RIGHT_LIDS",
    "Mesh",
    "load_mesh",
    "mean_face_hash",
]

N_LANDMARKS = 468

#: eye contours (closed polygons); "right" is the subject's right eye (image left)
RIGHT_EYE = (33, 7, 163, 144, 145, 153, 154, 155, 133, 173, 157, 158, 159, 160, 161, 246)
LEFT_EYE = (263, 249, 390, 373, 374, 380, 381, 382, 362, 398, 384, 385, 386, 387, 388, 466)
#: lid contours as (upper, crease above it, lower) triples of 7 landmarks, and the eye corners
RIGHT_LIDS = ((246, 161, 160, 159, 158, 157, 173), (247, 30, 29, 27, 28, 56, 190), (7, 163, 144, 145, 153, 154, 155))
LEFT_LIDS = ((466, 388, 387, 386, 385, 384, 398), (467, 260, 259, 257, 258, 286, 414), (249, 390, 373, 374, 380, 381, 382))
RIGHT_CORNERS = (33, 133)
LEFT_CORNERS = (263, 362)
#: the derived lash-line points sit this fraction of the way from the lash line to the crease
LASH_FRACTION = 0.35
#: the face's outline (closed polygon, clockwise from the forehead)
FACE_OVAL = (10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377,
             152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109)

#: triangle labels stored in mesh.npz
LABEL_FACE = 0
LABEL_MOUTH = 1
LABEL_EYE_RIGHT = 2
LABEL_EYE_LEFT = 3
LABEL_RING = 4


def mean_face_hash(mean: np.ndarray) -> str:
    """Hex SHA-256 of a mean face (float32 bytes): ties mesh.npz to the basis it was built from."""
    return hashlib.sha256(np.ascontiguousarray(mean, dtype=np.float32).tobytes()).hexdigest()


@dataclass(frozen=True, eq=False)
class Mesh:
    """Triangles over ``468 + D + R`` vertices (landmarks, derived points, ring points).

    ``derived`` (D, 2) landmark pairs and ``derived_weight`` (D,): derived point
    ``(1 - w) L[a] + w L[b]``; ``derived_eye`` (D,) 0 right / 1 left eye (lash-line points).
    ``ring_points`` (R, 3) are canonical coordinates; ``ring_rigidity`` (R,) how much of the
    rigid head motion each ring point follows; ``ring_level`` (R,) 1 (rigid ring) .. 4 (static).
    """

    triangles: np.ndarray
    labels: np.ndarray
    derived: np.ndarray
    derived_weight: np.ndarray
    derived_eye: np.ndarray
    ring_points: np.ndarray
    ring_rigidity: np.ndarray
    ring_level: np.ndarray
    source_hash: str

    @property
    def n_vertices(self) -> int:
        return N_LANDMARKS + len(self.derived) + len(self.ring_points)

    @property
    def ring_start(self) -> int:
        """Index of the first ring point among the vertices."""
        return N_LANDMARKS + len(self.derived)


@lru_cache(maxsize=1)
def load_mesh() -> Mesh:
    """The committed mesh (``facelink/generator/data/mesh.npz``)."""
    with resources.as_file(resources.files(__package__) / "data" / "mesh.npz") as p, np.load(p) as z:
        return Mesh(
            triangles=z["triangles"].astype(np.int32),
            labels=z["labels"].astype(np.uint8),
            derived=z["derived"].astype(np.int64),
            derived_weight=z["derived_weight"].astype(np.float64),
            derived_eye=z["derived_eye"].astype(np.int64),
            ring_points=z["ring_points"].astype(np.float64),
            ring_rigidity=z["ring_rigidity"].astype(np.float64),
            ring_level=z["ring_level"].astype(np.uint8),
            source_hash=str(z["source_hash"]),
        )
