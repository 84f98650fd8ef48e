#!/usr/bin/env python3
"""What a viewer sees: open mouths, head turns and free-view re-posing of the generator.

    python benchmarks/generator_views.py [--frames 120] [--every 2] [--size 256]
        [--cache DIR] [--json out.json] [--sheet contact.png]

Self-reenactment on the evaluation persons' clips (``facelink.datasets.split_clips``), each
cropped to a face-centred square of ``--size`` (the codec bench's crop); the first face frame
is the reference, the tracker's landmarks of every ``--every``-th later frame drive
``Generator`` directly (no codec: this measures the renderer).  Per clip:

* whole-frame luma SSIM and PSNR against the true frame, and the same for the reference shown
  unchanged ("static");
* **mouth-box SSIM on open-mouth frames**: frames whose true mouth aspect ratio (inner-lip gap
  13-14 over the corner distance 78-308) exceeds 0.25; the box is the outer lips' bounding box
  of the true frame grown by 25 % per side.

``--regions`` adds region references as a ``medium`` sender makes them
(``facelink.codec._regions``): the sender's picker sees every frame in order; each crop goes
through its packet's bytes and the receiver's parser and reaches the generator after the frame
it was sent with.  Open-mouth frames within 2 frames of a crop's own frame are left out of the
mouth score (with and without ``--regions``), so a crop never scores itself.

``--segmentation off`` builds the background plate with the colour fallback instead of the
selfie-segmentation network (``auto``: the network when the model cache holds it); each clip
reports which one its plate used (``plate``: network, colour or none).

``--sheet`` writes a contact sheet, one row per clip: reference | true and generated frame at
the widest mouth | true and generated frame at the largest head rotation | the reference
re-posed by yaw -30 and +30 degrees and by (yaw 20, pitch -5).  It shows third-party footage:
do not commit it.  ``--cache`` keeps the cropped frames and landmarks (npz per clip) so a
second build can be compared without tracking again.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "sdk"))

from facelink.bench._metrics import psnr, ssim  # noqa: E402
from facelink.datasets import real_clips, split_clips  # noqa: E402
from facelink.generator import Generator  # noqa: E402
from facelink.generator._mesh import LIPS_OUTER  # noqa: E402
from facelink.keypoints import Pose, default_basis, similarity_fit  # noqa: E402
from facelink.keypoints._fit import KeypointFitter  # noqa: E402

OPEN_MAR = 0.25


def mouth_aspect(lm: np.ndarray) -> float:
    return float(np.linalg.norm(lm[13, :2] - lm[14, :2]) / max(np.linalg.norm(lm[78, :2] - lm[308, :2]), 1e-6))


def mouth_box(lm: np.ndarray, h: int, w: int) -> tuple[int, int, int, int]:
    p = lm[list(LIPS_OUTER), :2]
    lo, hi = p.min(axis=0), p.max(axis=0)
    pad = 0.25 * (hi - lo)
    x0, y0 = np.floor(lo - pad).astype(int)
    x1, y1 = np.ceil(hi + pad).astype(int)
    return max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)


def rotation(lm: np.ndarray) -> np.ndarray:
    b = default_basis()
    return similarity_fit(b.mean, lm.astype(np.float64), b.weights)[1]


def repose(ref_lm: np.ndarray, yaw: float, pitch: float, roll: float) -> np.ndarray:
    """The reference's landmarks turned by (yaw, pitch, roll) degrees (what ``--pose`` does)."""
    b = default_basis()
    fitter, _ = KeypointFitter.from_reference(b, ref_lm.astype(np.float64), 20)
    p, c = fitter.fit(ref_lm.astype(np.float64))
    turned = Pose(p.yaw + np.radians(yaw), p.pitch + np.radians(pitch), p.roll + np.radians(roll), p.tx, p.ty, p.scale)
    return fitter.reconstruct(turned, c).astype(np.float32)


def load_clip(clip, size: int, frames: int, models, cache: Path | None):
    path = cache / (clip.rel.replace("/", "__") + f".{size}.{frames}.npz") if cache else None
    if path is not None and path.is_file():
        z = np.load(path)
        return z["frames"], z["lm"], z["ok"]
    from facelink.bench._codec import prepare_clip
    from facelink.face import FaceTracker

    prepared = prepare_clip(str(clip.path), size, frames, models, name=clip.rel, person=clip.person)
    tracker = FaceTracker(*models)
    lms, ok = [], []
    for f, t in zip(prepared.frames, prepared.times):
        obs = tracker.update(f, t)
        ok.append(obs is not None)
        lms.append(obs.landmarks if obs is not None else np.zeros((468, 3), np.float32))
    out = np.stack(prepared.frames), np.stack(lms).astype(np.float32), np.array(ok)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(path, frames=out[0], lm=out[1], ok=out[2])
    return out


def region_packets(frames: np.ndarray, lm: np.ndarray, ok: np.ndarray, i0: int) -> list[tuple[int, bytes]]:
    """(frame index it arrives with, packet) for every region reference a ``medium`` sender sends."""
    from facelink.codec import QUALITY_PRESETS
    from facelink.codec._regions import RegionPicker, mouth_opening
    from facelink.keypoints import canonicalize

    b = default_basis()
    ref_open = mouth_opening(canonicalize(b, lm[i0].astype(np.float64))[0])
    picker = RegionPicker(bytes(32), b, QUALITY_PRESETS["medium"].region_bytes, ref_open)
    out = []
    for i in range(i0 + 1, len(frames)):
        pkt = picker.offer(i, frames[i], lm[i].astype(np.float64) if ok[i] else None)
        if pkt is not None:
            out.append((i, pkt))
    return out


def run_clip(
    frames: np.ndarray, lm: np.ndarray, ok: np.ndarray, every: int, sheet: bool, regions: bool = False, segmentation: str = "auto"
) -> tuple[dict, list | None] | None:
    from facelink.bitstream import parse_packet
    from facelink.codec._regions import parse_region

    if ok.sum() < 10:
        return None
    i0 = int(np.argmax(ok))
    ref, ref_lm = frames[i0], lm[i0]
    h, w = ref.shape[:2]
    rows, mouth = [], []
    widest = turn = None
    r0 = rotation(ref_lm)
    # the crops a sender would send (made either way, so both runs score the same frames)
    pending = region_packets(frames, lm, ok, i0)
    own_frames = {int(parse_packet(p).frame_seq) + d for _, p in pending for d in range(-2, 3)}
    sent = []
    with Generator(ref, ref_lm, segmentation=segmentation) as gen:
        source = gen.plate_source
        for i in range(i0 + 1, len(frames), every):
            while regions and pending and pending[0][0] < i:
                r = parse_region(parse_packet(pending.pop(0)[1]))
                gen.set_mouth_interior(r.image, r.pixels, r.canonical)
                sent.append(r.frame_seq)
            if not ok[i]:
                continue
            out, true = gen.render(lm[i]), frames[i]
            rows.append((ssim(out, true), ssim(ref, true), psnr(out, true), psnr(ref, true)))
            m = mouth_aspect(lm[i])
            if m > OPEN_MAR and i not in own_frames:
                x0, y0, x1, y1 = mouth_box(lm[i], h, w)
                if x1 - x0 > 10 and y1 - y0 > 10:
                    mouth.append(ssim(out[y0:y1, x0:x1], true[y0:y1, x0:x1]))
            if widest is None or m > widest[0]:
                widest = (m, true, out)
            r = rotation(lm[i])
            angle = float(np.degrees(np.arccos(np.clip((np.trace(r @ r0.T) - 1) / 2, -1, 1))))
            if turn is None or angle > turn[0]:
                turn = (angle, true, out)
        tiles = None
        if sheet:
            views = [gen.render(repose(ref_lm, *p)) for p in ((-30, 0, 0), (30, 0, 0), (20, -5, 0))]
            tiles = [ref, widest[1], widest[2], turn[1], turn[2], *views]
    a = np.mean(rows, axis=0)
    res = {
        "ssim": float(a[0]), "ssim_static": float(a[1]), "psnr": float(a[2]), "psnr_static": float(a[3]),
        "mouth_ssim": float(np.mean(mouth)) if mouth else None, "mouth_frames": len(mouth), "mouth_all": [float(x) for x in mouth],
        "widest_mar": float(widest[0]), "largest_turn_deg": float(turn[0]), "regions_from": sent,
        "plate": source,
    }  # fmt: skip
    return res, tiles


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=120)
    ap.add_argument("--every", type=int, default=2)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--cache", type=Path)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--sheet", type=Path)
    ap.add_argument("--regions", action="store_true", help="send region references (crops of the open mouth)")
    ap.add_argument(
        "--segmentation", choices=("auto", "off"), default="auto",
        help="the plate's person segmentation: the selfie network when cached (auto) or colour only (off)",
    )  # fmt: skip
    args = ap.parse_args(argv)
    clips = real_clips()
    if not clips:
        print("../shared/data not found: nothing to benchmark", file=sys.stderr)
        return 2
    from facelink.face import create_models

    models = create_models()
    res, sheet = {}, []
    for c in split_clips(clips)[1]:
        try:
            data = load_clip(c, args.size, args.frames, models, args.cache)
        except Exception as e:  # a clip the reader cannot use: say so, go on
            print(f"{c.rel}: skipped ({e})", file=sys.stderr)
            continue
        got = run_clip(*data, args.every, args.sheet is not None, args.regions, args.segmentation)
        if got is None:
            continue
        res[c.rel], tiles = got
        r = res[c.rel]
        mouth = f"{r['mouth_ssim']:.3f} ({r['mouth_frames']} open)" if r["mouth_ssim"] is not None else "-"
        print(f"{c.rel[:64]:64s} SSIM {r['ssim']:.4f} vs {r['ssim_static']:.4f}  PSNR {r['psnr']:.2f} vs {r['psnr_static']:.2f}  mouth {mouth}  plate {r['plate']}", flush=True)
        if tiles is not None:
            sheet.append(tiles)
    pooled = [x for r in res.values() for x in r["mouth_all"]]
    summary = {
        "clips": len(res),
        "beats_static_on_both": int(sum(r["ssim"] > r["ssim_static"] and r["psnr"] > r["psnr_static"] for r in res.values())),
        "median_ssim": float(np.median([r["ssim"] for r in res.values()])),
        "median_ssim_static": float(np.median([r["ssim_static"] for r in res.values()])),
        "median_psnr": float(np.median([r["psnr"] for r in res.values()])),
        "median_psnr_static": float(np.median([r["psnr_static"] for r in res.values()])),
        "open_mouth_frames": len(pooled),
        "mouth_ssim_open": float(np.mean(pooled)) if pooled else None,
        "plates": {k: sum(r["plate"] == k for r in res.values()) for k in ("network", "colour", "none")},
    }
    print("SUMMARY", json.dumps(summary))
    if args.json:
        args.json.write_text(json.dumps({"summary": summary, "clips": res}, indent=1))
    if args.sheet and sheet:
        from facelink.bench import contact_sheet

        titles = ["reference", "true: widest mouth", "generated", "true: largest turn", "generated", "pose -30,0,0", "pose 30,0,0", "pose 20,-5,0"]
        labels = ["", "", "", "", "", "", "", ""]
        contact_sheet([list(zip(t, labels)) for t in sheet], titles).save(args.sheet)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
