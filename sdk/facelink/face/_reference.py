"""The session reference: a still image (or a video's first good frame) with its landmarks and eyes.

Used by every sender (file encoding, live sessions, the C API) and by receivers that drive
another face (motion transfer).
"""

from __future__ import annotations

from typing import Iterable

import numpy as np

from ..codec import Reference
from ..errors import NoFaceError
from ..io import Frame, load_image, open_video
from ..keypoints import KeypointFitter, Pose, default_basis
from ._eyes import eye_state
from ._factory import FaceDetector, LandmarkModel, create_models
from ._tracker import FaceTracker

__all__ = [
    "REFERENCE_QUALITY",
    "load_target",
    "make_reference",
    "pick_reference_frame",
    "prepare_reference",
    "reference_from_frame",
]


#: JPEG quality of the reference image unless told otherwise
REFERENCE_QUALITY = 92


def make_reference(
    image: np.ndarray, models: tuple[FaceDetector, LandmarkModel], *, quality: int = REFERENCE_QUALITY, max_side: int | None = None
) -> Reference:
    """Detect the face in a still image and package image + landmarks as the session reference.

    The landmarks are computed on the image exactly as the receiver will see it (after
    JPEG coding), so both ends agree on the identity shape.  ``quality``: JPEG quality;
    ``max_side``: shrink the image so its longer side is at most this many pixels (the
    receiver renders at the reference's size).  Both trade picture detail for a smaller
    one-off reference.
    """
    det, lm = models
    h, w = image.shape[:2]
    if max_side is not None and max(h, w) > max_side:
        from PIL import Image

        f = max_side / max(h, w)
        size = (max(1, round(w * f)), max(1, round(h * f)))
        image = np.asarray(Image.fromarray(np.ascontiguousarray(image)).resize(size, Image.LANCZOS))
    ref = Reference.create(image, np.zeros((468, 3), np.float32), quality=quality)
    tracker = FaceTracker(det, lm, eyes=False)
    # two passes: detection places the crop, the landmark-derived ROI refines it
    obs = tracker.update(ref.image, 0.0)
    if obs is None:
        raise NoFaceError("reference image: no face found")
    obs = tracker.update(ref.image, 1.0) or obs
    ref = ref.with_landmarks(obs.raw_landmarks)
    iris = getattr(lm, "iris", None)
    if iris is not None:  # what the eyes do in the reference (the receiver's origin for gaze and lids)
        ref = ref.with_eyes(eye_state(iris(ref.image, ref.landmarks), ref.landmarks))
    return ref


#: a reference frame's eyes must be at least this open (lid gap / eye width; ~0.2 open, ~0.08
#: shut): a reference caught mid-blink would keep every frame of the session from opening them
REFERENCE_EYES_OPEN = 0.13
#: how long after the first face the sender waits for open eyes before taking the most open frame
REFERENCE_PATIENCE_S = 2.0


def pick_reference_frame(frames: Iterable[Frame], tracker: FaceTracker, patience_s: float = REFERENCE_PATIENCE_S):
    """The frame to take the session reference from, and its observation: the first frame
    showing a face with both eyes visible and open (``REFERENCE_EYES_OPEN``); if none comes
    within ``patience_s`` of the first face (or before the frames end), the one with the most
    open eyes seen.  Without an eye model, the first face frame.  ``(None, None)`` if no face."""
    best = None
    first_t = None
    best_open = -1.0
    for frame in frames:
        obs = tracker.update(frame.image, frame.time)
        if obs is None:
            continue
        if obs.eyes is None:
            return frame, obs
        opening = float(np.min(obs.eyes.openness)) if bool(np.all(obs.eyes.visible)) else 0.0
        if opening >= REFERENCE_EYES_OPEN:
            return frame, obs
        if opening > best_open:
            best, best_open = (frame, obs), opening
        first_t = frame.time if first_t is None else first_t
        if frame.time - first_t >= patience_s:
            break
    return best if best is not None else (None, None)


def _first_face_frame(uri: str, models) -> tuple[Frame, np.ndarray]:
    """The reference frame of a file (:func:`pick_reference_frame`) and its landmarks (a bounded
    look-ahead for the reference only)."""
    det, lm = models
    with open_video(uri) as video:
        frame, obs = pick_reference_frame(video, FaceTracker(det, lm))
    if frame is None:
        raise NoFaceError(f"{uri}: no face found in any frame")
    return frame, obs.raw_landmarks


def prepare_reference(
    src: str, models, k: int, reference_image: str | None = None, *, quality: int = REFERENCE_QUALITY, max_side: int | None = None
) -> tuple[Reference, Pose | None]:
    """The session reference and anchor pose for a video or capture ``src``.

    Without ``reference_image`` the first frame showing a face is the reference (anchor
    ``None``: the reference's own pose).  With one, the first face frame's pose, seen
    through the reference's identity, anchors the motion; so it does when the first
    frame was shrunk (``max_side``).  ``quality``, ``max_side``: see :func:`make_reference`.
    """
    first, first_lm = _first_face_frame(src, models)
    return reference_from_frame(first.image, first_lm, models, k, reference_image, quality=quality, max_side=max_side)


def reference_from_frame(
    image: np.ndarray,
    landmarks: np.ndarray,
    models,
    k: int,
    reference_image: str | None = None,
    *,
    quality: int = REFERENCE_QUALITY,
    max_side: int | None = None,
) -> tuple[Reference, Pose | None]:
    """The session reference and anchor pose from a source's chosen frame (``image`` and its
    raw ``landmarks``, see :func:`pick_reference_frame`): that frame itself as the reference
    (anchor ``None``), or ``reference_image`` -- or the frame shrunk by ``max_side`` -- with
    the frame's pose, seen through the reference's identity, as the anchor."""
    if reference_image is None:
        reference = make_reference(image, models, quality=quality, max_side=max_side)
        if reference.image.shape[:2] == image.shape[:2]:
            return reference, None
    else:
        reference = make_reference(load_image(reference_image), models, quality=quality, max_side=max_side)
    anchor = KeypointFitter.from_reference(default_basis(), reference.landmarks, k)[0].fit(landmarks)[0]
    return reference, anchor

def load_target(path: str, backend: str = "auto") -> Reference:
    """Another face to drive (motion transfer): image + detected landmarks."""
    try:
        return make_reference(load_image(path), create_models(backend))
    except NoFaceError:
        raise NoFaceError(f"{path}: no face found; motion transfer needs a detectable (human-like) face") from None
