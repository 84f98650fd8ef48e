"""Face Mesh: 468 3-D landmarks from a rotated square crop."""

from __future__ import annotations

import numpy as np
from PIL import Image

from ._geometry import Roi, crop

__all__ = ["LandmarkModel", "roi_from_landmarks", "RIGHT_EYE_OUTER", "LEFT_EYE_OUTER"]

INPUT_SIZE = 192
#: Face Mesh indices of the outer eye corners (subject's right, subject's left)
RIGHT_EYE_OUTER = 33
LEFT_EYE_OUTER = 263


def roi_from_landmarks(lm: np.ndarray, scale: float = 1.5) -> Roi:
    """Next frame's crop from this frame's landmarks: bounding box centre, eye-line rotation."""
    (rx, ry), (lx, ly) = lm[RIGHT_EYE_OUTER, :2], lm[LEFT_EYE_OUTER, :2]
    angle = float(np.arctan2(-(ly - ry), lx - rx))
    # bounding box in the rotated frame, so the crop size does not grow with roll
    c, s = np.cos(angle), np.sin(angle)
    rot = np.array([[c, -s], [s, c]], dtype=np.float32)
    p = lm[:, :2] @ rot.T
    lo, hi = p.min(0), p.max(0)
    centre = ((lo + hi) / 2.0) @ rot
    side = float(max(hi - lo)) * scale
    return Roi(float(centre[0]), float(centre[1]), side, angle)


class LandmarkModel:
    """Runs Face Mesh on one ROI; returns image-space landmarks and the face-presence score.

    ``iris``: the Iris model (:class:`~facelink.face.EyeModel`) that refines the eyes of
    these landmarks (MediaPipe's "face landmarks with iris"); trackers built on this model
    then also report what the eyes do.
    """

    def __init__(self, session, iris=None) -> None:
        self._session = session
        self.iris = iris

    def __call__(self, image: np.ndarray | Image.Image, roi: Roi) -> tuple[np.ndarray, float]:
        x = crop(image, roi, INPUT_SIZE)
        out = self._session.run({"input": x[None]})
        lm = out["landmarks"].reshape(468, 3)
        score = float(0.5 * (1.0 + np.tanh(0.5 * float(out["face_flag"].reshape(())))))
        return roi.to_image(lm, INPUT_SIZE), score
