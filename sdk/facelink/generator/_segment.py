"""Person segmentation for the background plate: MediaPipe's selfie-segmentation graph.

The general (square, 256x256) selfie model from the pinned ``mediapipe==0.10.18`` wheel,
converted by FaceLink's own converter (:mod:`facelink.models`), run once per reference on ONNX
Runtime (CPU; on a machine without it, on the generator's backend).  Its input is a square
crop of the reference around the generator's source region (head, hair, shoulders), grown by
``_CONTEXT`` so the shoulders give the network its usual selfie framing, clipped to the image
and stretched to 256x256 with values in [0, 1] (as MediaPipe's ``ImageToTensorCalculator``
does); its output, a person probability (the graph ends in a sigmoid), is resized back.

The generator never downloads for it: the model is used when the cache holds it (``facelink
models fetch``, or any first fetch of the encoder models, which extracts every pinned graph of
the wheel).  Otherwise — no cache, a fetch or conversion error, no backend — :func:`segment`
returns None and the plate falls back to its colour segmentation (``_plate.py``).
"""

from __future__ import annotations

import logging
import threading

import numpy as np
from PIL import Image

from ..errors import BackendUnavailable, FaceLinkError

__all__ = ["SEGMENTATION_MODEL", "segment", "segmentation_available"]

_log = logging.getLogger(__name__)

#: the model's name in :data:`facelink.models.MODEL_SPECS`
SEGMENTATION_MODEL = "selfie_segmentation"
#: the crop around the source region grows by this factor (shoulders and context)
_CONTEXT = 1.25

_lock = threading.Lock()
_session: object | None = None
_failed: str | None = None


def _cached_model_path():
    """The converted model if the cache holds it (or its pinned source), else None."""
    from ..models import MODEL_SPECS, facelink_home, model_path

    spec = MODEL_SPECS[SEGMENTATION_MODEL]
    cache = facelink_home() / "models"
    if not (cache / spec.onnx_filename).is_file() and not (cache / spec.tflite_filename).is_file():
        return None
    return model_path(SEGMENTATION_MODEL)  # converts a cached, verified .tflite locally; no download


def _get_session(backend: str):
    """A process-wide session of the segmentation model, or None (the reason is logged once)."""
    global _session, _failed
    from ..models import facelink_home

    key = str(facelink_home())
    with _lock:
        if _session is not None and _session[0] == key:  # type: ignore[index]
            return _session[1]  # type: ignore[index]
        if _failed == key:
            return None
        try:
            path = _cached_model_path()
            if path is None:
                _log.info(
                    "selfie-segmentation model not cached; the background plate uses colour segmentation "
                    "(run `facelink models fetch` to get it)"
                )
                return None
            from ..backend import available_backends, create_session

            name = "onnxruntime" if "onnxruntime" in available_backends() else backend
            sess = create_session(path, backend=name, threads=2)
        except (FaceLinkError, BackendUnavailable, OSError, ValueError) as exc:
            _log.warning("selfie segmentation unavailable (%s); the background plate uses colour segmentation", exc)
            _failed = key
            return None
        _session = (key, sess)
        return sess


def segmentation_available(backend: str = "auto") -> bool:
    """True when :func:`segment` can run the model here (it is cached and a backend loads it)."""
    return _get_session(backend) is not None


def segment(image: np.ndarray, region: tuple[int, int, int, int], backend: str = "auto") -> np.ndarray | None:
    """Person probability (h, w) float32 in [0, 1] over ``region`` = (x0, y0, x1, y1) of ``image``.

    ``image`` (H, W, 3) uint8 RGB.  None when the model is unavailable (see the module doc).
    """
    sess = _get_session(backend)
    if sess is None:
        return None
    img = np.asarray(image)
    h, w = img.shape[:2]
    x0, y0, x1, y1 = region
    cx, cy = 0.5 * (x0 + x1), 0.5 * (y0 + y1)
    half = 0.5 * _CONTEXT * max(x1 - x0, y1 - y0)
    cx0, cy0 = max(0, int(np.floor(cx - half))), max(0, int(np.floor(cy - half)))
    cx1, cy1 = min(w, int(np.ceil(cx + half))), min(h, int(np.ceil(cy + half)))
    cx0, cy0, cx1, cy1 = min(cx0, x0), min(cy0, y0), max(cx1, x1), max(cy1, y1)  # always covers the region
    crop = Image.fromarray(np.ascontiguousarray(img[cy0:cy1, cx0:cx1]))
    x = np.asarray(crop.resize((256, 256), Image.Resampling.BILINEAR), np.float32)[None] / 255.0
    with _lock:  # one shared session, whose output buffers the next run reuses
        out = sess.run({"input": x})  # type: ignore[attr-defined]
        prob = np.array(out["mask"], np.float32).reshape(256, 256)
    full = np.asarray(Image.fromarray(prob, mode="F").resize((cx1 - cx0, cy1 - cy0), Image.Resampling.BILINEAR))
    return np.clip(full[y0 - cy0 : y1 - cy0, x0 - cx0 : x1 - cx0], 0.0, 1.0).astype(np.float32)
