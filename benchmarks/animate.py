#!/usr/bin/env python3
"""How well do audio-driven talking heads follow the speech? (``facelink animate``, issue 17)

    python benchmarks/animate.py [--cache DIR] [--clips N] [--json out.json] [--sheet sheet.png]

On the evaluation persons' clips with speech (``facelink.datasets.split_clips``; the model
never saw them), the shipped audio -> expression network predicts each frame's expression
from the clip's audio alone.  Per clip:

* **lip-gap r**: Pearson r between the inner-lip gap the prediction implies and the one
  FaceLink's tracker measures on the real video (the same conventions as training:
  ``facelink.animate._model``);
* the same r for a **loudness baseline** (the audio's log energy, best lag, fitted on the
  training clips) and for a **shuffled** control (another clip's prediction, trimmed):
  what r a model that ignores the speech's content would get;
* **rendered**: the clip's first frame animated with ``facelink animate``'s own stream
  (``animate_stream`` + the generator), tracked again, lip-gap r against the real video.

``--sheet`` writes, for the first clips, the real frame and the animated one at the 6 widest
real mouths (third-party footage: do not commit it).  ``--cache`` is the training cache of
``python -m facelink.train audio2motion`` (tracked targets + features per clip).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "sdk"))

from facelink.animate._model import K, AudioToExpression, mouth_gap, target_coeffs  # noqa: E402
from facelink.datasets import EVAL_PERSONS  # noqa: E402
from facelink.train._audio2motion import _energy_baseline, _pearson  # noqa: E402
from facelink.train._speech import load_or_build, speech_clips  # noqa: E402


def _render_r(sc, d, models, sheet_rows: list | None) -> float | None:
    """Animate the clip's first face frame with its own speech, track the result, compare lip gaps."""
    from facelink.animate._features import read_speech
    from facelink.animate._stream import animate_stream
    from facelink.codec import StreamDecoder
    from facelink.face import FaceTracker
    from facelink.face._reference import make_reference
    from facelink.generator import Generator
    from facelink.io import open_video
    from facelink.keypoints import KeypointFitter, default_basis

    ok = d["ok"]
    first = int(np.argmax(ok))
    with open_video(str(sc.clip.path)) as v:
        frames = [f.image for _, f in zip(range(len(d["times"])), v)]
    ref = make_reference(frames[first], models)
    pcm = read_speech(str(sc.audio), float(d["times"][-1]) + 0.05)
    fps = 1.0 / float(np.median(np.diff(d["times"])))
    stream = animate_stream(ref, pcm, fps=fps, audio_kbps=None, backend="onnxruntime")
    dec = StreamDecoder()
    gen = Generator(ref.image, ref.landmarks, backend="onnxruntime")
    tracker = FaceTracker(*models)
    basis = default_basis()
    fitter = KeypointFitter(basis, basis.mean, 24)
    gaps, imgs = [], []
    for p in stream.packets:
        kf = dec.feed(p)
        if kf is None or not kf.decodable or kf.pose is None:
            continue
        img = gen.render(dec.landmarks(kf))
        obs = tracker.update(img, kf.time)
        if obs is None:
            gaps.append(np.nan)
        else:
            c = fitter.fit(obs.landmarks)[1][:K] / basis.std[:K]
            gaps.append(float(mouth_gap(c[None])[0]))
        imgs.append(img)
    n = min(len(gaps), len(ok))
    g = np.array(gaps[:n])
    truth = mouth_gap(target_coeffs(d["coeffs"], ok))[:n]
    keep = ok[:n] & np.isfinite(g)
    if sheet_rows is not None:
        order = np.argsort(-np.where(ok[:n], truth, -np.inf))[:6]
        from PIL import Image

        tile = lambda im: np.asarray(Image.fromarray(im).resize((256, 256)))  # noqa: E731
        sheet_rows.append([(tile(frames[i]), f"real {i}") for i in order])
        sheet_rows.append([(tile(imgs[i]), f"animated {i}") for i in order])
    return _pearson(g[keep], truth[keep]) if keep.sum() > 10 else None


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", type=Path, default=Path("runs/speech-cache"))
    ap.add_argument("--clips", type=int, default=0, help="evaluate only the first N evaluation clips (0: all)")
    ap.add_argument("--render", type=int, default=6, help="render and re-track the first N clips (0: none)")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--sheet", type=Path)
    args = ap.parse_args(argv)
    clips = speech_clips()
    if not clips:
        print("../shared/data not found: nothing to evaluate", file=sys.stderr)
        return 2
    from facelink.face import create_models

    models = create_models(eyes=False)
    model = AudioToExpression(backend="onnxruntime")
    train, evals = [], []
    for sc in clips:
        d = load_or_build(sc, args.cache, models)
        if d is None or d["ok"].sum() < 30:
            continue
        (evals if sc.clip.person in EVAL_PERSONS else train).append((sc, d))
    if args.clips:
        evals = evals[: args.clips]
    base = _energy_baseline([d for _, d in train], [d for _, d in evals])
    rows, sheet = {}, ([] if args.sheet else None)
    preds = [model.predict(d["mel"], d["times"]) for _, d in evals]
    for k, ((sc, d), pred, b) in enumerate(zip(evals, preds, base)):
        ok = d["ok"]
        truth = mouth_gap(target_coeffs(d["coeffs"], ok))
        other = preds[(k + 1) % len(preds)]
        m = min(len(other), len(truth))
        r = {
            "lip_gap_r": _pearson(mouth_gap(pred)[ok], truth[ok]),
            "loudness_baseline_r": b,
            "shuffled_r": _pearson(mouth_gap(other[:m])[ok[:m]], truth[:m][ok[:m]]),
            "frames": int(ok.sum()),
        }
        if k < args.render:
            r["rendered_r"] = _render_r(sc, d, models, sheet if sheet is not None and k < 3 else None)
        rows[sc.clip.rel] = r
        print(f"{sc.clip.rel[:60]:60s} r {r['lip_gap_r']:.3f}  loudness {b:.3f}  shuffled {r['shuffled_r']:.3f}"
              + (f"  rendered {r['rendered_r']:.3f}" if r.get("rendered_r") is not None else ""), flush=True)  # fmt: skip
    med = lambda key: float(np.median([v[key] for v in rows.values() if v.get(key) is not None]))  # noqa: E731
    summary = {
        "eval_clips": len(rows),
        "lip_gap_r_median": med("lip_gap_r"),
        "loudness_baseline_r_median": med("loudness_baseline_r"),
        "shuffled_r_median": med("shuffled_r"),
        "rendered_r_median": med("rendered_r") if any("rendered_r" in v for v in rows.values()) else None,
    }
    print("SUMMARY", json.dumps(summary))
    if args.json:
        args.json.write_text(json.dumps({"summary": summary, "clips": rows}, indent=1))
    if args.sheet and sheet:
        from facelink.bench import contact_sheet

        contact_sheet(sheet, ["widest real mouths: real above, animated from the audio below"] + [""] * 5).save(args.sheet)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
