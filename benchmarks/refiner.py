#!/usr/bin/env python3
"""Learned refiner vs warp only: self-reenactment on the evaluation persons at 256x256.

    python benchmarks/refiner.py [--frames 150] [--model PATH] [--out DIR]

Each evaluation clip (persons never seen in training) is cropped to a face-centred square and
resized to 256x256 as `facelink bench codec` does; its first face frame is the reference;
every frame goes through the real encoder (medium), the bitstream, the decoder and the
retargeter.  For each decoded frame the warp runs once and the refiner is applied to its
output, so "warp only" and "refined" differ only by the refiner.  Scores against the true
frame, whole 256x256 frame: SSIM and PSNR on luma (bench metrics), AKD (tracker landmarks on
output vs true frame, % of inter-ocular distance).  Also: refiner milliseconds per frame and
warp + refiner fps through ONNX Runtime on this machine, and a contact sheet of true / warp /
refined at the hardest moments (widest mouth, deepest blink, largest head turn) plus
re-posing by +-30 degrees yaw (no ground truth there).

Writes DIR/refiner.json, DIR/refiner.md and DIR/contact_sheet.png.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "sdk"))

from facelink.bench._codec import prepare_clip  # noqa: E402
from facelink.bench._metrics import psnr, ssim  # noqa: E402
from facelink.codec import QUALITY_PRESETS, StreamDecoder  # noqa: E402
from facelink.datasets import real_clips, split_clips  # noqa: E402
from facelink.face import FaceTracker, create_models, inter_ocular  # noqa: E402
from facelink.generator._refine import Refiner, default_refiner_path  # noqa: E402
from facelink.io import Frame  # noqa: E402
from facelink.receiver import SessionRenderer  # noqa: E402
from facelink.sender import FrameEncoder, make_reference  # noqa: E402

# Face Mesh indices: inner lips (top, bottom) and eye lids (upper, lower) for the hard moments
_LIP_TOP, _LIP_BOTTOM = 13, 14
_EYES = ((159, 145), (386, 374))


def _akd(tr_true: FaceTracker, tr_out: FaceTracker, true_img, out_img, t) -> float | None:
    a, b = tr_true.update(true_img, t), tr_out.update(out_img, t)
    if a is None or b is None:
        return None
    return float(np.mean(np.linalg.norm(a.landmarks[:, :2] - b.landmarks[:, :2], axis=1)) / inter_ocular(a.landmarks))


def run_clip(clip_path: str, models, refiner: Refiner, frames: int) -> dict | None:
    clip = prepare_clip(clip_path, 256, frames, models)
    probe = FaceTracker(*models)
    start = next((i for i, img in enumerate(clip.frames) if probe.update(img, clip.times[i]) is not None), None)
    if start is None:
        return None
    ref = make_reference(clip.frames[start], models)
    enc = FrameEncoder(ref, QUALITY_PRESETS["medium"], width=256, height=256, fps=clip.fps, tracker=FaceTracker(*models))
    dec = StreamDecoder()
    session = SessionRenderer(receiver_key=bytes(32), refiner="off")
    for p in enc.start():
        dec.feed(p)
    trackers = [FaceTracker(*models) for _ in range(3)]  # true, warp, refined
    rows, moments = [], []
    ms = []
    for i in range(start + 1, len(clip.frames)):
        truth, t = clip.frames[i], clip.times[i]
        pkt, _ = enc.push(Frame(truth, t, i))
        kf = dec.feed(pkt)
        if kf is None or kf.pose is None:
            continue
        session.prepare(dec)
        gen = session.generator
        lm = session.driving_landmarks(kf)
        patch, inputs = gen.warp_parts(lm)
        x0, y0, x1, y1 = gen.face_box
        warp = ref.image.copy()
        warp[y0:y1, x0:x1] = patch
        t0 = time.perf_counter()
        refined_patch = refiner(patch, inputs)
        ms.append(1000 * (time.perf_counter() - t0))
        refined = ref.image.copy()
        refined[y0:y1, x0:x1] = refined_patch
        row = {"ssim_warp": ssim(warp, truth), "ssim_refined": ssim(refined, truth), "psnr_warp": psnr(warp, truth), "psnr_refined": psnr(refined, truth)}
        a = trackers[0].update(truth, t)
        for name, img, tr in (("warp", warp, trackers[1]), ("refined", refined, trackers[2])):
            b = tr.update(img, t)
            if a is not None and b is not None:
                row[f"akd_{name}"] = float(np.mean(np.linalg.norm(a.landmarks[:, :2] - b.landmarks[:, :2], axis=1)) / inter_ocular(a.landmarks))
        rows.append(row)
        if a is not None:
            lmk = a.landmarks
            iod = inter_ocular(lmk)
            mouth = float(np.linalg.norm(lmk[_LIP_TOP, :2] - lmk[_LIP_BOTTOM, :2]) / iod)
            eye = float(min(np.linalg.norm(lmk[u, :2] - lmk[d, :2]) for u, d in _EYES) / iod)
            moments.append({"index": i, "mouth": mouth, "eye": eye, "yaw": abs(float(np.degrees(kf.pose.yaw))),
                            "images": (truth, warp, refined)})  # fmt: skip
    session.generator.close()
    if not rows:
        return None
    res = {k: float(np.mean([r[k] for r in rows if k in r])) for k in rows[0]}
    res |= {"frames": len(rows), "refiner_ms": float(np.median(ms))}
    # keep only the extreme moments' images (memory)
    keep = {}
    if moments:
        keep["widest mouth"] = max(moments, key=lambda m: m["mouth"])
        keep["deepest blink"] = min(moments, key=lambda m: m["eye"])
        keep["largest head turn"] = max(moments, key=lambda m: m["yaw"])
    res["_moments"] = {k: {"score": {"mouth": v["mouth"], "eye": v["eye"], "yaw": v["yaw"]}[{"widest mouth": "mouth", "deepest blink": "eye", "largest head turn": "yaw"}[k]], "index": v["index"], "images": v["images"]} for k, v in keep.items()}
    res["_repose"] = _repose(clip, start, ref, models, refiner)
    return res


def _repose(clip, start, ref, models, refiner) -> dict:
    """Warp vs refined when the head is re-posed by -30 and +30 degrees yaw (middle frame)."""
    out = {}
    mid = start + (len(clip.frames) - start) // 2
    for yaw in (-30.0, 30.0):
        enc = FrameEncoder(ref, QUALITY_PRESETS["medium"], width=256, height=256, fps=clip.fps, tracker=FaceTracker(*models))
        dec = StreamDecoder()
        session = SessionRenderer(receiver_key=bytes(32), refiner="off", pose_offset=(yaw, 0.0, 0.0))
        for p in enc.start():
            dec.feed(p)
        got = None
        for i in range(start, mid + 1):
            kf = dec.feed(enc.push(Frame(clip.frames[i], clip.times[i], i))[0])
            if kf is not None and kf.pose is not None:
                session.prepare(dec)
                got = session.driving_landmarks(kf)
        if got is None:
            continue
        gen = session.generator
        patch, inputs = gen.warp_parts(got)
        x0, y0, x1, y1 = gen.face_box
        warp = ref.image.copy()
        warp[y0:y1, x0:x1] = patch
        refined = ref.image.copy()
        refined[y0:y1, x0:x1] = refiner(patch, inputs)
        out[f"yaw {yaw:+.0f}°"] = (clip.frames[mid], warp, refined)
        gen.close()
    return out


def _speed(refiner: Refiner, models, clip_path: str) -> dict:
    """Warp alone and warp + refiner fps on one clip's decoded landmarks (this machine)."""
    from facelink.generator import Generator

    clip = prepare_clip(clip_path, 256, 60, models)
    tr = FaceTracker(*models)
    obs = [tr.update(img, t) for img, t in zip(clip.frames, clip.times)]
    lms = [o.landmarks.astype(np.float32) for o in obs if o is not None]
    ref_img, ref_lm = clip.frames[0], lms[0]
    res = {}
    for name, mode in (("warp", "off"), ("warp+refiner", str(refiner.model_path))):
        gen = Generator(ref_img, ref_lm, refiner=mode)
        for lm in lms[:5]:
            gen.render(lm)
        t0 = time.perf_counter()
        for lm in lms:
            gen.render(lm)
        res[f"{name}_fps"] = len(lms) / (time.perf_counter() - t0)
        gen.close()
    return res


def _sheet(results: dict, path: Path) -> list[str]:
    from PIL import Image, ImageDraw

    rows = []  # (label, truth, warp, refined)
    for kind in ("widest mouth", "deepest blink", "largest head turn"):
        best = None
        for clip, r in results.items():
            m = r["_moments"].get(kind)
            if m is None:
                continue
            score = m["score"] if kind != "deepest blink" else -m["score"]
            if best is None or score > best[0]:
                best = (score, clip, m)
        if best:
            rows.append((f"{kind}: {Path(best[1]).stem} #{best[2]['index']}", *best[2]["images"]))
    first = next(iter(results))
    for k, imgs in results[first]["_repose"].items():
        rows.append((f"re-posed {k}: {Path(first).stem}", *imgs))
    w = 256
    sheet = Image.new("RGB", (3 * w + 20, len(rows) * (w + 18) + 18), "white")
    d = ImageDraw.Draw(sheet)
    for c, name in enumerate(("true (or driving frame)", "warp only", "refined")):
        d.text((c * (w + 10) + 4, 2), name, fill="black")
    for r, (label, *imgs) in enumerate(rows):
        y = 18 + r * (w + 18)
        d.text((4, y), label, fill="black")
        for c, img in enumerate(imgs):
            sheet.paste(Image.fromarray(img), (c * (w + 10), y + 14))
    sheet.save(path)
    return [r[0] for r in rows]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=150)
    ap.add_argument("--model", type=Path, default=default_refiner_path())
    ap.add_argument("--max-clips", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path("bench-out/refiner"))
    args = ap.parse_args(argv)
    clips = real_clips()
    if not clips:
        print("../shared/data not found: nothing to benchmark", file=sys.stderr)
        return 2
    if args.model is None:
        print("no refiner model (train one: python -m facelink.train refiner --out DIR)", file=sys.stderr)
        return 2
    evals = split_clips(clips)[1]
    if args.max_clips:
        evals = evals[: args.max_clips]
    models = create_models("onnxruntime")
    refiner = Refiner(args.model, backend="onnxruntime")
    args.out.mkdir(parents=True, exist_ok=True)
    res = {}
    for c in evals:
        r = run_clip(str(c.path), models, refiner, args.frames)
        if r is None:
            continue
        res[c.rel] = r
        print(f"{c.rel:62s} SSIM {r['ssim_warp']:.4f} -> {r['ssim_refined']:.4f}  PSNR {r['psnr_warp']:.2f} -> {r['psnr_refined']:.2f}  "
              f"AKD {100 * r.get('akd_warp', float('nan')):.2f} -> {100 * r.get('akd_refined', float('nan')):.2f} %", flush=True)  # fmt: skip
    labels = _sheet(res, args.out / "contact_sheet.png")
    d_ssim = [r["ssim_refined"] - r["ssim_warp"] for r in res.values()]
    d_psnr = [r["psnr_refined"] - r["psnr_warp"] for r in res.values()]
    speed = _speed(refiner, models, str(evals[0].path))
    summary = {
        "clips": len(res),
        "persons": len({c.person for c in evals if c.rel in res}),
        "median_ssim_gain": float(np.median(d_ssim)),
        "median_psnr_gain_db": float(np.median(d_psnr)),
        "clips_losing": int(sum(a < 0 or b < 0 for a, b in zip(d_ssim, d_psnr))),
        "median_ssim": {"warp": float(np.median([r["ssim_warp"] for r in res.values()])), "refined": float(np.median([r["ssim_refined"] for r in res.values()]))},
        "median_psnr": {"warp": float(np.median([r["psnr_warp"] for r in res.values()])), "refined": float(np.median([r["psnr_refined"] for r in res.values()]))},
        "mean_akd_pct_iod": {k: 100 * float(np.mean([r[f"akd_{k}"] for r in res.values() if f"akd_{k}" in r])) for k in ("warp", "refined")},
        "refiner_ms_median": float(np.median([r["refiner_ms"] for r in res.values()])),
        "model_bytes": args.model.stat().st_size,
        "model_info": {k: v for k, v in refiner.info.items() if k in ("train_seconds", "hardware", "params", "samples", "config")},
        "contact_sheet_rows": labels,
    } | speed
    print("SUMMARY", json.dumps(summary))
    clean = {k: {kk: vv for kk, vv in v.items() if not kk.startswith("_")} for k, v in res.items()}
    (args.out / "refiner.json").write_text(json.dumps({"summary": summary, "clips": clean}, indent=1))
    lines = ["| clip | SSIM warp | SSIM refined | PSNR warp | PSNR refined | AKD warp % | AKD refined % |", "|---|---|---|---|---|---|---|"]
    for k, r in clean.items():
        lines.append(f"| {k} | {r['ssim_warp']:.4f} | {r['ssim_refined']:.4f} | {r['psnr_warp']:.2f} | {r['psnr_refined']:.2f} | "
                     f"{100 * r.get('akd_warp', float('nan')):.2f} | {100 * r.get('akd_refined', float('nan')):.2f} |")  # fmt: skip
    (args.out / "refiner.md").write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
