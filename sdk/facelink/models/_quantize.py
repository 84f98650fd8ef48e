"""INT8 Q/DQ graphs of the encoder models, built deterministically from a table of activation ranges.

FaceLink quantizes the way TensorRT's explicit quantization expects (and ONNX Runtime runs):

* weights of every quantized ``Conv``: int8 initializers, symmetric, **per output channel**
  (``DequantizeLinear`` with ``axis=0``), zero points 0, scale ``max|W_c| / 127``;
* activations: **per tensor**, symmetric, zero point 0, scale ``amax / 127`` where ``amax`` comes
  from the calibration table; biases stay float (TensorRT folds them itself);
* placement follows NVIDIA's recommendations: a ``QuantizeLinear → DequantizeLinear`` pair on the
  activation input of every quantized convolution and on the shortcut input of every residual
  ``Add`` (so TensorRT fuses the add into the INT8 convolution); outputs of weighted layers are
  not quantized.  Every consumer of a quantized tensor reads the dequantized value.  A tensor made
  from a quantized one by ``MaxPool`` or zero ``Pad`` lies on the same grid, so it reuses that
  scale (exact, no second rounding) instead of a calibrated one.
* convolutions named in the table's ``float_nodes`` stay float (with the reason recorded).

The graph quantized is the converter's literal form (``rewrite_for_cpu=False``: native PRelu,
which TensorRT fuses into the INT8 convolutions).  The table is JSON produced by
``facelink calibrate`` on real faces (activation ranges only — never weights); the package ships
one (:func:`default_table_path`).  The INT8 graph is rebuilt from the pinned ``.tflite`` + that
table on first use and cached as
``$FACELINK_HOME/models/NAME.int8-<source sha>-<table sha>-c<converter>-q<quantizer>.onnx``.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper

from ..errors import ModelFetchError
from ._convert import CONVERTER_VERSION, convert
from ._tflite import read_model

__all__ = [
    "DEFAULT_PRECISION",
    "PRECISIONS",
    "QUANTIZER_VERSION",
    "TABLE_FORMAT",
    "QuantizationPlan",
    "RangeTable",
    "convert_literal",
    "default_table_path",
    "int8_model_path",
    "plan_quantization",
    "quantize_model",
    "resolve_precision",
    "weight_scales",
]

#: bump whenever the produced Q/DQ graph changes for the same inputs; cached file names include it
QUANTIZER_VERSION = 1
#: ``format`` field of range tables this version reads and writes
TABLE_FORMAT = "facelink-int8-ranges/1"
#: precisions ``model_path`` and ``create_models`` accept
PRECISIONS = ("fp32", "int8")
#: precision ``"auto"`` resolves to per backend.  ONNX Runtime's CPU kernels run these small
#: depthwise networks faster in float (after the converter's NCHWc rewrite) than from a symmetric
#: int8 Q/DQ graph (see calibration/reports), so INT8 is the default where it pays: TensorRT.
DEFAULT_PRECISION: Mapping[str, str] = {"tensorrt": "int8", "onnxruntime": "fp32"}
#: symmetric int8 range used for activations and weights ([-127, 127]: zero is exact, no bias)
QMAX = 127
#: ops through which a quantized tensor keeps its grid (value-selecting or zero-padding)
_GRID_PRESERVING = ("MaxPool", "Pad")


def resolve_precision(precision: str, backend: str) -> str:
    """``"fp32"`` or ``"int8"`` for ``precision`` on ``backend``.

    ``"auto"`` honours ``$FACELINK_PRECISION`` and otherwise takes :data:`DEFAULT_PRECISION` of
    the backend (INT8 on TensorRT, FP32 on ONNX Runtime's CPU provider).
    """
    if not isinstance(precision, str):
        raise TypeError(f"precision must be a str, not {type(precision).__name__}")
    p, source = precision.strip().lower(), "precision"
    if p == "auto":
        env = os.environ.get("FACELINK_PRECISION", "").strip().lower()
        if env and env != "auto":
            p, source = env, "FACELINK_PRECISION"
    if p == "auto":
        return DEFAULT_PRECISION.get(backend, "fp32")
    if p not in PRECISIONS:
        raise ValueError(f"unknown {source} {p!r}; choose auto, {', '.join(PRECISIONS)}")
    return p


def default_table_path() -> Path:
    """The range table shipped with the package (written by ``facelink calibrate --update-default``)."""
    return Path(__file__).resolve().parents[1] / "calibration" / "int8_ranges.json"


# -- the range table -------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelRanges:
    """One model's entry in a range table."""

    source_sha256: str
    ranges: Mapping[str, float]
    float_nodes: Mapping[str, str]


@dataclass(frozen=True)
class RangeTable:
    """Per-tensor activation ranges (``amax``) and float-kept nodes per model, plus provenance."""

    models: Mapping[str, ModelRanges]
    method: str
    sha256: str
    info: Mapping[str, Any]

    @classmethod
    def from_json(cls, data: bytes, origin: str = "range table") -> RangeTable:
        """Parse and validate a table; raises :class:`ModelFetchError` saying what is wrong."""
        try:
            obj = json.loads(data)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ModelFetchError(f"{origin} is not JSON ({exc}); re-run `facelink calibrate`") from None
        if not isinstance(obj, dict) or obj.get("format") != TABLE_FORMAT:
            found = obj.get("format") if isinstance(obj, dict) else type(obj).__name__
            raise ModelFetchError(
                f"{origin} has format {found!r}, expected {TABLE_FORMAT!r}; re-run `facelink calibrate`"
            )
        models = obj.get("models")
        if not isinstance(models, dict) or not models:
            raise ModelFetchError(f"{origin} lists no models; re-run `facelink calibrate`")
        parsed: dict[str, ModelRanges] = {}
        for name, entry in models.items():
            if not isinstance(entry, dict):
                raise ModelFetchError(f"{origin}: entry {name!r} is not an object")
            ranges = entry.get("ranges")
            floats = entry.get("float_nodes", {})
            sha = entry.get("source_sha256")
            if not isinstance(ranges, dict) or not isinstance(floats, dict) or not isinstance(sha, str):
                raise ModelFetchError(f"{origin}: entry {name!r} needs source_sha256, ranges and float_nodes")
            for tensor, amax in ranges.items():
                if not isinstance(amax, (int, float)) or isinstance(amax, bool) or not math.isfinite(amax) or amax <= 0:
                    raise ModelFetchError(
                        f"{origin}: {name} range of {tensor!r} is {amax!r}; ranges must be positive numbers"
                    )
            parsed[name] = ModelRanges(
                sha, {str(k): float(v) for k, v in ranges.items()}, {str(k): str(v) for k, v in floats.items()}
            )
        info = {k: v for k, v in obj.items() if k not in ("format", "models")}
        return cls(parsed, str(obj.get("method", "")), hashlib.sha256(data).hexdigest(), info)

    @classmethod
    def load(cls, path: str | Path) -> RangeTable:
        p = Path(path)
        try:
            data = p.read_bytes()
        except OSError as exc:
            raise ModelFetchError(f"cannot read INT8 range table {p}: {exc.strerror or exc}") from None
        return cls.from_json(data, str(p))

    def model(self, name: str) -> ModelRanges:
        entry = self.models.get(name)
        if entry is None:
            raise ModelFetchError(
                f"the INT8 range table has no entry for {name} (it covers {', '.join(sorted(self.models))}); "
                f"use precision fp32 for {name}"
            )
        return entry


def table_json(models: Mapping[str, ModelRanges], method: str, info: Mapping[str, Any]) -> bytes:
    """Serialise a table deterministically (sorted keys, shortest round-trip floats)."""
    obj = {
        "format": TABLE_FORMAT,
        "method": method,
        **{k: v for k, v in info.items() if k not in ("format", "method", "models")},
        "models": {
            name: {
                "source_sha256": m.source_sha256,
                "float_nodes": dict(sorted(m.float_nodes.items())),
                "ranges": {k: float(v) for k, v in sorted(m.ranges.items())},
            }
            for name, m in sorted(models.items())
        },
    }
    return (json.dumps(obj, indent=1, sort_keys=True) + "\n").encode()


# -- planning and rewriting ------------------------------------------------------------------


@dataclass(frozen=True)
class QuantizationPlan:
    """What :func:`quantize_model` does to one graph.

    ``convs``: quantized Conv nodes (per-channel weights, per-tensor input).  ``float_nodes``:
    Conv nodes kept float (named by node or output tensor, e.g. ``conv2d_21``), with reasons.  ``calibrated``: activation tensors that need a range
    from the table.  ``inherited``: tensors that reuse the scale of the quantized tensor they are
    a MaxPool/zero-Pad of.  ``order``: every quantized tensor, in graph order.
    """

    convs: tuple[str, ...]
    float_nodes: Mapping[str, str]
    calibrated: tuple[str, ...]
    inherited: Mapping[str, str]
    order: tuple[str, ...]


def _is_zero_pad(node: onnx.NodeProto, inits: Mapping[str, onnx.TensorProto]) -> bool:
    if node.op_type != "Pad":
        return False
    mode = next((helper.get_attribute_value(a) for a in node.attribute if a.name == "mode"), b"constant")
    if mode not in (b"constant", "constant"):
        return False
    if len(node.input) > 2 and node.input[2]:
        value = inits.get(node.input[2])
        return value is not None and not numpy_helper.to_array(value).any()
    return True


def plan_quantization(model: onnx.ModelProto, float_nodes: Mapping[str, str] | None = None) -> QuantizationPlan:
    """Decide which tensors and weights of ``model`` to quantize (see the module doc)."""
    float_nodes = dict(float_nodes or {})
    g = model.graph
    inits = {t.name: t for t in g.initializer}
    by_key = {k: n for n in g.node if n.op_type == "Conv" for k in (n.name, n.output[0])}
    unknown = sorted(set(float_nodes) - set(by_key))
    if unknown:
        raise ModelFetchError(f"float_nodes names no Conv of {g.name}: {unknown}; re-run `facelink calibrate`")
    kept = {by_key[k].name for k in float_nodes}
    producer = {o: n for n in g.node for o in n.output}
    convs = [n for n in g.node if n.op_type == "Conv" and n.name not in kept]
    conv_outputs = {n.output[0] for n in convs}
    wanted: set[str] = set()
    for n in convs:
        if n.input[1] not in inits:
            raise ModelFetchError(f"Conv {n.name} has a computed weight; FaceLink quantizes constant weights only")
        wanted.add(n.input[0])
    for n in g.node:
        if n.op_type == "Add" and any(i in conv_outputs for i in n.input):
            wanted.update(i for i in n.input if i not in conv_outputs and i not in inits)
    inherited: dict[str, str] = {}
    calibrated: list[str] = []

    def source(t: str) -> str | None:
        """The quantized tensor whose grid ``t`` lies on, through MaxPool / zero Pad, if any."""
        p = producer.get(t)
        while p is not None and (p.op_type == "MaxPool" or _is_zero_pad(p, inits)):
            t = p.input[0]
            if t in wanted and t not in inherited:
                return t
            p = producer.get(t)
        return None

    order = [t for t in (*[i.name for i in g.input], *[o for n in g.node for o in n.output]) if t in wanted]
    for t in order:
        s = source(t)
        if s is not None:
            inherited[t] = s
        else:
            calibrated.append(t)
    return QuantizationPlan(tuple(n.name for n in convs), float_nodes, tuple(calibrated), inherited, tuple(order))


def weight_scales(weight: np.ndarray) -> np.ndarray:
    """Per-output-channel symmetric scales ``max|W_c| / 127`` (1/127 for an all-zero channel)."""
    amax = np.abs(weight.reshape(weight.shape[0], -1).astype(np.float64)).max(axis=1)
    return np.where(amax > 0, amax, 1.0).astype(np.float64) / QMAX


def _activation_scale(amax: float) -> np.float32:
    return np.float32(float(amax) / QMAX)


def quantize_model(
    model: onnx.ModelProto,
    ranges: Mapping[str, float],
    float_nodes: Mapping[str, str] | None = None,
    metadata: Mapping[str, str] | None = None,
) -> onnx.ModelProto:
    """A Q/DQ copy of ``model`` (see the module doc).  ``ranges`` maps tensor name → ``amax``.

    Deterministic: the same graph, ranges and float nodes give the same bytes.  Raises
    :class:`ModelFetchError` when the table lacks a range the plan needs.
    """
    plan = plan_quantization(model, float_nodes)
    missing = [t for t in plan.calibrated if t not in ranges]
    if missing:
        raise ModelFetchError(
            f"the INT8 range table lacks {len(missing)} tensors of {model.graph.name} (e.g. {missing[0]!r}); "
            "it was made for another converter version: re-run `facelink calibrate`"
        )
    out = onnx.ModelProto()
    out.CopyFrom(model)
    g = out.graph
    inits = {t.name: t for t in g.initializer}
    scales: dict[str, np.float32] = {}
    for t in plan.order:
        src = plan.inherited.get(t)
        scales[t] = scales[src] if src is not None else _activation_scale(ranges[t])

    new_inits: list[onnx.TensorProto] = []
    qdq_after: dict[str, list[onnx.NodeProto]] = {}
    renamed: dict[str, str] = {}
    for t in plan.order:
        s_name, z_name = f"{t}_scale", f"{t}_zero_point"
        new_inits += [
            numpy_helper.from_array(np.array(scales[t], np.float32), s_name),
            numpy_helper.from_array(np.array(0, np.int8), z_name),
        ]
        q, dq = f"{t}_quantized", f"{t}_dequantized"
        qdq_after[t] = [
            helper.make_node("QuantizeLinear", [t, s_name, z_name], [q], name=f"{t}_QuantizeLinear"),
            helper.make_node("DequantizeLinear", [q, s_name, z_name], [dq], name=f"{t}_DequantizeLinear"),
        ]
        renamed[t] = dq

    quantized_convs = set(plan.convs)
    nodes: list[onnx.NodeProto] = []
    graph_inputs = [i.name for i in g.input]
    for t in graph_inputs:
        nodes += qdq_after.get(t, [])
    for n in g.node:
        for k, name in enumerate(n.input):
            if name in renamed:
                n.input[k] = renamed[name]
        if n.name in quantized_convs:
            w_name = n.input[1]
            weight = numpy_helper.to_array(inits[w_name]).astype(np.float32)
            sc = weight_scales(weight)
            shaped = sc.reshape((-1,) + (1,) * (weight.ndim - 1))
            wq = np.clip(np.rint(weight.astype(np.float64) / shaped), -QMAX, QMAX).astype(np.int8)
            qn, sn, zn, dn = (f"{w_name}_quantized", f"{w_name}_scale", f"{w_name}_zero_point", f"{w_name}_dequantized")
            new_inits += [
                numpy_helper.from_array(wq, qn),
                numpy_helper.from_array(sc.astype(np.float32), sn),
                numpy_helper.from_array(np.zeros(weight.shape[0], np.int8), zn),
            ]
            nodes.append(
                helper.make_node("DequantizeLinear", [qn, sn, zn], [dn], name=f"{w_name}_DequantizeLinear", axis=0)
            )
            n.input[1] = dn
        nodes.append(n)
        for o in n.output:
            nodes += qdq_after.get(o, [])
    del g.node[:]
    g.node.extend(nodes)
    used = {i for n in g.node for i in n.input}
    keep = [t for t in g.initializer if t.name in used]
    del g.initializer[:]
    g.initializer.extend(keep + new_inits)
    props = {p.key: p.value for p in out.metadata_props}
    props.update(
        {
            "facelink.precision": "int8",
            "facelink.quantizer_version": str(QUANTIZER_VERSION),
            "facelink.float_nodes": json.dumps(dict(sorted(plan.float_nodes.items())), sort_keys=True),
            **(metadata or {}),
        }
    )
    del out.metadata_props[:]
    helper.set_model_props(out, props)
    try:
        onnx.checker.check_model(out)
    except onnx.checker.ValidationError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelFetchError(f"quantized {g.name} fails the ONNX checker: {first}") from None
    return out


# -- building and caching --------------------------------------------------------------------


def convert_literal(name: str, tflite: bytes) -> onnx.ModelProto:
    """The converter's literal (TensorRT) form of model ``name`` from its pinned ``.tflite`` bytes."""
    from ._fetch import MEDIAPIPE_VERSION, MODEL_SPECS

    spec = MODEL_SPECS[name]
    return convert(
        read_model(tflite),
        output_names=spec.output_names,
        input_name=spec.input_name,
        graph_name=spec.name,
        metadata={
            "facelink.source": f"mediapipe=={MEDIAPIPE_VERSION}:{spec.member}",
            "facelink.source_sha256": spec.sha256,
        },
        rewrite_for_cpu=False,
    )


def int8_filename(name: str, source_sha256: str, table_sha256: str) -> str:
    """Cache file name of an INT8 graph: model, source and table hashes, converter and quantizer versions."""
    return f"{name}.int8-{source_sha256[:12]}-{table_sha256[:12]}-c{CONVERTER_VERSION}-q{QUANTIZER_VERSION}.onnx"


def int8_model_path(name: str, table: str | Path | None = None) -> Path:
    """Path of the INT8 Q/DQ graph of ``name``, built from the pinned source + ``table`` on first use.

    ``table`` defaults to the package's table (:func:`default_table_path`).  The FP32 source
    graph is fetched first when missing (see :func:`facelink.models.model_path`).
    """
    from .._files import atomic_write as _atomic_write
    from .._files import fetch_timeout as _timeout
    from .._files import locked as _locked
    from ._fetch import MODEL_SPECS, _ensure, facelink_home

    spec = MODEL_SPECS.get(name)
    if spec is None:
        raise ValueError(f"unknown model {name!r}; choose from {', '.join(sorted(MODEL_SPECS))}")
    path = Path(table) if table is not None else default_table_path()
    rt = RangeTable.load(path)
    entry = rt.model(name)
    if entry.source_sha256 != spec.sha256:
        raise ModelFetchError(
            f"INT8 range table {path} was calibrated for {name} sha256 {entry.source_sha256[:12]}, the pinned "
            f"model is {spec.sha256[:12]}; re-run `facelink calibrate`"
        )
    cache = facelink_home() / "models"
    target = cache / int8_filename(name, spec.sha256, rt.sha256)
    if target.is_file():
        return target
    _ensure((spec,), None, False, None)  # the verified .tflite (and FP32 graph) are in the cache
    with _locked(cache / ".lock", _timeout()):
        if target.is_file():
            return target
        model = convert_literal(name, (cache / spec.tflite_filename).read_bytes())
        qmodel = quantize_model(
            model,
            entry.ranges,
            entry.float_nodes,
            metadata={"facelink.range_table_sha256": rt.sha256, "facelink.calibration_method": rt.method},
        )
        _atomic_write(target, qmodel.SerializeToString())
    return target


def qdq_summary(model: onnx.ModelProto) -> dict[str, int]:
    """Counts of quantized weights and activations in a Q/DQ graph (for reports and checks)."""
    g = model.graph
    inits = {t.name for t in g.initializer}
    q = [n for n in g.node if n.op_type == "QuantizeLinear"]
    dq_w = [n for n in g.node if n.op_type == "DequantizeLinear" and n.input[0] in inits]
    convs = [n for n in g.node if n.op_type == "Conv"]
    return {
        "activations": len(q),
        "weights": len(dq_w),
        "convs": len(convs),
        "float_convs": sum(1 for n in convs if n.input[1] in inits),
    }
