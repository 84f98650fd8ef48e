"""The human-readable calibration report (``report.md``) rendered from ``report.json``'s dict."""

from __future__ import annotations

from typing import Any

__all__ = ["render_markdown"]


def _ms(row: dict[str, Any]) -> str:
    blocks = ", ".join(f"{b:.2f}" for b in row["block_medians_ms"])
    return f"{row['median_ms']:.2f} ms (blocks {blocks}; p10–p90 {row['p10_ms']:.2f}–{row['p90_ms']:.2f})"


def render_markdown(r: dict[str, Any]) -> str:
    """Markdown for a calibration report dict (see :func:`facelink.calibration.calibrate_sequences`)."""
    lm, det, budget = r["landmark_error"], r["detection_agreement"], r["budget"]
    d = r["data"]
    ok = "**met**" if budget["met"] else "**NOT met**"
    lines = [
        f"# INT8 calibration report ({r['method']})",
        "",
        (
            f"facelink {r['facelink']}, ONNX Runtime {r['machine']['onnxruntime']}, {r['machine']['platform']}; "
            f"{r['elapsed_s']:.0f} s.  Accuracy budget {ok}."
        ),
        "",
        "## Data",
        "",
        (
            f"- calibration (train persons): {d['train']['sequences']} sequences of {d['train']['persons']} persons, "
            f"{d['train']['frames']} frames ({d['train']['face_frames']} tracked) → {d['train']['detector_inputs']} "
            f"detector inputs (128×128) and {d['train']['landmark_crops']} landmark crops (192×192), exactly as the "
            "tracker feeds the models"
        ),
        (
            f"- evaluation (held-out persons): {d['eval']['sequences']} sequences of {d['eval']['persons']} persons, "
            f"{d['eval']['frames']} frames, {d['eval']['landmark_crops']} landmark crops"
        ),
        "",
        "## Accuracy, INT8 vs FP32 on held-out faces",
        "",
        "| measure | value | budget |",
        "|---|---|---|",
        (
            f"| landmark displacement, mean over crops (% of inter-ocular distance 33↔263) | {lm['mean_pct_iod']:.3f} % "
            f"| ≤ {budget['landmark_mean_pct_iod']} % |"
        ),
        f"| … median / p95 / max | {lm['median_pct_iod']:.3f} / {lm['p95_pct_iod']:.3f} / {lm['max_pct_iod']:.3f} % | |",
        f"| face-presence decision flips | {lm['presence_flips']} of {lm['crops']} crops | |",
        (
            f"| detection agreement (same face, IoU > {det['iou_threshold']}) | {det['agreement_pct']:.2f} % "
            f"({det['agree']}/{det['frames']} frames) | ≥ {budget['detection_agreement_pct']} % |"
        ),
        (
            f"| … missed / extra / low IoU; mean / min IoU | {det['missed_by_int8']} / {det['extra_in_int8']} / "
            f"{det['iou_at_most_threshold']}; {det['mean_iou']:.3f} / {det['min_iou']:.3f} | |"
        ),
        "",
        "The FP32 graph is the reference, so the displacement is the error INT8 adds (against a ground",
        f"truth it bounds the increase).  Crops where FP32 sees no face are skipped ({lm['skipped_no_face']}).",
        "",
        "## ONNX Runtime CPU latency (1 thread, batch 1)",
        "",
        "| model | FP32 (shipped, NCHWc rewrite) | FP32 literal (before the rewrite) | INT8 Q/DQ | INT8 speed-up | rewrite speed-up |",
        "|---|---|---|---|---|---|",
    ]
    for name, row in r["latency_cpu"].items():
        lines.append(
            f"| {name} | {_ms(row['fp32'])} | {_ms(row['fp32_literal'])} | {_ms(row['int8'])} | "
            f"{row['int8_speedup']:.2f}× | {row['rewrite_speedup']:.2f}× |"
        )
    lines += [
        "",
        "Timings come from a shared 2-core machine: each variant is timed in interleaved blocks (block",
        "medians listed) and the speed-ups are medians of per-block ratios; compare ratios, not absolute times.",
        "",
        "## Quantized graphs",
        "",
        "| model | MACs | in INT8 | quantized activations | quantized weights | Conv layers kept float |",
        "|---|---|---|---|---|---|",
    ]
    for name, m in r["models"].items():
        lines.append(
            f"| {name} | {m['macs'] / 1e6:.1f} M | {100.0 * m['int8_macs'] / max(m['macs'], 1):.1f} % | "
            f"{m['qdq']['activations']} | {m['qdq']['weights']} | {len(m['float_nodes'])} |"
        )
    lines += ["", "### What stayed in higher precision, and why", ""]
    for name, m in r["models"].items():
        if not m["float_nodes"]:
            lines.append(f"- {name}: every Conv is INT8.")
        by_reason: dict[str, list[str]] = {}
        for node, why in m["float_nodes"].items():
            by_reason.setdefault(why, []).append(node)
        for why, nodes in by_reason.items():
            listed = ", ".join(f"`{n}`" for n in nodes)
            lines.append(f"- {name} ({len(nodes)} Conv: {listed}): {why}")
    lines += [
        "",
        "Measured on the calibration (train) crops, so the held-out evaluation stays untouched:",
        "",
    ]
    for name, ab in r.get("float_ablation_train", {}).items():
        if name == "face_landmark":
            a, b = ab["all_int8"], ab["recipe"]
            lines.append(
                f"- {name}: landmark displacement every Conv INT8 {a['mean_pct_iod']:.3f} % IOD → with the float "
                f"layers above {b['mean_pct_iod']:.3f} % ({a['crops']} crops)"
            )
        else:
            a, b = ab["all_int8"], ab["recipe"]
            lines.append(
                f"- {name}: top-box IoU vs FP32 every Conv INT8 {a['mean_iou']:.3f} → with the float layer "
                f"{b['mean_iou']:.3f} ({a['inputs']} detector inputs)"
            )
    lines += [
        "",
        "- both models: biases stay float (TensorRT folds them into the INT8 kernels); PRelu/ReLU, Add,",
        "  MaxPool and the output Reshape/Transpose/Concat have no weights and run in whatever precision",
        "  TensorRT fuses them into; tensors produced by MaxPool or zero Pad of a quantized tensor reuse",
        "  its scale (exact).",
        "",
        "## Jetson Orin Nano 8 GB, on paper",
        "",
    ]
    j = r["jetson_orin_nano_estimate"]
    a = j["assumptions"]
    cols = [k for k in next(iter(j["models"].values())) if k.startswith("ms_at_")]
    lines += [
        (
            f"`time = 2·MACs / ({a['dense_int8_tops']:g} dense INT8 TOPS × utilisation) + Conv layers × "
            f"{a['per_layer_us']:g} µs`"
        ),
        "",
        "| model | MACs | Conv layers | "
        + " | ".join(c.replace("ms_at_", "").replace("pct", " % util (ms)") for c in cols)
        + " |",
        "|---|---|---|" + "---|" * len(cols),
    ]
    for name, row in j["models"].items():
        lines.append(
            f"| {name} | {row['macs'] / 1e6:.1f} M | {row['layers']} | "
            + " | ".join(f"{row[c]:.2f}" for c in cols)
            + " |"
        )
    lines += [
        "",
        "See docs/jetson.md for the assumptions, power modes and the resulting frame rates.",
        "",
    ]
    return "\n".join(lines)
