"""Evaluation of INT8 against FP32: landmark error, detection agreement, latency, operation counts."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx
from onnx import shape_inference

from ..backend import InferenceSession
from ..face import Detection, FaceDetector
from ..face._landmarks import LEFT_EYE_OUTER, RIGHT_EYE_OUTER

__all__ = [
    "DetectionAgreement",
    "LandmarkError",
    "box_iou",
    "count_macs",
    "detector_box_agreement",
    "jetson_estimate",
    "landmark_error",
    "measure_latency",
]

#: Face Mesh's face-presence logit above which a crop counts as showing a face (sigmoid 0.5)
_FACE_LOGIT = 0.0


@dataclass(frozen=True)
class LandmarkError:
    """INT8 vs FP32 landmark displacement on the same crops, in % of the inter-ocular distance.

    Per crop: mean over the 468 landmarks of the 2-D distance between the INT8 and FP32 outputs,
    divided by the FP32 distance between the outer eye corners (landmarks 33 and 263).  With FP32
    as the reference this is the error INT8 adds; against a ground truth it bounds the increase.
    """

    crops: int
    skipped_no_face: int
    mean: float
    median: float
    p95: float
    max: float
    presence_flips: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "crops": self.crops,
            "skipped_no_face": self.skipped_no_face,
            "mean_pct_iod": round(self.mean, 4),
            "median_pct_iod": round(self.median, 4),
            "p95_pct_iod": round(self.p95, 4),
            "max_pct_iod": round(self.max, 4),
            "presence_flips": self.presence_flips,
        }


def landmark_error(fp32: InferenceSession, int8: InferenceSession, crops: Sequence[np.ndarray]) -> LandmarkError:
    """:class:`LandmarkError` of ``int8`` against ``fp32`` over 192x192 crops (those showing a face)."""
    errs: list[float] = []
    skipped = flips = 0
    for x in crops:
        a = fp32.run({"input": x[None]})
        ref = a["landmarks"].reshape(468, 3)[:, :2].copy()
        ref_flag = float(a["face_flag"].reshape(()))
        b = int8.run({"input": x[None]})
        got = b["landmarks"].reshape(468, 3)[:, :2]
        flag = float(b["face_flag"].reshape(()))
        if ref_flag <= _FACE_LOGIT:
            skipped += 1
            continue
        flips += flag <= _FACE_LOGIT
        iod = float(np.linalg.norm(ref[LEFT_EYE_OUTER] - ref[RIGHT_EYE_OUTER]))
        if iod <= 1e-6:
            skipped += 1
            continue
        errs.append(100.0 * float(np.mean(np.linalg.norm(got - ref, axis=1))) / iod)
    if not errs:
        return LandmarkError(0, skipped, float("nan"), float("nan"), float("nan"), float("nan"), flips)
    e = np.asarray(errs)
    return LandmarkError(
        len(e), skipped, float(e.mean()), float(np.median(e)), float(np.percentile(e, 95)), float(e.max()), int(flips)
    )


def box_iou(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray) -> float:
    """Intersection over union of two ``(x0, y0, x1, y1)`` boxes."""
    ax0, ay0, ax1, ay1 = (float(v) for v in a)
    bx0, by0, bx1, by1 = (float(v) for v in b)
    inter = max(0.0, min(ax1, bx1) - max(ax0, bx0)) * max(0.0, min(ay1, by1) - max(ay0, by0))
    union = (ax1 - ax0) * (ay1 - ay0) + (bx1 - bx0) * (by1 - by0) - inter
    return inter / union if union > 0 else 0.0


@dataclass
class DetectionAgreement:
    """Same face found by FP32 and INT8 on whole frames (:meth:`FaceDetector.detect`, tiles included).

    A frame agrees when neither finds a face, or both do and their most confident boxes overlap
    with IoU > ``iou_threshold``.
    """

    iou_threshold: float = 0.5
    frames: int = 0
    agree: int = 0
    both_none: int = 0
    missed: int = 0  # FP32 found a face, INT8 none
    extra: int = 0  # INT8 found a face, FP32 none
    low_iou: int = 0
    ious: list[float] = field(default_factory=list)

    def add(self, ref: Sequence[Detection], got: Sequence[Detection]) -> None:
        self.frames += 1
        if not ref and not got:
            self.both_none += 1
            self.agree += 1
        elif ref and not got:
            self.missed += 1
        elif got and not ref:
            self.extra += 1
        else:
            iou = box_iou(ref[0].box, got[0].box)
            self.ious.append(iou)
            if iou > self.iou_threshold:
                self.agree += 1
            else:
                self.low_iou += 1

    def compare(self, fp32: FaceDetector, int8: FaceDetector, image: np.ndarray) -> None:
        self.add(fp32.detect(image), int8.detect(image))

    @property
    def rate(self) -> float:
        return self.agree / self.frames if self.frames else float("nan")

    def as_dict(self) -> dict[str, Any]:
        ious = np.asarray(self.ious) if self.ious else np.asarray([np.nan])
        return {
            "frames": self.frames,
            "agree": self.agree,
            "agreement_pct": round(100.0 * self.rate, 3),
            "both_no_face": self.both_none,
            "missed_by_int8": self.missed,
            "extra_in_int8": self.extra,
            "iou_at_most_threshold": self.low_iou,
            "iou_threshold": self.iou_threshold,
            "mean_iou": round(float(np.nanmean(ious)), 4),
            "min_iou": round(float(np.nanmin(ious)), 4),
        }


def _top_box(out: dict[str, np.ndarray]) -> np.ndarray | None:
    """The most confident box of one 128x128 detector run, decoded as :class:`FaceDetector` does."""
    from ..face._detector import ANCHORS, INPUT_SIZE, SCORE_THRESHOLD, _sigmoid, weighted_nms

    raw = out["regressors"][0]
    scores = _sigmoid(out["classificators"][0, :, 0])
    keep = scores >= SCORE_THRESHOLD
    if not keep.any():
        return None
    raw, scores, anc = raw[keep], scores[keep], ANCHORS[keep]
    ctr = raw[:, 0:2] / INPUT_SIZE + anc
    wh = raw[:, 2:4] / INPUT_SIZE
    boxes = np.concatenate([ctr - wh / 2, ctr + wh / 2], axis=1) * INPUT_SIZE
    kps = (raw[:, 4:16].reshape(-1, 6, 2) / INPUT_SIZE + anc[:, None, :]) * INPUT_SIZE
    best = max(weighted_nms(boxes, kps, scores), key=lambda d: d[2])
    return np.asarray(best[0], dtype=np.float64)


def detector_box_agreement(
    fp32: InferenceSession, int8: InferenceSession, inputs: Sequence[np.ndarray]
) -> dict[str, Any]:
    """Top-box agreement of two detector graphs on raw 128x128 inputs (no tiling): share and IoU."""
    agree = 0
    ious: list[float] = []
    for x in inputs:
        a = _top_box({k: v.copy() for k, v in fp32.run({"input": x[None]}).items()})
        b = _top_box(int8.run({"input": x[None]}))
        if a is None or b is None:
            agree += a is None and b is None
            continue
        iou = box_iou(a, b)
        ious.append(iou)
        agree += iou > 0.5
    n = len(inputs)
    return {
        "inputs": n,
        "agreement_pct": round(100.0 * agree / n, 3) if n else float("nan"),
        "mean_iou": round(float(np.mean(ious)), 4) if ious else float("nan"),
    }


def measure_latency(
    make_sessions: Mapping[str, Callable[[], InferenceSession]],
    x: np.ndarray,
    runs: int = 200,
    repeats: int = 5,
    warmup: int = 20,
) -> dict[str, dict[str, Any]]:
    """Per-run latency (ms) of several sessions on the same input, measured interleaved.

    Each of ``repeats`` rounds times a block of ``runs`` calls of every variant in turn, so
    machine load drifts hit all variants alike.  Per variant: the median of its block medians,
    the block medians, and the 10th/90th percentiles of all runs.  ``ratio_to_first``: per round,
    the first variant's block median over this one's, then the median over rounds (paired, so
    robust to load that changes between rounds).
    """
    sessions = {k: f() for k, f in make_sessions.items()}
    try:
        feeds = {k: {s.inputs[0].name: x} for k, s in sessions.items()}
        for k, s in sessions.items():
            for _ in range(warmup):
                s.run(feeds[k])
        blocks: dict[str, list[float]] = {k: [] for k in sessions}
        samples: dict[str, list[float]] = {k: [] for k in sessions}
        for _ in range(repeats):
            for k, s in sessions.items():
                ts = []
                for _ in range(runs):
                    t0 = time.perf_counter()
                    s.run(feeds[k])
                    ts.append(time.perf_counter() - t0)
                blocks[k].append(1000.0 * statistics.median(ts))
                samples[k] += ts
    finally:
        for s in sessions.values():
            s.close()
    first = next(iter(sessions))
    out: dict[str, dict[str, Any]] = {}
    for k in sessions:
        all_ms = np.asarray(samples[k]) * 1000.0
        ratios = [a / b for a, b in zip(blocks[first], blocks[k])]
        out[k] = {
            "median_ms": round(statistics.median(blocks[k]), 3),
            "block_medians_ms": [round(b, 3) for b in blocks[k]],
            "p10_ms": round(float(np.percentile(all_ms, 10)), 3),
            "p90_ms": round(float(np.percentile(all_ms, 90)), 3),
            "runs": runs * repeats,
            "ratio_to_first": round(statistics.median(ratios), 3),
        }
    return out


def count_macs(model: onnx.ModelProto) -> dict[str, Any]:
    """Multiply-accumulates of ``model`` from its static shapes: per op type, per Conv, and total.

    Conv: ``output elements × (input channels / group) × kernel area``; Gemm/MatMul likewise.
    Other ops (adds, activations, pooling, Q/DQ) are counted as elementwise output elements.
    """
    inferred = shape_inference.infer_shapes(model)
    g = inferred.graph
    shapes: dict[str, list[int]] = {}
    for vi in list(g.value_info) + list(g.output) + list(g.input):
        shapes[vi.name] = [d.dim_value for d in vi.type.tensor_type.shape.dim]
    inits = {t.name: list(t.dims) for t in g.initializer}
    for n in g.node:  # DequantizeLinear of a weight keeps the weight's shape
        if n.op_type == "DequantizeLinear" and n.input[0] in inits:
            inits[n.output[0]] = inits[n.input[0]]
    per_op: dict[str, int] = {}
    per_conv: dict[str, int] = {}
    elementwise = 0
    for n in g.node:
        out = shapes.get(n.output[0])
        if not out or any(d <= 0 for d in out):
            continue
        elems = int(np.prod(out))
        if n.op_type == "Conv":
            w = inits.get(n.input[1])
            if w is None:
                continue
            macs = elems * int(np.prod(w[1:]))
            per_conv[n.output[0]] = macs
        elif n.op_type in ("Gemm", "MatMul"):
            a = shapes.get(n.input[0]) or inits.get(n.input[0]) or [1]
            macs = elems * int(a[-1])
        else:
            elementwise += elems
            continue
        per_op[n.op_type] = per_op.get(n.op_type, 0) + macs
    return {"total_macs": sum(per_op.values()), "per_op": per_op, "per_conv": per_conv, "elementwise": elementwise}


def jetson_estimate(
    macs: dict[str, int],
    *,
    dense_int8_tops: float = 20.0,
    utilisations: Sequence[float] = (0.02, 0.05, 0.10),
    layers: dict[str, int] | None = None,
    per_layer_us: float = 8.0,
) -> dict[str, Any]:
    """On-paper Jetson time per model: ``2·MACs / (TOPS × utilisation) + layers × per-layer cost``.

    ``dense_int8_tops``: the board's dense INT8 throughput (Orin Nano 8 GB: 40 TOPS with 2:4
    sparsity, 20 dense — our weights are dense).  ``utilisation``: the share of that peak small
    batch-1 depthwise networks reach (a few percent; 10 % is optimistic).  ``per_layer_us``:
    launch and synchronisation cost per fused TensorRT layer (a few µs each on Orin).
    """
    out: dict[str, Any] = {"assumptions": {
        "dense_int8_tops": dense_int8_tops,
        "ops_per_mac": 2,
        "utilisations": list(utilisations),
        "per_layer_us": per_layer_us,
    }, "models": {}}  # fmt: skip
    for name, m in macs.items():
        n_layers = (layers or {}).get(name, 0)
        row: dict[str, Any] = {"macs": m, "layers": n_layers}
        for u in utilisations:
            compute_ms = 2.0 * m / (dense_int8_tops * 1e12 * u) * 1000.0
            row[f"ms_at_{round(u * 100)}pct"] = round(compute_ms + n_layers * per_layer_us / 1000.0, 3)
        out["models"][name] = row
    return out
