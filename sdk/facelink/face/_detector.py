"""BlazeFace (short range) face detection: anchors, box decoding, weighted NMS, tiling for small faces."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from ._geometry import Roi, crop

__all__ = ["Detection", "FaceDetector"]

INPUT_SIZE = 128
SCORE_THRESHOLD = 0.5
NMS_IOU = 0.3


@dataclass(frozen=True)
class Detection:
    """One detected face in image pixels: box ``(x0, y0, x1, y1)``, 6 keypoints (eyes, nose, mouth, ears), score."""

    box: tuple[float, float, float, float]
    keypoints: np.ndarray
    score: float

    def roi(self, scale: float = 1.5) -> Roi:
        """The square crop Face Mesh expects: box centre, rotation from the eye keypoints, side scaled."""
        x0, y0, x1, y1 = self.box
        (rx, ry), (lx, ly) = self.keypoints[0], self.keypoints[1]
        angle = float(np.arctan2(-(ly - ry), lx - rx))
        side = max(x1 - x0, y1 - y0) * scale
        return Roi((x0 + x1) / 2.0, (y0 + y1) / 2.0, side, angle)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(x, dtype=np.float64)))


def _anchors() -> np.ndarray:
    """SSD anchor centres of the short-range model: 16x16x2 (stride 8) then 8x8x6 (stride 16)."""
    rows = []
    for stride, per_cell in ((8, 2), (16, 6)):
        g = INPUT_SIZE // stride
        ys, xs = np.meshgrid(np.arange(g), np.arange(g), indexing="ij")
        c = np.stack([(xs + 0.5) / g, (ys + 0.5) / g], axis=-1).reshape(-1, 1, 2)
        rows.append(np.repeat(c, per_cell, axis=1).reshape(-1, 2))
    return np.concatenate(rows).astype(np.float32)


ANCHORS = _anchors()


def _iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    ix0 = np.maximum(box[0], boxes[:, 0])
    iy0 = np.maximum(box[1], boxes[:, 1])
    ix1 = np.minimum(box[2], boxes[:, 2])
    iy1 = np.minimum(box[3], boxes[:, 3])
    inter = np.clip(ix1 - ix0, 0, None) * np.clip(iy1 - iy0, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return inter / np.maximum(area + areas - inter, 1e-9)


def weighted_nms(boxes: np.ndarray, kps: np.ndarray, scores: np.ndarray, iou: float = NMS_IOU):
    """Blend overlapping candidates weighted by score (MediaPipe's WEIGHTED suppression)."""
    order = np.argsort(-scores)
    boxes, kps, scores = boxes[order], kps[order], scores[order]
    alive = np.ones(len(scores), bool)
    out = []
    for i in range(len(scores)):
        if not alive[i]:
            continue
        members = alive & (_iou(boxes[i], boxes) > iou)
        members[i] = True
        w = scores[members][:, None]
        out.append(
            (
                (boxes[members] * w).sum(0) / w.sum(),
                (kps[members].reshape(int(members.sum()), -1) * w).sum(0).reshape(-1, 2) / w.sum(),
                float(scores[i]),
            )
        )
        alive &= ~members
    return out


class FaceDetector:
    """Runs the BlazeFace model on a whole frame, then on overlapping tiles when faces are small."""

    def __init__(self, session, score_threshold: float = SCORE_THRESHOLD) -> None:
        self._session = session
        self.score_threshold = score_threshold

    def _detect_roi(self, img: Image.Image, roi: Roi) -> list[Detection]:
        x = crop(img, roi, INPUT_SIZE) * 2.0 - 1.0
        out = self._session.run({"input": x[None]})
        raw = out["regressors"][0]
        scores = _sigmoid(out["classificators"][0, :, 0])
        keep = scores >= self.score_threshold
        if not keep.any():
            return []
        raw, scores, anc = raw[keep], scores[keep], ANCHORS[keep]
        ctr = raw[:, 0:2] / INPUT_SIZE + anc
        wh = raw[:, 2:4] / INPUT_SIZE
        boxes = np.concatenate([ctr - wh / 2, ctr + wh / 2], axis=1) * INPUT_SIZE
        kps = (raw[:, 4:16].reshape(-1, 6, 2) / INPUT_SIZE + anc[:, None, :]) * INPUT_SIZE
        dets = []
        for b, k, s in weighted_nms(boxes, kps, scores):
            corners = roi.to_image(b.reshape(2, 2), INPUT_SIZE).reshape(-1)
            dets.append(Detection(tuple(float(v) for v in corners), roi.to_image(k, INPUT_SIZE), s))
        return dets

    def detect(self, image: np.ndarray) -> list[Detection]:
        """All faces in an RGB frame, most confident first.

        The whole frame is tried first (letterboxed, as MediaPipe does); if nothing is found
        there, overlapping square tiles of the short side and of half of it are tried, which
        finds faces that are small in 1080p or portrait video.
        """
        h, w = image.shape[:2]
        img = Image.fromarray(image)
        dets = self._detect_roi(img, Roi(w / 2.0, h / 2.0, float(max(w, h))))
        side = float(min(w, h))
        while not dets and side >= 96:
            found = []
            for cy in _tile_centres(h, side):
                for cx in _tile_centres(w, side):
                    found += self._detect_roi(img, Roi(cx, cy, side))
            dets = _merge(found)
            if side <= min(w, h) / 4:
                break
            side /= 2.0
        return sorted(dets, key=lambda d: -d.score)


def _tile_centres(extent: int, side: float) -> list[float]:
    if side >= extent:
        return [extent / 2.0]
    n = int(np.ceil((extent - side) / (side / 2))) + 1
    return list(np.linspace(side / 2, extent - side / 2, n))


def _merge(dets: list[Detection]) -> list[Detection]:
    if len(dets) < 2:
        return dets
    boxes = np.array([d.box for d in dets], dtype=np.float64)
    kps = np.stack([d.keypoints for d in dets]).astype(np.float64)
    scores = np.array([d.score for d in dets])
    return [Detection(tuple(float(v) for v in b), k.astype(np.float32), s) for b, k, s in weighted_nms(boxes, kps, scores)]
