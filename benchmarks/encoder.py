#!/usr/bin/env python3
"""Encoder benchmark on real clips: rate, keypoint fidelity and speed, per clip and median.

    python benchmarks/encoder.py [--quality low medium high] [--clips eval|train|all] [--out results.json]

For each clip (self-reenactment: the first face frame is the reference) the real encoder
runs (tracker + fit + codec); the packets are decoded by the library decoder and the
decoded landmarks compared with the encoder's own smoothed landmarks (mean 2-D error in
percent of the inter-ocular distance).  Rate counts every packet but the one-time
reference; the reference's size is reported separately.  Speed is the encoder alone
(tracking + landmarks + fit + code, video decoding excluded) on 256x256 clips.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "sdk"))

from facelink.codec import QUALITY_PRESETS, StreamDecoder  # noqa: E402
from facelink.datasets import real_clips, split_clips  # noqa: E402
from facelink.face import FaceTracker, create_models, inter_ocular  # noqa: E402
from facelink.io import open_video  # noqa: E402
from facelink.sender import FrameEncoder, make_reference  # noqa: E402


def run_clip(path: str, params, models) -> dict:
    frames = list(open_video(path))
    det, lmm = models
    first = None
    probe = FaceTracker(det, lmm)
    for f in frames:
        if probe.update(f.image, f.time) is not None:
            first = f
            break
    if first is None:
        return {"error": "no face"}
    ref = make_reference(first.image, models)
    h, w = frames[0].image.shape[:2]
    enc = FrameEncoder(ref, params, width=w, height=h, fps=30, tracker=FaceTracker(det, lmm))
    dec = StreamDecoder()
    for p in enc.start():
        dec.feed(p)
    errs = []
    t0 = time.perf_counter()
    for f in frames:
        pkt, _ = enc.push(f)
        kf = dec.feed(pkt)
        obs = enc.last_observation
        if obs is not None and kf is not None and kf.pose is not None:
            rec = dec.landmarks(kf)
            errs.append(float(np.mean(np.linalg.norm(rec[:, :2] - obs.landmarks[:, :2], axis=1)) / inter_ocular(obs.landmarks)))
    wall = time.perf_counter() - t0
    dec.feed(enc.end())
    s = enc.stats
    duration = len(frames) / float(open_video(path).fps)
    return {
        "frames": len(frames),
        "face_frames": s.face_frames,
        "kbps_at_30fps": round(8 * s.bytes / (len(frames) / 30.0) / 1000, 3),
        "kbps_native_fps": round(8 * s.bytes / duration / 1000, 3),
        "bytes": s.bytes,
        "reference_bytes": s.reference_bytes,
        "err_pct_iod": round(100 * float(np.mean(errs)), 3) if errs else None,
        "encoder_fps": round(len(frames) / wall, 1),
        "track_ms": round(1000 * s.timings["track"] / len(frames), 2),
        "code_ms": round(1000 * s.timings["code"] / len(frames), 2),
        "size": f"{w}x{h}",
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quality", nargs="+", default=["medium"], choices=list(QUALITY_PRESETS))
    ap.add_argument("--clips", default="eval", choices=["eval", "train", "all"])
    ap.add_argument("--limit", type=int, default=0, help="only the first N clips")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)
    clips = real_clips()
    if not clips:
        print("../shared/data not found: nothing to benchmark", file=sys.stderr)
        return 2
    train, evals = split_clips(clips)
    sel = {"eval": evals, "train": train, "all": clips}[args.clips]
    if args.limit:
        sel = sel[: args.limit]
    models = create_models()
    report = {}
    for q in args.quality:
        rows = {}
        for c in sel:
            rows[c.rel] = run_clip(str(c.path), QUALITY_PRESETS[q], models)
            print(q, c.rel, rows[c.rel], flush=True)
        ok = [r for r in rows.values() if "error" not in r]
        small = [r for r in ok if r["size"] in ("256x256", "224x224")]
        summary = {
            "clips": len(ok),
            "median_kbps_at_30fps": float(np.median([r["kbps_at_30fps"] for r in ok])),
            "max_kbps_at_30fps": float(np.max([r["kbps_at_30fps"] for r in ok])),
            "median_err_pct_iod": float(np.median([r["err_pct_iod"] for r in ok])),
            "max_err_pct_iod": float(np.max([r["err_pct_iod"] for r in ok])),
            "median_reference_bytes": float(np.median([r["reference_bytes"] for r in ok])),
            "median_encoder_fps_small_clips": float(np.median([r["encoder_fps"] for r in small])) if small else None,
        }
        print(q, "SUMMARY", json.dumps(summary), flush=True)
        report[q] = {"summary": summary, "clips": rows}
    if args.out:
        args.out.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
