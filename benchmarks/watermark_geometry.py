"""Watermark attack matrix: geometry (mirror, rotation, large and off-centre crops) and frame-rate conversion.

Real talking-head clips from ``../shared/data`` (person-held-out evaluation split, one clip
per person) are centre-cropped to squares, resized to ``--size`` and marked "as if they were
generator output" with a random payload and session frame index.  Each attack is applied to
the marked clip (every geometric or temporal attack is followed by an H.264 CRF 23 encode,
as any tool that flips, rotates, crops or converts the frame rate writes a new file), then
``facelink.watermark.detect`` runs on the result.

    python benchmarks/watermark_geometry.py                          # 6 clips, writes watermark_geometry_results.md
    python benchmarks/watermark_geometry.py --clips 2 --attacks flip,"rotate 10" --out /tmp/g.md

Per attack the table gives the median and minimum z over the clips (the detector's best
hypothesis), how many clips were called synthetic (p < 1e-6), how many gave the exact
embedded payload (identity word, CRC-24), and the median detection time of the clip.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import io
import json
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import watermark as wmb  # noqa: E402  (benchmarks/watermark.py: codecs, resize, crop, clip reading)

from facelink.datasets import data_root, real_clips, split_clips  # noqa: E402
from facelink.watermark import MarkKey, Watermarker, WatermarkPayload, detect  # noqa: E402

Frames = list


def _h264(f: Frames, crf: int = 23) -> Frames:
    return wmb._codec(f, "libx264", crf)


def _encode(frames: Frames, codec: str, options: dict[str, str], fps: int = 30) -> Frames:
    import av

    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as out:
        h, w = frames[0].shape[:2]
        s = out.add_stream(codec, rate=fps)
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        s.options = options
        for f in frames:
            for p in s.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="rgb24")):
                out.mux(p)
        for p in s.encode():
            out.mux(p)
    buf.seek(0)
    with av.open(buf) as inp:
        return [f.to_ndarray(format="rgb24") for f in inp.decode(video=0)]


def _even(frames: Frames) -> Frames:
    h, w = frames[0].shape[:2]
    return [np.ascontiguousarray(f[: h - h % 2, : w - w % 2]) for f in frames]


def _rotate(frames: Frames, deg: float) -> Frames:
    return [np.asarray(Image.fromarray(f).rotate(deg, Image.Resampling.BICUBIC, expand=False)) for f in frames]


def _crop_at(frames: Frames, k: float, fx: float, fy: float) -> Frames:
    """A k x k crop whose top-left corner sits at (fx, fy) of the free margin (0.5, 0.5 = centred)."""
    h, w = frames[0].shape[:2]
    ch, cw = round(h * k), round(w * k)
    y, x = round((h - ch) * fy), round((w - cw) * fx)
    return _even([np.ascontiguousarray(f[y : y + ch, x : x + cw]) for f in frames])


def _fps(frames: Frames, ratio: float, blend: bool = False) -> Frames:
    """Frame-rate conversion by ``ratio`` (source frames per output frame, e.g. 30/25).

    Nearest source frame (ffmpeg's ``fps`` filter), or a linear blend of the two source
    frames around the output time (ffmpeg's ``framerate`` filter).
    """
    out = []
    j = 0
    while True:
        t = j * ratio
        if blend:
            a = int(np.floor(t))
            if a + 1 >= len(frames):
                break
            w = t - a
            out.append(np.clip((1 - w) * frames[a] + w * frames[a + 1] + 0.5, 0, 255).astype(np.uint8) if w > 1e-6 else frames[a])
        else:
            a = int(np.floor(t + 0.5))
            if a >= len(frames):
                break
            out.append(frames[a])
        j += 1
    return out


def _gif(frames: Frames) -> Frames:
    out = []
    for f in frames[::2]:  # GIFs are usually made at 15 fps or less
        b = io.BytesIO()
        Image.fromarray(f).save(b, "GIF")
        out.append(np.asarray(Image.open(io.BytesIO(b.getvalue())).convert("RGB")))
    return out


def _blur(frames: Frames, r: float) -> Frames:
    return [np.asarray(Image.fromarray(f).filter(ImageFilter.GaussianBlur(r))) for f in frames]


def _contrast(frames: Frames, gain: float, offset: float) -> Frames:
    return [np.clip(gain * (f.astype(np.float32) - 128) + 128 + offset, 0, 255).astype(np.uint8) for f in frames]


ATTACKS: dict[str, Callable[[Frames], Frames]] = {
    # what already worked (regression rows)
    "none": lambda f: f,
    "H.264 CRF 23": lambda f: _h264(f, 23),
    "H.264 CRF 38": lambda f: _h264(f, 38),
    "H.265 CRF 28": lambda f: wmb._codec(f, "libx265", 28),
    "VP9 CRF 40": lambda f: _encode(f, "libvpx-vp9", {"crf": "40", "b": "0", "deadline": "realtime", "cpu-used": "8"}),
    "AV1 (SVT) CRF 40": lambda f: _encode(f, "libsvtav1", {"crf": "40", "preset": "10"}),
    "GIF (256 colours, 15 fps)": _gif,
    "resize 0.25x": lambda f: _h264(wmb._resize(f, 0.25)),
    "resize 0.5x + CRF 28": lambda f: wmb._codec(wmb._resize(f, 0.5), "libx264", 28),
    "centre crop 80%": lambda f: _h264(_crop_at(f, 0.8, 0.5, 0.5)),
    "blur r=1.5": lambda f: _h264(_blur(f, 1.5)),
    "contrast x1.3, brightness -15": lambda f: _h264(_contrast(f, 1.3, -15)),
    "JPEG 30": lambda f: wmb._jpeg(f, 30),
    "15 fps (every other frame)": lambda f: _h264(f[::2]),
    "2-s excerpt (from 1 s)": lambda f: _h264(f[len(f) // 4 : len(f) // 4 + len(f) // 2]),
    "rotate 1": lambda f: _h264(_rotate(f, 1)),
    # the gaps of issue 20 item 6
    "mirror (horizontal flip)": lambda f: _h264([np.ascontiguousarray(x[:, ::-1]) for x in f]),
    "mirror + 0.5x + CRF 28": lambda f: wmb._codec(wmb._resize([np.ascontiguousarray(x[:, ::-1]) for x in f], 0.5), "libx264", 28),
    "rotate 3": lambda f: _h264(_rotate(f, 3)),
    "rotate 5": lambda f: _h264(_rotate(f, 5)),
    "rotate -7": lambda f: _h264(_rotate(f, -7)),
    "rotate -10": lambda f: _h264(_rotate(f, -10)),
    "rotate 10": lambda f: _h264(_rotate(f, 10)),
    "centre crop 60%": lambda f: _h264(_crop_at(f, 0.6, 0.5, 0.5)),
    "centre crop 50%": lambda f: _h264(_crop_at(f, 0.5, 0.5, 0.5)),
    "crop 70% top-left corner": lambda f: _h264(_crop_at(f, 0.7, 0.0, 0.0)),
    "crop 60% bottom-right corner": lambda f: _h264(_crop_at(f, 0.6, 1.0, 1.0)),
    "crop 50% off-centre (0.2, 0.8)": lambda f: _h264(_crop_at(f, 0.5, 0.2, 0.8)),
    "crop 75% x 55% (aspect change)": lambda f: _h264(_even([np.ascontiguousarray(x[round(0.3 * x.shape[0]) : round(0.85 * x.shape[0]), round(0.1 * x.shape[1]) : round(0.85 * x.shape[1])]) for x in f])),
    "30->25 fps (drop)": lambda f: _h264(_fps(f, 30 / 25)),
    "30->24 fps (drop)": lambda f: _h264(_fps(f, 30 / 24)),
    "30->25 fps (blend)": lambda f: _h264(_fps(f, 30 / 25, blend=True)),
    "30->24 fps (blend)": lambda f: _h264(_fps(f, 30 / 24, blend=True)),
    "mirror + rotate 5 + crop 70% + 30->25": lambda f: _h264(_crop_at(_rotate([np.ascontiguousarray(x[:, ::-1]) for x in _fps(f, 1.2)], 5), 0.7, 0.3, 0.6)),
}


def _shown_args(argv: list[str]) -> str:
    """The command line for the report: without --note (printed below the table) and --json."""
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
            continue
        if a in ("--note", "--json"):
            skip = True
            continue
        if a.startswith(("--note=", "--json=")):
            continue
        out.append(Path(a).name if a.endswith(".json") else a)
    return " ".join(out)


def _clips(root: Path, n: int, frames: int):
    _, evals = split_clips(real_clips(root))
    seen: dict[str, object] = {}
    for c in evals:
        if c.frames >= frames and c.person not in seen:
            seen[c.person] = c
    return list(seen.values())[:n]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", type=int, default=6)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--seconds", type=float, default=4.0, help="marked clip length (at 30 fps: frames = 30 x seconds)")
    ap.add_argument("--attacks", default="", help="comma-separated attack names (default: all)")
    ap.add_argument("--out", default=str(HERE / "watermark_geometry_results.md"))
    ap.add_argument("--json", default=None)
    ap.add_argument("--note", default="")
    ap.add_argument("--compare", default=None, metavar="JSON", help="--json of an earlier run (e.g. another detector): adds its z and exact columns")
    args = ap.parse_args(argv)
    root = data_root()
    if root is None:
        print("benchmarks/watermark_geometry.py: ../shared/data is absent; nothing to measure", file=sys.stderr)
        return 1
    names = [a.strip() for a in args.attacks.split(",") if a.strip()] or list(ATTACKS)
    unknown = [a for a in names if a not in ATTACKS]
    if unknown:
        print(f"unknown attacks: {unknown}; known: {list(ATTACKS)}", file=sys.stderr)
        return 2
    n = round(30 * args.seconds)  # marked as a 30 fps session: the fps rows convert from 30
    clips = _clips(root, args.clips, n)
    key = MarkKey.from_hex("public")
    rows: dict[str, list[dict]] = {a: [] for a in names}
    t0 = time.perf_counter()
    for ci, clip in enumerate(clips):
        frames = wmb._read(clip.path, n, args.size)
        rng = np.random.default_rng(1000 + ci)
        payload = WatermarkPayload(rng.bytes(4), rng.bytes(3))
        start = int(rng.integers(0, 16384))
        wm = Watermarker(key, payload)
        marked = [wm.embed(f, start + i) for i, f in enumerate(frames)]
        psnr = float(np.mean([wmb.psnr(a, b) for a, b in zip(frames[::10], marked[::10])]))
        print(f"{clip.rel}: {len(marked)} frames, PSNR {psnr:.2f} dB  [{time.perf_counter() - t0:.0f} s]", file=sys.stderr, flush=True)
        for a in names:
            attacked = ATTACKS[a](marked)
            t = time.perf_counter()
            r = detect(attacked, key)
            dt = time.perf_counter() - t
            rows[a].append({"clip": clip.rel, "z": r.z, "synthetic": r.synthetic, "exact": bool(r.payload_bits_ok and r.payload == payload),
                            "p": r.p_value, "frames": len(attacked), "seconds": dt, "psnr": psnr,
                            "geometry": {k: v for k, v in r.as_dict().items() if k in ("crop", "stride", "rate", "mirrored", "rotation", "scale")}})
            print(f"  {a}: z {r.z:.1f} synthetic {r.synthetic} exact {rows[a][-1]['exact']} {dt:.2f} s {rows[a][-1]['geometry']}", file=sys.stderr, flush=True)
    elapsed = time.perf_counter() - t0
    lines = [
        "# Watermark attack matrix: geometry and frame rate",
        "",
        f"Generated by `python benchmarks/watermark_geometry.py {_shown_args(argv if argv is not None else sys.argv[1:])}` in {elapsed / 60:.0f} min on "
        f"{platform.machine()}, {os.cpu_count()} cores (shared), Python {platform.python_version()}.",
        f"{len(clips)} person-held-out real clips at {args.size}x{args.size}, {n} frames each marked as a 30 fps session (random payload and start index); "
        "every geometric or temporal attack is followed by H.264 CRF 23. Detection: `facelink.watermark.detect`, p < 1e-6.",
        "",
        "Clips: " + ", ".join(f"`{c.rel}`" for c in clips) + ".",
        "",
    ]
    before = json.loads(Path(args.compare).read_text()) if args.compare else None
    if before:
        lines += ["| attack | before: z median (min) | before: exact | z median (min) | synthetic | payload exact | detect s (median) | frames |",
                  "|---|---|---|---|---|---|---|---|"]
    else:
        lines += ["| attack | z median (min) | synthetic | payload exact | detect s (median) | frames |", "|---|---|---|---|---|---|"]

    def zcell(rs: list[dict]) -> str:
        zs = [r["z"] if r["z"] is not None else 0.0 for r in rs]
        return f"{np.median(zs):.1f} ({min(zs):.1f})"

    for a in names:
        rs = rows[a]
        old = ""
        if before:
            b = before.get(a, [])
            old = f"{zcell(b)} | {sum(r['exact'] for r in b)}/{len(b)} | " if b else "not run | not run | "
        lines.append(
            f"| {a} | {old}{zcell(rs)} | {sum(r['synthetic'] for r in rs)}/{len(rs)} | {sum(r['exact'] for r in rs)}/{len(rs)} | "
            f"{np.median([r['seconds'] for r in rs]):.2f} | {rs[0]['frames'] if rs else 0} |"
        )
    psnrs = [r["psnr"] for r in rows[names[0]]]
    lines += ["", f"Embedding PSNR (mean over every 10th frame, per clip): {min(psnrs):.2f} to {max(psnrs):.2f} dB."]
    if args.note:
        lines += ["", args.note]
    Path(args.out).write_text("\n".join(lines) + "\n")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
