#!/usr/bin/env python3
"""Where the eyes' fidelity is lost: at the sender (tracking, quantising) or in rendering.

    python benchmarks/eye_fidelity.py [--match NAME,NAME] [--frames 150]

For each evaluation clip of the development data (or those whose name contains one of
``--match``), 256x256 as in ``facelink bench codec``:

* **sent vs true**: Pearson r of the common gaze x / y and the mean lid opening that the sender
  transmits (medium preset, after tracking, smoothing and quantising) against the same cues
  measured on the true frames (``facelink.bench._cues``);
* **render gain**: the reference rendered at its own pose with a known gaze shift (±0.06 eye
  widths sideways, ±0.04 vertically); what the Iris model measures on the result, as a fraction
  of the shift (1 = the rendered iris moved exactly as asked, as far as the model can see).

Needs ../shared/data (skips with a message otherwise) and the encoder models.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "sdk"))

from facelink.bench import _cues as cues  # noqa: E402
from facelink.bench._codec import _ReplayTracker, _track, prepare_clip  # noqa: E402
from facelink.bench._run import default_clips, load_models  # noqa: E402
from facelink.codec import QUALITY_PRESETS  # noqa: E402
from facelink.face import EyeState, eye_state  # noqa: E402
from facelink.generator import EyeControls, Generator  # noqa: E402
from facelink.io import Frame  # noqa: E402
from facelink.sender import FrameEncoder, make_reference  # noqa: E402

SHIFTS = ((0.06, 0.0), (-0.06, 0.0), (0.0, 0.04), (0.0, -0.04))


def _r(a: np.ndarray, b: np.ndarray) -> float:
    ok = np.isfinite(a) & np.isfinite(b)
    return float(np.corrcoef(a[ok], b[ok])[0, 1]) if np.count_nonzero(ok) > 2 else float("nan")


def sent_vs_true(clip, models) -> tuple[float, float, float]:
    iris = models[1].iris
    obs = _track(clip.frames, clip.times, models)
    truth = cues.measure(clip.frames[1:], obs[1:], iris)
    ref = make_reference(clip.frames[0], models)
    enc = FrameEncoder(ref, QUALITY_PRESETS["medium"], width=clip.size, height=clip.size, fps=clip.fps,
                       tracker=_ReplayTracker(obs[1:], clip.times[1:]))  # fmt: skip
    enc.start()
    sent = []
    for i in range(1, len(clip.frames)):
        _, kf = enc.push(Frame(clip.frames[i], clip.times[i], i))
        st = EyeState.from_array(kf.eyes) if kf.eyes is not None else None
        sent.append([np.nan] * 3 if st is None else [*st.gaze.mean(axis=0), st.openness.mean()])
    s = np.array(sent)
    return _r(s[:, 0], truth["gaze_x"]), _r(s[:, 1], truth["gaze_y"]), _r(s[:, 2], truth["eye_open"])


def render_gain(clip, models) -> list[float]:
    iris = models[1].iris
    ref = make_reference(clip.frames[0], models)
    lm = ref.landmarks.astype(np.float32)
    base = eye_state(iris(ref.image, lm), lm).gaze.mean(axis=0)
    gains = []
    with Generator(ref.image, ref.landmarks, reference_eyes=ref.eyes) as gen:
        for gx, gy in SHIFTS:
            out = gen.render(lm, EyeControls(np.ones(2), np.array([[gx, gy], [gx, gy]])))
            moved = eye_state(iris(out, lm), lm).gaze.mean(axis=0) - base
            gains.append(float(moved[0] / gx) if gx else float(moved[1] / gy))
    return gains


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--match", default="", help="comma-separated substrings of clip names (default: every evaluation clip)")
    ap.add_argument("--frames", type=int, default=150)
    args = ap.parse_args(argv)
    specs = default_clips("eval")
    if not specs:
        print("eye_fidelity: ../shared/data is absent: nothing to measure", file=sys.stderr)
        return 0
    keys = [k for k in args.match.split(",") if k]
    specs = [c for c in specs if not keys or any(k in c.name for k in keys)]
    models, why = load_models("auto")
    if models is None:
        print(f"eye_fidelity: no face models: {why}", file=sys.stderr)
        return 1
    print("| clip | sent vs true: gaze x | gaze y | opening | render gain: +x | -x | +y | -y |")
    print("|---|---|---|---|---|---|---|---|")
    for spec in specs:
        clip = prepare_clip(spec.path, 256, args.frames, models, name=spec.name)
        gx, gy, op = sent_vs_true(clip, models)
        g = render_gain(clip, models)
        print(f"| {spec.name} | {gx:.2f} | {gy:.2f} | {op:.2f} | " + " | ".join(f"{v:.2f}" for v in g) + " |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
