"""Where a model's ONNX graph lives: the FP32 conversion or its INT8 Q/DQ graph.

Apart from :mod:`._fetch` (fetch + convert) and :mod:`._quantize` (INT8 build, which needs the
fetched graphs) so that neither imports the other back.
"""

from __future__ import annotations

from pathlib import Path

from ._fetch import MODEL_SPECS, _ensure, facelink_home
from ._quantize import int8_model_path

__all__ = ["model_path"]


def model_path(name: str, precision: str = "fp32") -> Path:
    """Path of the ONNX graph of model ``name``, fetching and converting it on first use.

    ``precision`` ``"fp32"``: the converted graph.  ``"int8"``: its symmetric Q/DQ INT8 graph,
    built from the pinned source and the package's calibration table on first use (see
    :mod:`facelink.models._quantize`; detector and landmark model only).
    """
    spec = MODEL_SPECS.get(name)
    if spec is None:
        raise ValueError(f"unknown model {name!r}; choose from {', '.join(sorted(MODEL_SPECS))}")
    if precision == "int8":
        return int8_model_path(name)
    if precision != "fp32":
        raise ValueError(f"unknown precision {precision!r}; choose fp32 or int8")
    target = facelink_home() / "models" / spec.onnx_filename
    if target.is_file():
        return target
    return _ensure((spec,), None, False, None)[name]
