"""``python -m facelink.train refiner --out DIR``: build the data, train, export ONNX.

``python -m facelink.train refiner-int8 --model PATH --out PATH``: the INT8 Q/DQ version of a
trained refiner, calibrated on the validation persons' samples (see ``_quantize.py``).

``python -m facelink.train audio2motion --out DIR``: the audio -> expression network of
``facelink animate`` (``_audio2motion.py``), trained on the paired speech + video clips.

Reproducible: the data recipe, the person split and the seed are fixed and saved in
``DIR/loss.json`` and in the ONNX metadata; the per-clip samples are cached in
``DIR/../cache`` (or ``--cache``), so a second run trains straight away.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import zlib
from pathlib import Path

_DATA = Path(__file__).resolve().parents[1] / "generator" / "data"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m facelink.train", description="train FaceLink's learned networks")
    sub = ap.add_subparsers(dest="what", required=True)
    r = sub.add_parser("refiner", help="train the generator's refinement network")
    r.add_argument("--out", type=Path, required=True, help="run directory (loss curves, checkpoints, refiner.onnx)")
    r.add_argument("--cache", type=Path, help="sample cache (default: OUT/../cache)")
    r.add_argument("--steps", type=int, default=12000)
    r.add_argument("--batch", type=int, default=16)
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--threads", type=int, default=2)
    r.add_argument("--crop", type=int, help="training crop side in pixels (default: TrainConfig.crop)")
    r.add_argument("--w-grad", type=float, help="weight of the image-gradient loss (default: TrainConfig.w_grad)")
    r.add_argument("--max-clips", type=int, default=0, help="use only the first N training clips (smoke runs)")
    r.add_argument("--install", action="store_true", help="copy the result over the shipped model (sdk/facelink/generator/data/refiner.onnx)")
    q = sub.add_parser("refiner-int8", help="INT8 Q/DQ version of a trained refiner, calibrated on the validation persons")
    q.add_argument("--model", type=Path, default=_DATA / "refiner.onnx", help="FP32 refiner (default: the shipped one)")
    q.add_argument("--out", type=Path, required=True, help="where to write the INT8 ONNX model")
    q.add_argument("--cache", type=Path, default=Path("runs/cache"), help="sample cache (default: runs/cache)")
    q.add_argument("--method", choices=["percentile", "minmax", "entropy"], default="percentile")
    q.add_argument("--inputs", type=int, default=120, help="calibration inputs, spread over the validation clips")
    q.add_argument("--threads", type=int, default=2)
    q.add_argument("--install", action="store_true", help="copy the result to sdk/facelink/generator/data/refiner.int8.onnx")
    a = sub.add_parser("audio2motion", help="train the audio -> expression network of facelink animate")
    a.add_argument("--out", type=Path, required=True, help="run directory (loss.json, audio2motion.onnx)")
    a.add_argument("--cache", type=Path, help="per-clip tracking + speech cache (default: OUT/../speech-cache)")
    a.add_argument("--epochs", type=int, default=5)
    a.add_argument("--seed", type=int, default=0)
    a.add_argument("--threads", type=int, default=2)
    a.add_argument("--install", action="store_true", help="copy the result over the shipped model (sdk/facelink/animate/data/)")
    args = ap.parse_args(argv)

    if args.what == "audio2motion":
        try:
            import torch  # noqa: F401
        except ImportError:
            print("error: training needs PyTorch: pip install 'facelink[train]'", file=sys.stderr)
            return 2
        from ..animate._model import model_path
        from ._audio2motion import train_audio2motion

        cache = args.cache or args.out.parent / "speech-cache"
        train_audio2motion(
            args.out, cache, epochs=args.epochs, seed=args.seed, threads=args.threads, install=model_path() if args.install else None
        )
        return 0

    from ..datasets import real_clips, split_clips
    from ..face import create_models
    from ._data import Recipe, load_samples

    clips = real_clips()
    if not clips:
        print("error: ../shared/data not found (set FACELINK_DATA): the refiner trains on real clips", file=sys.stderr)
        return 2
    train_clips, eval_clips = split_clips(clips)
    # monitoring only (never model selection): training persons whose name hashes to 0 mod 8
    val_persons = {c.person for c in train_clips if zlib.crc32(c.person.encode()) % 8 == 0}
    fit_clips = [c for c in train_clips if c.person not in val_persons]
    val_clips = [c for c in train_clips if c.person in val_persons]
    recipe = Recipe()
    if args.what == "refiner-int8":
        from ._quantize import quantize_refiner

        if not args.model.is_file():
            print(f"error: refiner model not found: {args.model}", file=sys.stderr)
            return 2
        models = create_models("onnxruntime", threads=args.threads)
        val = load_samples(val_clips, recipe, args.cache, models)
        picked = val[:: max(1, len(val) // args.inputs)][: args.inputs]
        record = quantize_refiner(args.model, [s.inputs for s in picked], args.out, method=args.method)
        print(json.dumps({"model": str(args.out), "bytes": args.out.stat().st_size, "method": args.method,
                          "calibration_inputs": record["int8"]["calibration_inputs"]}))  # fmt: skip
        if args.install:
            dst = _DATA / "refiner.int8.onnx"
            shutil.copyfile(args.out, dst)
            print(f"installed {dst}")
        return 0

    try:
        import torch  # noqa: F401
    except ImportError:
        print("error: training needs PyTorch: pip install 'facelink[train]'", file=sys.stderr)
        return 2
    from ._train import TrainConfig, train

    if args.max_clips:
        fit_clips, val_clips = fit_clips[: args.max_clips], val_clips[:1]
    cache = args.cache or args.out.parent / "cache"
    models = create_models("onnxruntime", threads=args.threads)
    print(f"data: {len(fit_clips)} training clips, {len(val_clips)} validation clips "
          f"({len(val_persons)} persons); evaluation persons ({len(eval_clips)} clips) never used")  # fmt: skip
    samples = load_samples(fit_clips, recipe, cache, models)
    val = load_samples(val_clips, recipe, cache, models)
    val = val[:: max(1, len(val) // 60)]
    extra = {k: v for k, v in (("crop", args.crop), ("w_grad", args.w_grad)) if v is not None}
    cfg = TrainConfig(steps=args.steps, batch=args.batch, seed=args.seed, threads=args.threads, **extra)
    record = {
        "recipe": recipe.__dict__,
        "train_clips": [c.rel for c in fit_clips],
        "val_clips": [c.rel for c in val_clips],
        "samples": len(samples),
    }
    onnx_path = train(cfg, samples, val, args.out, record)
    print(json.dumps({"model": str(onnx_path), "bytes": onnx_path.stat().st_size}))
    if args.install:
        dst = _DATA / "refiner.onnx"
        shutil.copyfile(onnx_path, dst)
        print(f"installed {dst}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
