"""Training data for the refiner: self-reenactment through the real pipeline.

For each clip (256x256 face-centred square, as ``facelink bench codec`` prepares it), the first
frame is the reference; every frame goes through the real encoder (``medium``), the bitstream
and the receiver's decoder and retargeter, then the warp generator (refiner off).  A sample is
the refiner's input tensor over the generator's face box (``float16``) and the true frame's
pixels over the same box (``uint8``), every ``every``-th frame.

The clips are split by person (:func:`facelink.datasets.split_clips`): the refiner never sees
an evaluation person.  Samples are cached per clip as ``.npz`` under ``cache_dir`` keyed by
the clip, the recipe and the generator version, so a rerun skips the slow part.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

__all__ = ["Recipe", "Sample", "clip_samples", "load_samples"]


@dataclass(frozen=True)
class Recipe:
    """What goes into the training set (saved with the model)."""

    size: int = 256
    frames: int = 240  # frames read per clip (from the start)
    every: int = 3  # keep every n-th frame after the reference
    quality: str = "medium"

    def key(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:10]


@dataclass
class Sample:
    inputs: np.ndarray  # (6, h, w) float16
    target: np.ndarray  # (3, h, w) uint8
    clip: str
    index: int


def clip_samples(path: str, recipe: Recipe, models, *, eval_mode: bool = False) -> list[Sample]:
    """Samples of one clip (the slow part: encoder, decoder and warp on every frame)."""
    from ..bench._codec import prepare_clip
    from ..codec import QUALITY_PRESETS, StreamDecoder
    from ..face import FaceTracker
    from ..receiver import SessionRenderer
    from ..sender import FrameEncoder, make_reference
    from ..io import Frame

    clip = prepare_clip(path, recipe.size, recipe.frames, models)
    probe = FaceTracker(*models)
    start = next((i for i, img in enumerate(clip.frames) if probe.update(img, clip.times[i]) is not None), None)
    if start is None:
        return []
    ref = make_reference(clip.frames[start], models)
    enc = FrameEncoder(ref, QUALITY_PRESETS[recipe.quality], width=recipe.size, height=recipe.size, fps=clip.fps, tracker=FaceTracker(*models))
    dec = StreamDecoder()
    session = SessionRenderer(receiver_key=bytes(32), refiner="off")
    for p in enc.start():
        dec.feed(p)
    out: list[Sample] = []
    for i in range(start, len(clip.frames)):
        pkt, _ = enc.push(Frame(clip.frames[i], clip.times[i], i))
        kf = dec.feed(pkt)
        if kf is None or kf.pose is None or not dec.ready:
            continue
        session.prepare(dec)
        lm = session.driving_landmarks(kf)
        gen = session.generator
        patch, inputs = gen.warp_parts(lm)
        if i == start or (i - start) % recipe.every:
            continue
        x0, y0, x1, y1 = gen.face_box
        target = clip.frames[i][y0:y1, x0:x1].transpose(2, 0, 1)
        out.append(Sample(inputs.astype(np.float16), np.ascontiguousarray(target), Path(path).name, i))
    if session.generator is not None:
        session.generator.close()
    return out


def load_samples(clips, recipe: Recipe, cache_dir: Path, models, log=print) -> list[Sample]:
    """Samples of every clip, from the cache where present."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    out: list[Sample] = []
    for n, c in enumerate(clips, 1):
        key = hashlib.sha256(f"{c.rel}|{recipe.key()}|{_generator_version()}".encode()).hexdigest()[:16]
        f = cache_dir / f"{key}.npz"
        if f.is_file():
            z = np.load(f, allow_pickle=False)
            k = int(z["count"])
            samples = [Sample(z[f"x{j}"], z[f"y{j}"], str(z["clip"]), int(z["index"][j])) for j in range(k)]
        else:
            samples = clip_samples(str(c.path), recipe, models)
            arrays = {f"x{j}": s.inputs for j, s in enumerate(samples)} | {f"y{j}": s.target for j, s in enumerate(samples)}
            tmp = f.with_suffix(".tmp.npz")
            np.savez(tmp, count=len(samples), clip=c.rel, index=np.array([s.index for s in samples], np.int64), **arrays)
            tmp.replace(f)
        log(f"[{n}/{len(clips)}] {c.rel}: {len(samples)} samples")
        out.extend(samples)
    return out


def _generator_version() -> str:
    """Hash of the warp's sources and mesh, and of the refiner's input function (samples
    depend on them; the rest of ``_refine.py``, the network's runtime, does not change them)."""
    import inspect

    from ..generator import _refine

    root = Path(__file__).resolve().parents[1] / "generator"
    h = hashlib.sha256()
    for name in ("_generator.py", "_atlas.py", "_raster.py", "_warp.py", "_mesh.py", "data/mesh.npz"):
        h.update((root / name).read_bytes())
    h.update(inspect.getsource(_refine.refiner_inputs).encode())
    return h.hexdigest()[:12]
