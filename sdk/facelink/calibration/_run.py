"""``facelink calibrate``: crops → ranges → Q/DQ graphs → held-out evaluation → report."""

from __future__ import annotations

import functools
import json
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from .._version import __version__
from ..backend import InferenceSession
from ..errors import InputError
from ..models import MODEL_SPECS, facelink_home, model_path
from .._files import atomic_write as _atomic_write
from ..models._quantize import (
    QUANTIZER_VERSION,
    ModelRanges,
    RangeTable,
    convert_literal,
    plan_quantization,
    qdq_summary,
    quantize_model,
    table_json,
)
from ._crops import CropSet, collect_crops
from ._evaluate import (
    DetectionAgreement,
    count_macs,
    detector_box_agreement,
    jetson_estimate,
    landmark_error,
    measure_latency,
)
from ._ranges import compute_ranges
from ._recipe import METHODS, Recipe
from ._report import render_markdown
from ._sources import FrameSequence, Source, gather_sources, open_source

__all__ = ["BUDGET", "CalibrationResult", "calibrate", "calibrate_sequences"]

#: the accuracy budget INT8 must meet (issue #6)
BUDGET = {"landmark_mean_pct_iod": 0.5, "detection_agreement_pct": 99.0}
#: the models FaceLink quantizes, with the crops each one sees
MODELS = ("face_detector", "face_landmark")
#: calibration crops the float-node ablation looks at (a stride through the set)
_ABLATION_CROPS = 200

#: ``progress(stage, done, total)``
StageProgress = Callable[[str, int, int | None], None]


@dataclass(frozen=True)
class CalibrationResult:
    """What a run wrote: the range table, the INT8 graphs, and the report (also as a dict)."""

    out_dir: Path
    table_path: Path
    models: dict[str, Path]
    report: dict[str, Any]

    @property
    def within_budget(self) -> bool:
        return bool(self.report["budget"]["met"])


def _ort_session(model: onnx.ModelProto | Path, threads: int | None = None):
    from ..backend._onnxruntime import OnnxRuntimeSession

    if isinstance(model, Path):
        return OnnxRuntimeSession(model, threads=threads)
    import tempfile

    with tempfile.TemporaryDirectory(prefix="facelink-cal-") as tmp:
        path = Path(tmp) / f"{model.graph.name}.onnx"
        path.write_bytes(model.SerializeToString())
        return OnnxRuntimeSession(path, threads=threads)


def _say(progress: StageProgress | None, stage: str) -> Callable[[int, int | None], None]:
    def call(done: int, total: int | None) -> None:
        if progress is not None:
            progress(stage, done, total)

    return call


def calibrate_sequences(
    train: Sequence[FrameSequence],
    evaluation: Sequence[FrameSequence],
    out: str | Path,
    *,
    method: str = "percentile",
    recipe: Recipe | None = None,
    progress: StageProgress | None = None,
    train_frames: int | None = None,
    eval_frames: int | None = None,
    data: dict[str, Any] | None = None,
) -> CalibrationResult:
    """Calibrate on ``train`` sequences, evaluate on held-out ``evaluation`` ones, write to ``out``.

    Writes ``out/int8_ranges.json`` (the table), ``out/NAME.int8.onnx`` (the Q/DQ graphs),
    ``out/report.json`` and ``out/report.md``.  Tracking and the FP32 references use the cached
    FP32 graphs on ONNX Runtime's CPU provider; the INT8 graphs run there too.
    """
    recipe = recipe or Recipe()
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose {', '.join(METHODS)}")
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    fp32_paths = {name: model_path(name) for name in MODELS}
    fp32 = {name: _ort_session(p) for name, p in fp32_paths.items()}
    cache = facelink_home() / "models"
    literal = {name: convert_literal(name, (cache / MODEL_SPECS[name].tflite_filename).read_bytes()) for name in MODELS}

    # 1. calibration crops from the train persons, through the real tracker
    crops = collect_crops(
        (s for s in train), fp32["face_detector"], fp32["face_landmark"], _say(progress, "crops (train)"), train_frames
    )
    inputs = {"face_detector": crops.detector, "face_landmark": crops.landmark}
    if not crops.landmark or not crops.detector:
        raise InputError(
            f"no faces were tracked in the {crops.frames} calibration frames; pass clips or images that show faces"
        )

    # 2. ranges of every tensor any float-node choice could quantize, then the Q/DQ graphs
    entries: dict[str, ModelRanges] = {}
    plans = {}
    for name in MODELS:
        floats = dict(recipe.float_nodes.get(name, {}))
        everything = plan_quantization(literal[name])
        plans[name] = plan_quantization(literal[name], floats)
        candidates = list(everything.calibrated) + list(everything.inherited)
        ranges = compute_ranges(
            literal[name], candidates, inputs[name], method, percentile=recipe.percentile,
            bins=recipe.entropy_bins, progress=_say(progress, f"ranges ({name})"),
        )  # fmt: skip
        entries[name] = ModelRanges(MODEL_SPECS[name].sha256, ranges, floats)
    info = {
        "generated_by": f"facelink {__version__} calibrate",
        "quantizer_version": QUANTIZER_VERSION,
        "percentile": recipe.percentile if method == "percentile" else None,
        "crops": {"face_detector": len(crops.detector), "face_landmark": len(crops.landmark)},
        "train_persons": sorted({s.person for s in train}),
    }
    blob = table_json(entries, method, info)
    table_path = out_dir / "int8_ranges.json"
    _atomic_write(table_path, blob)
    table = RangeTable.from_json(blob, str(table_path))
    qmodels: dict[str, onnx.ModelProto] = {}
    qpaths: dict[str, Path] = {}
    for name in MODELS:
        entry = table.model(name)
        qmodels[name] = quantize_model(
            literal[name], entry.ranges, entry.float_nodes,
            metadata={"facelink.range_table_sha256": table.sha256, "facelink.calibration_method": method},
        )  # fmt: skip
        qpaths[name] = out_dir / f"{name}.int8.onnx"
        _atomic_write(qpaths[name], qmodels[name].SerializeToString())
    int8 = {name: _ort_session(qpaths[name]) for name in MODELS}

    # the float-node choice, justified on calibration (train) crops only: all-INT8 vs the recipe
    ablation: dict[str, Any] = {}
    for name in MODELS:
        if not entries[name].float_nodes:
            continue
        subset = inputs[name][:: max(1, len(inputs[name]) // _ABLATION_CROPS)]
        everything_int8 = _ort_session(quantize_model(literal[name], entries[name].ranges, {}))
        compare = landmark_error if name == "face_landmark" else detector_box_agreement
        results = {
            "all_int8": compare(fp32[name], everything_int8, subset),
            "recipe": compare(fp32[name], int8[name], subset),
        }
        ablation[name] = {k: v.as_dict() if hasattr(v, "as_dict") else v for k, v in results.items()}
        everything_int8.close()

    # 3. held-out persons: the same tracker's crops, detectors compared on whole frames
    from ..face import FaceDetector

    agreement = DetectionAgreement()
    det_fp32, det_int8 = FaceDetector(fp32["face_detector"]), FaceDetector(int8["face_detector"])
    eval_crops: CropSet = collect_crops(
        (s for s in evaluation), fp32["face_detector"], fp32["face_landmark"], _say(progress, "evaluate"),
        eval_frames, on_frame=lambda img: agreement.compare(det_fp32, det_int8, img),
    )  # fmt: skip
    lm_err = landmark_error(fp32["face_landmark"], int8["face_landmark"], eval_crops.landmark)
    for s in (*fp32.values(), *int8.values()):
        s.close()

    # 4. CPU latency (ONNX Runtime, 1 thread): shipped FP32, the converter's literal form, INT8
    latency: dict[str, Any] = {}
    samples = {
        "face_detector": eval_crops.detector or crops.detector,
        "face_landmark": eval_crops.landmark or crops.landmark,
    }
    for i, name in enumerate(MODELS):
        x = np.ascontiguousarray(samples[name][0][None], dtype=np.float32)
        variants: dict[str, onnx.ModelProto | Path] = {
            "fp32": fp32_paths[name],
            "fp32_literal": literal[name],
            "int8": qpaths[name],
        }
        makers: dict[str, Callable[[], InferenceSession]] = {
            k: functools.partial(_ort_session, m, threads=1) for k, m in variants.items()
        }
        row = measure_latency(makers, x, runs=recipe.latency_runs)
        latency[name] = {
            **row,
            # paired per round: fp32 time / int8 time, and literal time / rewritten time
            "int8_speedup": row["int8"]["ratio_to_first"],
            "rewrite_speedup": round(1.0 / row["fp32_literal"]["ratio_to_first"], 3),
        }
        if progress is not None:
            progress("latency", i + 1, len(MODELS))

    # 5. operation counts and the on-paper Jetson budget
    macs = {name: count_macs(literal[name]) for name in MODELS}
    int8_macs = {
        name: sum(v for k, v in macs[name]["per_conv"].items() if _conv_quantized(k, plans[name], literal[name]))
        for name in MODELS
    }
    layers = {name: sum(1 for n in literal[name].graph.node if n.op_type == "Conv") for name in MODELS}
    jetson = jetson_estimate({n: macs[n]["total_macs"] for n in MODELS}, layers=layers)

    met = lm_err.mean <= BUDGET["landmark_mean_pct_iod"] and 100.0 * agreement.rate >= BUDGET["detection_agreement_pct"]
    report: dict[str, Any] = {
        "facelink": __version__,
        "method": method,
        "recipe": recipe.as_dict(),
        "data": {
            **(data or {}),
            "train": {"sequences": len(train), "persons": len({s.person for s in train}), "frames": crops.frames,
                      "face_frames": crops.face_frames, "detector_inputs": len(crops.detector),
                      "landmark_crops": len(crops.landmark)},
            "eval": {"sequences": len(evaluation), "persons": len({s.person for s in evaluation}),
                     "frames": eval_crops.frames, "face_frames": eval_crops.face_frames,
                     "landmark_crops": len(eval_crops.landmark)},
            "sources": crops.sources + eval_crops.sources,
        },
        "budget": {**BUDGET, "met": bool(met)},
        "landmark_error": lm_err.as_dict(),
        "float_ablation_train": ablation,
        "detection_agreement": agreement.as_dict(),
        "latency_cpu": latency,
        "models": {
            name: {
                "int8_onnx": qpaths[name].name,
                "qdq": qdq_summary(qmodels[name]),
                "float_nodes": dict(plans[name].float_nodes),
                "quantized_activations": len(plans[name].order),
                "shared_scale_tensors": dict(plans[name].inherited),
                "macs": macs[name]["total_macs"],
                "int8_macs": int8_macs[name],
                "conv_layers": layers[name],
            }
            for name in MODELS
        },
        "jetson_orin_nano_estimate": jetson,
        "table": {"path": table_path.name, "sha256": table.sha256},
        "machine": {"python": platform.python_version(), "platform": platform.platform(), "processor": platform.processor(),
                    "onnxruntime": _ort_version()},
        "elapsed_s": round(time.perf_counter() - started, 1),
    }  # fmt: skip
    _atomic_write(out_dir / "report.json", (json.dumps(report, indent=1, sort_keys=True) + "\n").encode())
    _atomic_write(out_dir / "report.md", render_markdown(report).encode())
    return CalibrationResult(out_dir, table_path, qpaths, report)


def _conv_quantized(output: str, plan: Any, model: onnx.ModelProto) -> bool:
    node = next((n for n in model.graph.node if n.op_type == "Conv" and n.output[0] == output), None)
    return node is not None and node.name in plan.convs


def _ort_version() -> str:
    import onnxruntime

    return str(onnxruntime.__version__)


def calibrate(
    data: Sequence[str],
    out: str | Path,
    *,
    method: str = "percentile",
    recipe: Recipe | None = None,
    eval_data: Sequence[str] = (),
    progress: StageProgress | None = None,
) -> CalibrationResult:
    """Run :func:`calibrate_sequences` on files: ``data`` paths (see :func:`gather_sources`)."""
    recipe = recipe or Recipe()
    sources = gather_sources(data, eval_data, recipe.eval_fraction)
    train = [s for s in sources if s.split == "train"]
    evaluation = [s for s in sources if s.split == "eval"]

    def frames(src: list[Source], per_clip: int) -> int:
        return sum(1 if s.kind == "image" else min(per_clip, s.frames or per_clip) for s in src)

    return calibrate_sequences(
        [open_source(s, recipe.train_frames_per_clip, recipe.min_stride) for s in train],
        [open_source(s, recipe.eval_frames_per_clip, recipe.min_stride) for s in evaluation],
        out, method=method, recipe=recipe, progress=progress,
        train_frames=frames(train, recipe.train_frames_per_clip),
        eval_frames=frames(evaluation, recipe.eval_frames_per_clip),
        data={"paths": [str(p) for p in data], "eval_paths": [str(p) for p in eval_data]},
    )  # fmt: skip
