#!/usr/bin/env python3
"""Generator v1 speed: frames per second of ``Generator.render`` on this machine.

    python benchmarks/generator_speed.py [--frames 60] [--repeat 3] [--json out.json]

Cases (synthetic face-like images, landmarks = the canonical mean face posed; driving frames
move the head, open and close the mouth and blink, so every code path runs):

* 256x256 and 512x512 with the face filling most of the frame (ring bands reach the edges);
* 1920x1080 with a ~300 px face (forehead to chin).

Each case runs with ``flow_scale`` 1 and 1/2, and with the eyes driven from the landmarks
alone (streams without eye channels) or by eye controls (version-2 streams: rebuilt lids, lid
atlases, a gaze that sweeps the iris across the eyeball atlas, the same blinks).  Reported: median milliseconds per frame for the
whole ``render`` (flow rasterisation in numpy + warp in ONNX Runtime + paste into a new full
frame), the two parts separately, the face box, and frames per second (1000 / median render).
The best of ``--repeat`` runs is kept, to tame noise from other processes on the machine; the
load average at the start is printed with the results, and the process CPU time per frame
(all threads), which other processes disturb much less than wall-clock time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "sdk"))

from facelink.face import EyeState  # noqa: E402
from facelink.generator import EyeControls, Generator  # noqa: E402
from facelink.keypoints import default_basis, matrix_from_euler  # noqa: E402

#: (name, height, width, inter-ocular distance px, face centre)
CASES = [
    ("256x256", 256, 256, 78.0, (128.0, 122.0)),
    ("512x512", 512, 512, 156.0, (256.0, 244.0)),
    ("1920x1080 (300 px face)", 1080, 1920, 160.0, (1000.0, 520.0)),
]


def face_image(h: int, w: int, lm: np.ndarray, seed: int = 0) -> np.ndarray:
    """A textured image with a skin-coloured face polygon (content does not change the cost)."""
    from facelink.generator._mesh import FACE_OVAL, LEFT_EYE, LIPS_OUTER, RIGHT_EYE
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(seed)
    noise = rng.integers(0, 60, (h // 4 + 1, w // 4 + 1, 3), dtype=np.uint8)
    base = Image.fromarray(noise).resize((w, h), Image.BILINEAR)
    d = ImageDraw.Draw(base)
    for idx, colour in ((FACE_OVAL, (205, 150, 120)), (LIPS_OUTER, (200, 90, 100)), (RIGHT_EYE, (230, 230, 225)), (LEFT_EYE, (230, 230, 225))):
        d.polygon([(float(lm[i, 0]), float(lm[i, 1])) for i in idx], fill=colour)
    return np.asarray(base)


def driving_sequence(iod: float, centre: tuple[float, float], n: int) -> list[np.ndarray]:
    b = default_basis()
    frames = []
    for i in range(n):
        t = i / 30.0
        shape = b.mean + 3.0 * b.std[0] * np.sin(2 * np.pi * 1.3 * t) ** 2 * b.modes[0]
        r = matrix_from_euler(0.25 * np.sin(2 * np.pi * 0.4 * t), 0.1 * np.sin(2 * np.pi * 0.3 * t), 0.08 * np.sin(2 * np.pi * 0.5 * t))
        lm = iod * shape @ r.T + np.array([centre[0] + 0.08 * iod * np.sin(2 * np.pi * 0.2 * t), centre[1], 0.0])
        if i % 20 in (8, 9, 10):  # a blink
            for up, lo in (((246, 161, 160, 159, 158, 157, 173), (7, 163, 144, 145, 153, 154, 155)),
                           ((466, 388, 387, 386, 385, 384, 398), (249, 390, 373, 374, 380, 381, 382))):
                lm[list(up)] = lm[list(lo)] + 0.3 * (lm[list(up)] - lm[list(lo)])
        frames.append(lm.astype(np.float32))
    return frames


def eye_controls(n: int) -> list[EyeControls]:
    """Eye controls matching driving_sequence: blinks on the same frames, a slow gaze sweep."""
    out = []
    for i in range(n):
        g = 0.1 * np.sin(2 * np.pi * 0.7 * i / 30.0)
        shut = 0.0 if i % 20 in (8, 9, 10) else 1.0
        out.append(EyeControls(np.full(2, shut), np.array([[g, 0.3 * g], [g, 0.3 * g]])))
    return out


def run_case(
    h: int, w: int, iod: float, centre: tuple[float, float], flow_scale: float, frames: int, repeat: int, eyes: bool = False
) -> dict:
    ref = (iod * default_basis().mean + np.array([centre[0], centre[1], 0.0])).astype(np.float32)
    img = face_image(h, w, ref)
    drive = driving_sequence(iod, centre, frames)
    controls = eye_controls(frames) if eyes else [None] * frames
    ref_eyes = EyeState(np.zeros((2, 2)), np.full(2, 0.3), np.zeros(2), np.full(2, 0.2), np.ones(2, bool)) if eyes else None
    with Generator(img, ref, flow_scale=flow_scale, reference_eyes=ref_eyes) as gen:
        for lm, c in zip(drive[:5], controls):  # warm-up
            gen.render(lm, c)
        best = None
        for _ in range(repeat):
            tr, tf, tw, tc = [], [], [], []
            for lm, c in zip(drive, controls):
                c0 = time.process_time()
                t0 = time.perf_counter()
                gen.render(lm, c)
                t1 = time.perf_counter()
                tc.append(time.process_time() - c0)
                grid = gen.flow(lm, c)
                t2 = time.perf_counter()
                (gen._warp(grid, gen._plate_under(gen.face_box)) if gen._warp.plate else gen._warp(grid))
                t3 = time.perf_counter()
                tr.append(t1 - t0)
                tf.append(t2 - t1)
                tw.append(t3 - t2)
            res = {k: 1000 * float(np.median(v)) for k, v in (("render_ms", tr), ("flow_ms", tf), ("warp_ms", tw), ("cpu_ms", tc))}
            if best is None or res["render_ms"] < best["render_ms"]:
                best = res
        x0, y0, x1, y1 = gen.face_box
    best["fps"] = 1000.0 / best["render_ms"]
    best["face_box"] = f"{x1 - x0}x{y1 - y0}"
    return best


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--frames", type=int, default=60)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)

    import onnxruntime as ort

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"# generator speed: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"onnxruntime {ort.__version__}, load average {load:.1f} at start\n")
    print("| frame | face box | flow_scale | eyes | render ms | flow ms | warp ms | fps | CPU ms/frame |")
    print("|---|---|---|---|---|---|---|---|---|")
    results = []
    for name, h, w, iod, centre in CASES:
        for fs in (1.0, 0.5):
            for eyes in (False, True):
                r = run_case(h, w, iod, centre, fs, args.frames, args.repeat, eyes)
                r.update(frame=name, flow_scale=fs, eyes=eyes)
                results.append(r)
                print(f"| {name} | {r['face_box']} | {fs:g} | {'channels' if eyes else 'landmarks'} | {r['render_ms']:.1f} | "
                      f"{r['flow_ms']:.1f} | {r['warp_ms']:.1f} | {r['fps']:.1f} | {r['cpu_ms']:.1f} |", flush=True)
    if args.json:
        args.json.write_text(json.dumps({"load_average": load, "results": results}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
