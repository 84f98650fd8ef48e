"""What a viewer reads off a face: mouth opening, eye openness, brows, gaze, eye closures.

Measured the same way on the true and the decoded frames (Face Mesh's raw landmarks plus the
Iris model on both eyes, no smoothing), then compared per clip: Pearson r and mean absolute
error of each cue, and the recall of eye closures (how many of the true clip's closures the
decoded clip also shows).

Cues per frame (``NaN`` where no face was found):

* ``mouth``: inner-lip gap (landmarks 13-14) over the inter-ocular distance;
* ``eye_open``: the Iris model's lid gap over the eye width, mean of both eyes;
* ``brow``: brow height above the eye-corner midpoint in inter-ocular distances, mean of both;
* ``gaze_x``, ``gaze_y``: iris centre relative to the eye-corner midpoint in eye widths, mean
  of both eyes (head horizontal / head down);
* closures: runs of frames whose ``eye_open`` is below ``CLOSED`` of the clip's open level
  (its 90th percentile); a true closure is *shown* when the decoded ``eye_open`` drops below
  the same fraction of the decoded clip's own open level within one frame of it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["CLOSED", "CUES", "Cues", "compare_cues", "cue_values", "eye_moments"]

CUES = ("mouth", "eye_open", "brow", "gaze_x", "gaze_y")
#: an eye below this fraction of the clip's open level counts as closed
CLOSED = 0.7


@dataclass(frozen=True, eq=False)
class Cues:
    """Per-frame cue values, shape (frames, 5) in :data:`CUES` order."""

    values: np.ndarray

    def __getitem__(self, name: str) -> np.ndarray:
        return self.values[:, CUES.index(name)]


def cue_values(frame: np.ndarray, landmarks: np.ndarray | None, iris_model) -> np.ndarray:
    """The five cues of one frame (``landmarks``: raw Face Mesh; ``None``: no face -> NaN)."""
    if landmarks is None:
        return np.full(len(CUES), np.nan)
    from ..face import eye_state, inter_ocular

    iod = max(inter_ocular(landmarks), 1e-6)
    mouth = float(np.linalg.norm(landmarks[13, :2] - landmarks[14, :2])) / iod
    st = eye_state(iris_model(frame, landmarks), landmarks)
    return np.array([mouth, st.openness.mean(), st.brow.mean(), st.gaze[:, 0].mean(), st.gaze[:, 1].mean()])


def _pearson(a: np.ndarray, b: np.ndarray) -> float | None:
    ok = np.isfinite(a) & np.isfinite(b)
    if np.count_nonzero(ok) < 3:
        return None
    x, y = a[ok] - a[ok].mean(), b[ok] - b[ok].mean()
    den = float(np.sqrt((x * x).sum() * (y * y).sum()))
    return float((x * y).sum() / den) if den > 0 else None


def _closures(open_: np.ndarray) -> tuple[np.ndarray, float]:
    ok = np.isfinite(open_)
    if np.count_nonzero(ok) < 3:
        return np.zeros(len(open_), bool), float("nan")
    level = float(np.percentile(open_[ok], 90))
    return ok & (open_ < CLOSED * level), level


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    out, start = [], None
    for i, m in enumerate(mask):
        if m and start is None:
            start = i
        elif not m and start is not None:
            out.append((start, i))
            start = None
    if start is not None:
        out.append((start, len(mask)))
    return out


def compare_cues(true: Cues, decoded: Cues) -> dict[str, float | None]:
    """Per cue ``r_<cue>`` (Pearson) and ``err_<cue>`` (mean absolute error), and
    ``closures`` (true closure events), ``closures_shown`` and ``closure_recall``."""
    if true.values.shape != decoded.values.shape:
        raise ValueError("true and decoded cues must cover the same frames")
    out: dict[str, float | None] = {}
    for name in CUES:
        t, d = true[name], decoded[name]
        ok = np.isfinite(t) & np.isfinite(d)
        out[f"r_{name}"] = _pearson(t, d)
        out[f"err_{name}"] = float(np.mean(np.abs(t[ok] - d[ok]))) if ok.any() else None
    t_closed, _ = _closures(true["eye_open"])
    d_closed, _ = _closures(decoded["eye_open"])
    events = _runs(t_closed)
    shown = sum(1 for a, b in events if d_closed[max(a - 1, 0) : b + 1].any())
    out["closures"] = float(len(events))
    out["closures_shown"] = float(shown)
    out["closure_recall"] = shown / len(events) if events else None
    return out


def eye_moments(true: Cues) -> dict[int, str]:
    """Frames worth looking at (index -> label): the deepest blink, the largest glance away
    from the clip's usual gaze and the widest eyes, where the true clip has them."""
    out: dict[int, str] = {}
    o, gx, gy = true["eye_open"], true["gaze_x"], true["gaze_y"]
    ok = np.isfinite(o) & np.isfinite(gx) & np.isfinite(gy)
    if np.count_nonzero(ok) < 3:
        return out
    idx = np.flatnonzero(ok)
    closed, level = _closures(o)
    if closed.any():
        out[int(idx[np.argmin(o[ok])])] = "deepest blink"
    glance = np.hypot(gx - np.median(gx[ok]), gy - np.median(gy[ok]))
    glance[closed | ~ok] = -1.0  # a shut eye's gaze is noise
    if glance.max() > 0:
        out.setdefault(int(np.argmax(glance)), "largest glance")
    out.setdefault(int(idx[np.argmax(o[ok])]), "widest eyes")
    return out


def measure(frames: Sequence[np.ndarray], observations: Sequence, iris_model) -> Cues:
    """Cues of frames given their tracker observations (raw landmarks are used)."""
    return Cues(
        np.stack([cue_values(f, o.raw_landmarks if o is not None else None, iris_model) for f, o in zip(frames, observations)])
        if len(frames)
        else np.zeros((0, len(CUES)))
    )
