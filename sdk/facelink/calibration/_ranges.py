"""Activation ranges: entropy (TensorRT's KL-divergence calibration), percentile and min-max.

Two passes over the crops with ONNX Runtime, on a copy of the graph that exposes the tensors to
calibrate: the first finds each tensor's ``max |x|``, the second fills a fixed 2048-bin histogram
of ``|x|`` over ``[0, max |x|]``.  The methods then pick ``amax`` from that histogram:

* ``minmax``: ``max |x|``;
* ``percentile``: the upper edge of the bin where the cumulative share of ``|x|`` reaches ``p``;
* ``entropy``: TensorRT's calibration (Migacz, "8-bit Inference with TensorRT", GTC 2017): for
  every cut ``i`` in 128..2048 bins, fold the tail into the last kept bin, quantize the kept bins
  to 128 levels, expand back over the non-empty bins, and keep the cut with the smallest
  KL divergence; ``amax = (i + 0.5) * bin width``.

ONNX Runtime's own calibrators (``onnxruntime.quantization.create_calibrator``) compute the same
statistics, but merge histograms chunk by chunk with a bin count that grows with every wider
chunk, which made entropy calibration of these graphs take tens of minutes; fixing the
histogram range in a first pass keeps it to seconds and the memory bounded.  Min-max agrees
with ONNX Runtime's ``MinMaxCalibrater`` exactly (tests/test_calibration.py checks it).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import onnx
from onnx import TensorProto, helper

from ..errors import FaceLinkError

__all__ = ["BINS", "compute_ranges", "entropy_threshold", "percentile_threshold"]

#: histogram bins of |x| per tensor (TensorRT's calibrator uses 2048)
BINS = 2048
#: quantized levels of the positive half of int8 the entropy method simulates
_LEVELS = 128
#: range recorded for a tensor that was exactly zero on every calibration crop (any scale fits)
_ZERO_RANGE = 1e-6

Progress = Callable[[int, int], None]


def entropy_threshold(hist: np.ndarray, width: float) -> float:
    """TensorRT's KL-divergence threshold for a histogram of ``|x|`` with bins of ``width``."""
    hist = np.asarray(hist, dtype=np.float64)
    n = hist.size
    if n <= _LEVELS or hist.sum() <= 0:
        return n * width
    best_i, best_kl = n, np.inf
    csum = np.cumsum(hist)
    total = csum[-1]
    for i in range(_LEVELS, n + 1):
        p = hist[:i].copy()
        p[i - 1] += total - csum[i - 1]  # fold the clipped tail into the last kept bin
        edges = (np.arange(_LEVELS + 1) * i) // _LEVELS
        kept = hist[:i]
        nonzero = kept > 0
        sums = np.add.reduceat(kept, edges[:-1])
        counts = np.add.reduceat(nonzero.astype(np.float64), edges[:-1])
        per_bin = np.divide(sums, counts, out=np.zeros_like(sums), where=counts > 0)
        q = np.repeat(per_bin, np.diff(edges)) * nonzero
        ps, qs = p.sum(), q.sum()
        if ps <= 0 or qs <= 0:
            continue
        p /= ps
        q /= qs
        mask = p > 0
        qm = np.where(q[mask] > 0, q[mask], 1e-12)
        kl = float(np.sum(p[mask] * np.log(p[mask] / qm)))
        if kl < best_kl:
            best_kl, best_i = kl, i
    return (best_i + 0.5) * width if best_i < n else n * width


def percentile_threshold(hist: np.ndarray, width: float, percentile: float) -> float:
    """Upper edge of the bin where the cumulative share of ``|x|`` reaches ``percentile`` %."""
    hist = np.asarray(hist, dtype=np.float64)
    total = hist.sum()
    if total <= 0:
        return hist.size * width
    cdf = np.cumsum(hist) / total
    idx = int(np.searchsorted(cdf, percentile / 100.0, side="left"))
    return (min(idx, hist.size - 1) + 1) * width


def _exposing(model: onnx.ModelProto, tensors: Sequence[str]) -> bytes:
    m = onnx.ModelProto()
    m.CopyFrom(model)
    existing = {o.name for o in m.graph.output}
    for t in tensors:
        if t not in existing:
            m.graph.output.append(helper.make_tensor_value_info(t, TensorProto.FLOAT, None))
    return m.SerializeToString()


def compute_ranges(
    model: onnx.ModelProto,
    tensors: Sequence[str],
    inputs: Sequence[np.ndarray],
    method: str,
    *,
    percentile: float = 99.999,
    bins: int = BINS,
    progress: Progress | None = None,
) -> dict[str, float]:
    """``amax`` of each of ``tensors`` of ``model`` over ``inputs`` (HWC crops, batch added here)."""
    import onnxruntime as ort

    if method not in ("entropy", "percentile", "minmax"):
        raise ValueError(f"unknown calibration method {method!r}; choose entropy, percentile or minmax")
    if not inputs:
        raise FaceLinkError("no calibration crops were collected; pass clips or images that show faces")
    tensors = list(dict.fromkeys(tensors))
    produced = {o for n in model.graph.node for o in n.output} | {i.name for i in model.graph.input}
    missing = [t for t in tensors if t not in produced]
    if missing:
        raise ValueError(f"{model.graph.name} computes no tensor {missing[0]!r}")
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    so.log_severity_level = 3
    sess = ort.InferenceSession(_exposing(model, tensors), so, providers=["CPUExecutionProvider"])
    input_name = model.graph.input[0].name
    out_names = [o.name for o in sess.get_outputs()]
    index = [out_names.index(t) if t in out_names else -1 for t in tensors]
    passes = 1 if method == "minmax" else 2
    total = passes * len(inputs)

    def values(x: np.ndarray) -> list[np.ndarray]:
        feeds = {input_name: np.ascontiguousarray(x[None], dtype=np.float32)}
        outs = sess.run(None, feeds)
        return [np.abs(outs[k]).ravel() if k >= 0 else np.abs(feeds[input_name]).ravel() for k in index]

    amax = np.zeros(len(tensors), dtype=np.float64)
    for j, x in enumerate(inputs):
        for k, v in enumerate(values(x)):
            if v.size:
                amax[k] = max(amax[k], float(v.max()))
        if progress is not None:
            progress(j + 1, total)
    if not np.all(np.isfinite(amax)):
        bad = tensors[int(np.argmin(np.isfinite(amax)))]
        raise FaceLinkError(f"tensor {bad!r} is not finite on the calibration crops; check them")
    if method == "minmax":
        return {t: float(a) if a > 0 else _ZERO_RANGE for t, a in zip(tensors, amax)}
    hists = np.zeros((len(tensors), bins), dtype=np.float64)
    for j, x in enumerate(inputs):
        for k, v in enumerate(values(x)):
            if amax[k] > 0:
                hists[k] += np.histogram(v, bins=bins, range=(0.0, amax[k]))[0]
        if progress is not None:
            progress(len(inputs) + j + 1, total)
    out: dict[str, float] = {}
    for k, t in enumerate(tensors):
        if amax[k] <= 0:
            out[t] = _ZERO_RANGE
            continue
        width = amax[k] / bins
        if method == "entropy":
            value = entropy_threshold(hists[k], width)
        else:
            value = percentile_threshold(hists[k], width, percentile)
        out[t] = float(min(value, amax[k]))
    return out
