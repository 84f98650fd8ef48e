"""INT8 Q/DQ version of a trained refiner (``python -m facelink.train refiner-int8``).

The same quantization the encoder models get (:mod:`facelink.models._quantize`): int8 weights
per output channel for every ``Conv``, per-tensor symmetric activations on every convolution's
input, ranges calibrated on real refiner inputs (the validation persons' samples, never an
evaluation person).  The two output layers stay float: the ``ConvTranspose`` writes the
residual, whose small values carry the whole correction, and the flow head's ``Conv`` writes
the motion correction in pixels, where a quantization step would be a visible shift.  The result runs on ONNX Runtime's CPU provider and
builds a strongly typed INT8 engine on TensorRT.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnx

from ..calibration._ranges import compute_ranges
from ..generator._refine import STRIDE
from ..models._quantize import plan_quantization, quantize_model

__all__ = ["quantize_refiner"]


def _crop(x: np.ndarray) -> np.ndarray:
    """The largest top-left window of a (6, h, w) input whose sides are multiples of the stride."""
    h, w = (x.shape[1] // STRIDE) * STRIDE, (x.shape[2] // STRIDE) * STRIDE
    return np.ascontiguousarray(x[:, :h, :w], dtype=np.float32)


def quantize_refiner(model_path: Path, inputs: Sequence[np.ndarray], out_path: Path, *, method: str = "percentile") -> dict:
    """Write the Q/DQ refiner to ``out_path``; returns the record stored in its metadata."""
    model = onnx.load(str(model_path))
    inits = {t.name: t for t in model.graph.initializer}
    heads = [n.name for n in model.graph.node if n.op_type == "Conv" and n.input[1] in inits and inits[n.input[1]].dims[0] == 2]
    floats = {h: "flow head (motion in pixels)" for h in heads}
    plan = plan_quantization(model, floats)
    crops = [_crop(x) for x in inputs]
    ranges = compute_ranges(model, plan.calibrated, crops, method)
    info = {}
    for p in model.metadata_props:
        if p.key == "facelink.refiner":
            info = json.loads(p.value)
    record = {
        **info,
        "int8": {"method": method, "calibration_inputs": len(crops), "quantized_convs": len(plan.convs), "ranges": ranges},
    }
    q = quantize_model(model, ranges, floats, metadata={"facelink.refiner": json.dumps(record, sort_keys=True)})
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_suffix(".tmp")
    onnx.save(q, str(tmp))
    tmp.replace(out_path)
    return record
