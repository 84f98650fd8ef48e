"""What the eyes do: iris position and lid opening per eye (and the brows, for measuring).

Face Mesh's 468 landmarks carry no iris and never close the eye contour on a blink (its lid
gap stays at 40-65 % of the open value on a shut eye).  MediaPipe's Iris model (same pinned
wheel) sees both: it takes a 64x64 crop around one eye (2.3 eye widths, rotated with the
eye-corner line; the model was trained on the subject's right eye, so the left eye's crop
is mirrored) and returns 71 eye-region contour points and 5 iris points (centre, then
four on the limbus).  Its first 16 contour points follow Face Mesh's eye contour: the lower
lid from the outer to the inner corner (0..8), then the upper lid back (9..15).

Per eye (index 0 = the subject's right eye, image left; 1 = the left eye) an
:class:`EyeState` holds, in units that transfer from face to face:

* ``gaze`` (x, y): iris centre minus the midpoint of Face Mesh's eye corners, in eye widths
  (Face Mesh corner to corner), along the head's horizontal (outer corner of the right eye
  -> outer corner of the left eye) and its downward perpendicular;
* ``openness``: the Iris model's lid gap (mean of the three middle lid pairs, perpendicular
  to the corner line) over the same eye width — about 0.2 open, below 0.08 shut;
* ``brow``: height of the brow (mean of its ten Face Mesh points) above the eye-corner
  midpoint, in inter-ocular distances — measured, not coded: the expression basis carries the
  brows (better than this raw measurement would: it tracked brows with r 0.91 against 0.82).

:class:`EyeTracker` runs the model on each frame, drops eyes it cannot see (a foreshortened
far eye on a turned head, implausible iris geometry) and substitutes the other eye, holds
the gaze while the lids are closing (the iris estimate is meaningless under a lid) and
smooths (gaze: One-Euro at 2 Hz; lids: at 8 Hz, so a 3-frame blink keeps its depth and timing).  Pure apart from the
inference session it is given.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image

from ._filter import OneEuroFilter
from ._geometry import Roi, crop

__all__ = [
    "EYE_VALUES",
    "EyeModel",
    "EyeObservation",
    "EyeState",
    "EyeTracker",
    "eye_state",
]

INPUT_SIZE = 64
#: crop side in eye widths (MediaPipe's iris pipeline uses the same factor)
_CROP_SCALE = 2.3
#: Face Mesh eye corners (outer, inner) of the right and the left eye
_CORNERS = ((33, 133), (263, 362))
#: Face Mesh brow points (upper and lower rows) of the right and the left brow
_BROWS = (
    (70, 63, 105, 66, 107, 46, 53, 52, 65, 55),
    (300, 293, 334, 296, 336, 276, 283, 282, 295, 285),
)
#: the three middle (upper, lower) lid pairs, as indices into the Iris model's contour
_LID_PAIRS = ((11, 3), (12, 4), (13, 5))
#: coded values per frame: common gaze x, y (mean of the eyes), half their difference x, y
#: (vergence), lid opening of the right and the left eye
EYE_VALUES = 6
#: plausible iris radius, in eye widths (the human iris is ~11.7 mm, the eye ~30 mm wide)
_IRIS_RADIUS_RANGE = (0.08, 0.4)
#: a far eye narrower than this fraction of the near one (head turned ~55 deg) is not used
_MIN_WIDTH_RATIO = 0.55
#: smallest eye width (pixels) the model is run on
_MIN_EYE_PX = 6.0
#: an eye that reads open must show a luminance spread inside its lid contour (sclera against
#: iris: 40-110 on real eyes): sunglasses or a hand read as half-shut eyes looking down over a
#: nearly uniform region.  Per frame (``eye_state``) only a flat region is refused outright
#: (a closing eye reads 0.1-0.15 open with a spread of ~15, like a hand); the tracker refuses
#: a spread below _MIN_CONTRAST where the eye reads at least _OPEN_CLAIM of its usual opening.
_OPEN_CLAIM = 0.7
_MIN_CONTRAST = 30.0
_FLAT = 10.0
#: the gaze is held while the eye is below this fraction of its usual opening (a blink: the
#: iris estimate under a closing lid is meaningless; looking down narrows the eye far less)
_GAZE_HOLD = 0.55


@dataclass(frozen=True)
class EyeObservation:
    """Raw Iris-model output for both eyes, in image pixels: ``contour`` (2, 16, 2) lid
    contours (lower lid outer->inner, upper lid outer->inner), ``iris`` (2, 5, 2) iris
    centre and four limbus points; ``contrast`` (2,): the luminance spread (90th minus 10th
    percentile, 0..255) of the image inside each lid contour (``None``: not measured)."""

    contour: np.ndarray
    iris: np.ndarray
    contrast: np.ndarray | None = None


@dataclass(frozen=True, eq=False)
class EyeState:
    """One frame's eyes (see the module docstring for units); ``visible`` per eye."""

    gaze: np.ndarray  # (2, 2)
    openness: np.ndarray  # (2,)
    brow: np.ndarray  # (2,)
    iris_radius: np.ndarray  # (2,) in eye widths
    visible: np.ndarray  # (2,) bool

    def as_array(self) -> np.ndarray:
        """The 6 coded values: common gaze x, y (the eyes' mean), half the difference of the
        eyes' gaze x, y (right minus left), openness of the right and the left eye.  The eyes
        move together: coded this way, each eye's own estimation noise averages out and the
        vergence (slow, small) costs next to nothing."""
        g = self.gaze
        return np.concatenate([0.5 * (g[0] + g[1]), 0.5 * (g[0] - g[1]), self.openness]).astype(np.float64)

    @classmethod
    def from_array(cls, values: np.ndarray, iris_radius: np.ndarray | None = None) -> "EyeState":
        """From the 6 coded values (brows unknown: 0)."""
        v = np.asarray(values, np.float64).reshape(6)
        gaze = np.stack([v[:2] + v[2:4], v[:2] - v[2:4]])
        radius = np.full(2, 0.2) if iris_radius is None else np.asarray(iris_radius, np.float64)
        return cls(gaze, v[4:6].copy(), np.zeros(2), radius, np.ones(2, bool))


def _eye_roi(lm: np.ndarray, a: int, b: int) -> Roi:
    """Crop of one eye: centred between corners ``a`` (image left) and ``b``, rotated with them."""
    pa, pb = lm[a, :2].astype(np.float64), lm[b, :2].astype(np.float64)
    d = pb - pa
    width = float(np.hypot(*d))
    c = 0.5 * (pa + pb)
    return Roi(float(c[0]), float(c[1]), _CROP_SCALE * max(width, 1.0), math.atan2(-d[1], d[0]))


class EyeModel:
    """Runs the Iris model on both eyes of a face given its Face Mesh landmarks."""

    def __init__(self, session) -> None:
        self._session = session

    def __call__(self, image: np.ndarray | Image.Image, landmarks: np.ndarray) -> EyeObservation:
        img = image if isinstance(image, Image.Image) else Image.fromarray(image)
        contour = np.empty((2, 16, 2), np.float32)
        iris = np.empty((2, 5, 2), np.float32)
        for e, (outer, inner) in enumerate(_CORNERS):
            # crops run image-left -> image-right; the left eye's is mirrored into a right eye
            roi = _eye_roi(landmarks, outer, inner) if e == 0 else _eye_roi(landmarks, inner, outer)
            x = crop(img, roi, INPUT_SIZE)
            if e == 1:
                x = x[:, ::-1]
            out = self._session.run({"input": np.ascontiguousarray(x[None])})
            ec = out["eye_contours"].reshape(71, 3)[:16, :2].astype(np.float32)
            ir = out["iris"].reshape(5, 3)[:, :2].astype(np.float32)
            if e == 1:
                ec[:, 0] = INPUT_SIZE - ec[:, 0]
                ir[:, 0] = INPUT_SIZE - ir[:, 0]
            contour[e] = roi.to_image(ec, INPUT_SIZE)
            iris[e] = roi.to_image(ir, INPUT_SIZE)
        return EyeObservation(contour, iris, np.array([_contrast(img, contour[e]) for e in range(2)]))


def _contrast(img: Image.Image, contour: np.ndarray) -> float:
    """Luminance spread (p90 - p10) of the image inside a lid contour (0 when it covers no pixel)."""
    from PIL import ImageDraw

    lo = np.floor(contour.min(axis=0)).astype(int)
    hi = np.ceil(contour.max(axis=0)).astype(int) + 1
    w, h = img.size
    x0, y0 = max(int(lo[0]), 0), max(int(lo[1]), 0)
    x1, y1 = min(int(hi[0]), w), min(int(hi[1]), h)
    if x1 - x0 < 2 or y1 - y0 < 2:
        return 0.0
    mask = Image.new("L", (x1 - x0, y1 - y0), 0)
    ImageDraw.Draw(mask).polygon([(float(x - x0), float(y - y0)) for x, y in contour], fill=1)
    m = np.asarray(mask, bool)
    if np.count_nonzero(m) < 4:
        return 0.0
    lum = np.asarray(img.crop((x0, y0, x1, y1)).convert("L"), np.float32)[m]
    return float(np.percentile(lum, 90) - np.percentile(lum, 10))


def _axes(lm: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    d = lm[263, :2].astype(np.float64) - lm[33, :2].astype(np.float64)
    iod = float(np.hypot(*d))
    ex = d / max(iod, 1e-9)
    return ex, np.array([-ex[1], ex[0]]), iod


def eye_state(obs: EyeObservation, landmarks: np.ndarray) -> EyeState:
    """Per-eye features of one frame (no smoothing, no substitution)."""
    ex, ey, iod = _axes(landmarks)
    gaze = np.zeros((2, 2))
    openness = np.zeros(2)
    brow = np.zeros(2)
    radius = np.zeros(2)
    visible = np.ones(2, bool)
    widths = np.array([np.linalg.norm(landmarks[a, :2] - landmarks[b, :2]) for a, b in _CORNERS], np.float64)
    for e in range(2):
        c = obs.contour[e].astype(np.float64)
        a, b = _CORNERS[e]
        # normalised by Face Mesh's eye corners: the receiver has those, not the Iris contour
        mid = 0.5 * (landmarks[a, :2] + landmarks[b, :2]).astype(np.float64)
        w = max(float(widths[e]), 1e-6)
        width = float(np.linalg.norm(c[0] - c[8]))
        centre = obs.iris[e, 0].astype(np.float64)
        gaze[e] = ((centre - mid) @ ex / w, (centre - mid) @ ey / w)
        openness[e] = max(0.0, float(np.mean([(c[lo] - c[up]) @ ey for up, lo in _LID_PAIRS])) / w)
        radius[e] = float(np.mean(np.linalg.norm(obs.iris[e, 1:] - obs.iris[e, 0], axis=1))) / w
        brow_pt = landmarks[list(_BROWS[e]), :2].astype(np.float64).mean(axis=0)
        brow[e] = float((mid - brow_pt) @ ey) / max(iod, 1e-6)
        lo, hi = _IRIS_RADIUS_RANGE
        visible[e] = (
            width >= _MIN_EYE_PX
            and widths[e] >= _MIN_WIDTH_RATIO * widths.max()
            and lo <= radius[e] <= hi
            and abs(gaze[e, 0]) < 0.45
            and abs(gaze[e, 1]) < 0.45
            and bool(np.all(np.isfinite(c)))
            and not (obs.contrast is not None and openness[e] >= 0.1 and obs.contrast[e] < _FLAT)
        )
    return EyeState(gaze, openness, brow, radius, visible)


class EyeTracker:
    """Per-frame eye states for a tracked face: the Iris model, visibility, blink-safe smoothing.

    Call :meth:`update` once per frame with the frame and the face's raw landmarks (``None``
    when no face: the filter is reset).  Returns ``None`` when neither eye has been seen yet.
    """

    def __init__(self, model: EyeModel, *, min_cutoff: float = 2.0, beta: float = 4.0, lid_cutoff: float = 8.0) -> None:
        self.model = model
        #: gaze: steady at rest (the iris estimate jitters), fast on a saccade
        self.filter = OneEuroFilter(min_cutoff=min_cutoff, beta=beta)
        #: lids: a blink closes in 2-3 frames and must not lag; the quantiser's hysteresis
        #: removes what jitter this leaves
        self.lid_filter = OneEuroFilter(min_cutoff=lid_cutoff, beta=beta)
        self.reset()

    def reset(self) -> None:
        self.filter.reset()
        self.lid_filter.reset()
        self._last: np.ndarray | None = None  # last raw 8 values used
        self._open = np.zeros(2)  # running "usual open" level per eye
        self._radius = np.full(2, 0.2)

    def update(self, frame: np.ndarray | Image.Image, landmarks: np.ndarray | None, t: float) -> EyeState | None:
        if landmarks is None:
            self.reset()
            return None
        obs = self.model(frame, landmarks)
        st = eye_state(obs, landmarks)
        vis = st.visible.copy()
        if obs.contrast is not None:  # reads as open as usual, over a uniform region: not an eye
            vis &= ~((st.openness >= _OPEN_CLAIM * self._open) & (obs.contrast < _MIN_CONTRAST) & (self._open > 0))
        v = np.column_stack([st.gaze, st.openness])  # per eye: gaze x, gaze y, openness
        if not vis.any():
            if self._last is None:
                return None
            v = self._last.reshape(2, 3).copy()
        elif not vis.all():  # one eye hidden: the eyes move together, copy the visible one
            good = int(np.argmax(vis))
            v[1 - good] = v[good]
        for e in range(2):
            o = v[e, 2]
            self._open[e] = max(self._open[e] * 0.99, o)
            if self._last is not None and o < _GAZE_HOLD * self._open[e]:
                v[e, :2] = self._last.reshape(2, 3)[e, :2]  # lid closing: the iris estimate is unreliable
            if vis[e]:
                self._radius[e] = 0.9 * self._radius[e] + 0.1 * st.iris_radius[e]
        self._last = v.reshape(-1).copy()
        gaze = self.filter(v[:, :2], t, scale=1.0).astype(np.float64)
        lids = self.lid_filter(v[:, 2], t, scale=1.0).astype(np.float64)
        return EyeState(gaze, np.maximum(lids, 0.0), st.brow.copy(), self._radius.copy(), vis.copy())
