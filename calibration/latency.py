#!/usr/bin/env python3
"""ONNX Runtime CPU latency of the encoder models, FP32 vs INT8, and the on-paper Jetson budget.

    python calibration/latency.py [--threads 1 2] [--runs 200] [--repeats 5] [--u8s8] [--json OUT]

Variants, timed interleaved in blocks on one real crop of the demo portrait (no ../shared/data):

* ``fp32``          the shipped FP32 graph (converter v2: PRelu / channel-Pad rewritten for NCHWc)
* ``fp32_literal``  the converter's literal graph (what v1 shipped; what INT8 is built from)
* ``int8``          the shipped INT8 Q/DQ graph (TensorRT-style, from the package's range table)
* ``u8s8``          with ``--u8s8``: ONNX Runtime's own CPU recipe for comparison — ``quantize_static``
                    on the FP32 graph, uint8 activations, int8 per-channel weights, QDQ (calibrated
                    on a few portrait crops: a speed reference, not a shipped model)

Speed-ups are medians of per-block ratios against ``fp32``.  The Jetson part prints
``2·MACs / (dense INT8 TOPS × utilisation) + Conv layers × per-layer cost`` for the power modes
of docs/jetson.md.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnx

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "sdk"))

from facelink.assets import asset_path
from facelink.backend._onnxruntime import OnnxRuntimeSession
from facelink.calibration import count_macs, jetson_estimate, measure_latency
from facelink.face import Roi, crop
from facelink.io import load_image
from facelink.models import MODEL_SPECS, facelink_home, model_path
from facelink.models._quantize import convert_literal

MODELS = ("face_detector", "face_landmark")
#: Orin Nano 8 GB GPU clocks per power mode (MHz) and the dense INT8 TOPS they scale to (20 at 625 MHz)
POWER_MODES = {"7W (420 MHz)": 420, "15W (625 MHz)": 625, "25W / MAXN SUPER (1020 MHz)": 1020}


def inputs() -> dict[str, np.ndarray]:
    img = load_image(str(asset_path("astronaut")))
    face = Roi(250.0, 190.0, 230.0)  # the astronaut's face, as the tracker crops it
    return {
        "face_landmark": crop(img, face, 192)[None],
        "face_detector": (crop(img, Roi(256.0, 256.0, 512.0), 128) * 2.0 - 1.0)[None],
    }


def u8s8(name: str, x: np.ndarray, out: Path) -> Path:
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            rng = np.random.default_rng(0)
            self.it = iter([np.clip(x * rng.uniform(0.8, 1.2), -1.0, 1.0).astype(np.float32) for _ in range(8)])

        def get_next(self) -> dict[str, np.ndarray] | None:
            v = next(self.it, None)
            return None if v is None else {"input": v}

    target = out / f"{name}.u8s8.onnx"
    quantize_static(
        str(model_path(name)),
        str(target),
        Reader(),
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
    )
    return target


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, nargs="+", default=[1])
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--u8s8", action="store_true", help="also time ONNX Runtime's own U8S8 CPU recipe")
    ap.add_argument("--json", metavar="OUT", help="write the results as JSON")
    args = ap.parse_args()
    xs = inputs()
    result: dict[str, object] = {"latency": {}, "jetson": {}}
    with tempfile.TemporaryDirectory() as tmp:
        variants: dict[str, dict[str, Path]] = {}
        for name in MODELS:
            lit = Path(tmp) / f"{name}.literal.onnx"
            tflite = (facelink_home() / "models" / MODEL_SPECS[name].tflite_filename).read_bytes()
            lit.write_bytes(convert_literal(name, tflite).SerializeToString())
            variants[name] = {"fp32": model_path(name), "fp32_literal": lit, "int8": model_path(name, "int8")}
            if args.u8s8:
                variants[name]["u8s8"] = u8s8(name, xs[name], Path(tmp))
        for threads in args.threads:
            for name in MODELS:
                makers = {
                    k: functools.partial(OnnxRuntimeSession, p, threads=threads) for k, p in variants[name].items()
                }
                row = measure_latency(makers, xs[name], runs=args.runs, repeats=args.repeats)
                result["latency"][f"{name}/threads={threads}"] = row  # type: ignore[index]
                cells = ", ".join(
                    f"{k} {v['median_ms']:.2f} ms (x{v['ratio_to_first']:.2f} vs fp32)" for k, v in row.items()
                )
                print(f"{name} threads={threads}: {cells}")
        macs = {}
        layers = {}
        for name in MODELS:
            m = onnx.load(variants[name]["fp32_literal"])
            macs[name] = count_macs(m)["total_macs"]
            layers[name] = sum(1 for n in m.graph.node if n.op_type == "Conv")
    for mode, mhz in POWER_MODES.items():
        est = jetson_estimate(macs, dense_int8_tops=20.0 * mhz / 625.0, layers=layers)
        result["jetson"][mode] = est  # type: ignore[index]
        rows = "; ".join(
            f"{n} " + "/".join(f"{v:.2f}" for k, v in r.items() if k.startswith("ms_at_")) + " ms"
            for n, r in est["models"].items()
        )
        print(f"Orin Nano {mode}, {20.0 * mhz / 625.0:.1f} dense INT8 TOPS, at 2/5/10 % utilisation: {rows}")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
