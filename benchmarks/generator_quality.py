#!/usr/bin/env python3
"""Self-reenactment quality of the whole pipeline against the "static reference" baseline.

    python benchmarks/generator_quality.py [--clips eval|all] [--frames 150] [--out results.json]

For each real clip (native resolution), the first face frame is the reference; every frame
goes through the real encoder (medium), the bitstream and the receiver (generator +
watermark); the output is compared with the true frame (SSIM and PSNR on luma, whole
frame).  The baseline shows the reference unchanged.  Also reports AKD: landmarks tracked
on the output vs on the true frame, mean 2-D error in % of the inter-ocular distance.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "sdk"))

from facelink.bench._metrics import psnr, ssim  # noqa: E402
from facelink.codec import QUALITY_PRESETS  # noqa: E402
from facelink.datasets import real_clips, split_clips  # noqa: E402
from facelink.face import FaceTracker, create_models, inter_ocular  # noqa: E402
from facelink.io import open_video  # noqa: E402
from facelink.receiver import FrameRenderer  # noqa: E402
from facelink.sender import FrameEncoder, make_reference  # noqa: E402


def run_clip(path: str, models, n_frames: int) -> dict | None:
    frames = []
    with open_video(path) as video:
        for f in video:
            frames.append(f)
            if len(frames) >= n_frames:
                break
    probe = FaceTracker(*models)
    first = next((f for f in frames if probe.update(f.image, f.time) is not None), None)
    if first is None:
        return None
    ref = make_reference(first.image, models)
    h, w = ref.image.shape[:2]
    enc = FrameEncoder(ref, QUALITY_PRESETS["medium"], width=w, height=h, fps=25, tracker=FaceTracker(*models))
    rnd = FrameRenderer(receiver_key=bytes(32))
    for p in enc.start():
        rnd.push(p)
    true_tr, gen_tr = FaceTracker(*models), FaceTracker(*models)
    rows = []
    for f in frames:
        pkt, _ = enc.push(f)
        out = rnd.push(pkt)
        if out is None:
            continue
        row = {
            "ssim": ssim(out.image, f.image), "ssim_static": ssim(ref.image, f.image),
            "psnr": psnr(out.image, f.image), "psnr_static": psnr(ref.image, f.image),
        }  # fmt: skip
        a, b = true_tr.update(f.image, f.time), gen_tr.update(out.image, f.time)
        if a is not None and b is not None:
            row["akd"] = float(np.mean(np.linalg.norm(a.landmarks[:, :2] - b.landmarks[:, :2], axis=1)) / inter_ocular(a.landmarks))
        rows.append(row)
    mean = {k: float(np.mean([r[k] for r in rows if k in r])) for k in ("ssim", "ssim_static", "psnr", "psnr_static", "akd")}
    mean["frames"] = len(rows)
    mean["size"] = f"{w}x{h}"
    return mean


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", default="eval", choices=["eval", "all"])
    ap.add_argument("--frames", type=int, default=150)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)
    clips = real_clips()
    if not clips:
        print("../shared/data not found: nothing to benchmark", file=sys.stderr)
        return 2
    sel = split_clips(clips)[1] if args.clips == "eval" else clips
    models = create_models()
    res = {}
    for c in sel:
        r = run_clip(str(c.path), models, args.frames)
        if r is None:
            continue
        res[c.rel] = r
        print(f"{c.rel:70s} {r['size']:>9s} SSIM {r['ssim']:.3f} vs {r['ssim_static']:.3f}  PSNR {r['psnr']:.2f} vs {r['psnr_static']:.2f}  AKD {100 * r['akd']:.2f} %", flush=True)
    n = len(res)
    beats = sum(r["ssim"] > r["ssim_static"] and r["psnr"] > r["psnr_static"] for r in res.values())
    summary = {
        "clips": n,
        "beats_static_on_both": beats,
        "median_ssim": float(np.median([r["ssim"] for r in res.values()])),
        "median_ssim_static": float(np.median([r["ssim_static"] for r in res.values()])),
        "median_psnr": float(np.median([r["psnr"] for r in res.values()])),
        "median_psnr_static": float(np.median([r["psnr_static"] for r in res.values()])),
        "mean_akd_pct_iod": 100 * float(np.mean([r["akd"] for r in res.values()])),
    }
    print("SUMMARY", json.dumps(summary))
    if args.out:
        args.out.write_text(json.dumps({"summary": summary, "clips": res}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
