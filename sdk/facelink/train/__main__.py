"""``python -m facelink.train refiner --out DIR``: build the data, train, export ONNX.

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


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m facelink.train", description="train FaceLink's learned refiner")
    sub = ap.add_subparsers(dest="what", required=True)
    r = sub.add_parser("refiner", help="train the generator's refinement network")
    r.add_argument("--out", type=Path, required=True, help="run directory (loss curves, checkpoints, refiner.onnx)")
    r.add_argument("--cache", type=Path, help="sample cache (default: OUT/../cache)")
    r.add_argument("--steps", type=int, default=12000)
    r.add_argument("--batch", type=int, default=16)
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--threads", type=int, default=2)
    r.add_argument("--max-clips", type=int, default=0, help="use only the first N training clips (smoke runs)")
    r.add_argument("--install", action="store_true", help="copy the result over the shipped model (sdk/facelink/generator/data/refiner.onnx)")
    args = ap.parse_args(argv)

    try:
        import torch  # noqa: F401
    except ImportError:
        print("error: training needs PyTorch: pip install 'facelink[train]'", file=sys.stderr)
        return 2
    from ..datasets import real_clips, split_clips
    from ..face import create_models
    from ._data import Recipe, load_samples
    from ._train import TrainConfig, train

    clips = real_clips()
    if not clips:
        print("error: ../shared/data not found (set FACELINK_DATA): the refiner trains on real clips", file=sys.stderr)
        return 2
    train_clips, eval_clips = split_clips(clips)
    # monitoring only (never model selection): training persons whose name hashes to 0 mod 8
    val_persons = {c.person for c in train_clips if zlib.crc32(c.person.encode()) % 8 == 0}
    fit_clips = [c for c in train_clips if c.person not in val_persons]
    val_clips = [c for c in train_clips if c.person in val_persons]
    if args.max_clips:
        fit_clips, val_clips = fit_clips[: args.max_clips], val_clips[:1]
    recipe = Recipe()
    cache = args.cache or args.out.parent / "cache"
    models = create_models("onnxruntime", threads=args.threads)
    print(f"data: {len(fit_clips)} training clips, {len(val_clips)} validation clips "
          f"({len(val_persons)} persons); evaluation persons ({len(eval_clips)} clips) never used")  # fmt: skip
    samples = load_samples(fit_clips, recipe, cache, models)
    val = load_samples(val_clips, recipe, cache, models)
    val = val[:: max(1, len(val) // 60)]
    cfg = TrainConfig(steps=args.steps, batch=args.batch, seed=args.seed, threads=args.threads)
    record = {
        "recipe": recipe.__dict__,
        "train_clips": [c.rel for c in fit_clips],
        "val_clips": [c.rel for c in val_clips],
        "samples": len(samples),
    }
    onnx_path = train(cfg, samples, val, args.out, record)
    print(json.dumps({"model": str(onnx_path), "bytes": onnx_path.stat().st_size}))
    if args.install:
        dst = Path(__file__).resolve().parents[1] / "generator" / "data" / "refiner.onnx"
        shutil.copyfile(onnx_path, dst)
        print(f"installed {dst}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
