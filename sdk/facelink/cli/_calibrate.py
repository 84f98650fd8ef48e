"""``facelink calibrate --data PATHS… --out DIR``: INT8 calibration of the encoder models."""

from __future__ import annotations

import shutil
import sys

from ._common import Progress, emit_json


def register(sub) -> None:
    p = sub.add_parser(
        "calibrate",
        help="calibrate INT8 encoder models on real faces and report accuracy and speed",
        description=(
            "Track faces in videos/images with the FP32 models, record the exact crops they are fed, compute "
            "activation ranges on the train persons, build symmetric Q/DQ INT8 graphs (per-channel weights, "
            "per-tensor activations) and evaluate them against FP32 on the held-out persons. Writes "
            "DIR/int8_ranges.json, DIR/*.int8.onnx, DIR/report.json and DIR/report.md."
        ),
    )
    p.add_argument("--data", nargs="+", required=True, metavar="PATH",
                   help="videos, images or directories; FaceLink's data directory (with manifest.tsv) brings its "
                        "person map and split")  # fmt: skip
    p.add_argument("--eval", nargs="+", default=[], metavar="PATH", dest="eval_data",
                   help="held-out videos/images (default: a stable hash of the file name holds out 20%% of persons)")  # fmt: skip
    p.add_argument("--out", required=True, metavar="DIR", help="output directory (created)")
    p.add_argument("--method", choices=["entropy", "percentile", "minmax"], default="percentile",
                   help="range method (default: percentile, 99.99 %% of |x|; see calibration/README.md)")  # fmt: skip
    p.add_argument(
        "--recipe", metavar="JSON", help="recipe file (default: the built-in recipe = calibration/recipe.json)"
    )
    p.add_argument("--update-default", action="store_true",
                   help="also install DIR/int8_ranges.json as the package's default table (only when within budget)")  # fmt: skip
    p.add_argument("--json", action="store_true", help="print one JSON object (the report's summary)")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..calibration import Recipe, calibrate, load_recipe
    from ..errors import FaceLinkError
    from ..models._quantize import default_table_path

    recipe = load_recipe(args.recipe) if args.recipe else Recipe()
    bars: dict[str, Progress] = {}

    def progress(stage: str, done: int, total: int | None) -> None:
        bar = bars.get(stage)
        if bar is None:
            for old in bars.values():
                old.close()
            bars.clear()
            bar = bars[stage] = Progress(f"calibrate: {stage}", total)
        bar(done, total)

    try:
        result = calibrate(
            args.data, args.out, method=args.method, recipe=recipe, eval_data=args.eval_data, progress=progress
        )
    finally:
        for bar in bars.values():
            bar.close()
    r = result.report
    installed = None
    if args.update_default:
        if not result.within_budget:
            raise FaceLinkError(
                f"not installing {result.table_path}: the INT8 models miss the accuracy budget (see {args.out}/report.md)"
            )
        installed = default_table_path()
        shutil.copyfile(result.table_path, installed)
    summary = {
        "out": str(result.out_dir),
        "table": str(result.table_path),
        "installed_default": str(installed) if installed else None,
        "models": {k: str(v) for k, v in result.models.items()},
        "method": r["method"],
        "within_budget": result.within_budget,
        "landmark_mean_pct_iod": r["landmark_error"]["mean_pct_iod"],
        "detection_agreement_pct": r["detection_agreement"]["agreement_pct"],
        "cpu_ms": {
            name: {k: row[k]["median_ms"] for k in ("fp32", "fp32_literal", "int8")}
            for name, row in r["latency_cpu"].items()
        },
    }
    if args.json:
        emit_json(summary)
    else:
        verdict = "within" if result.within_budget else "OUTSIDE"
        print(
            f"{args.out}: INT8 {verdict} budget: landmarks +{summary['landmark_mean_pct_iod']:.3f} % IOD, "
            f"detection agreement {summary['detection_agreement_pct']:.2f} %; report.md written"
            + (f"; default table updated ({installed})" if installed else ""),
            file=sys.stderr,
        )
    return 0
