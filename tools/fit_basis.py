#!/usr/bin/env python3
"""Fit FaceLink's expression basis from real landmark tracks.

    python tools/fit_basis.py [--data ../shared/data] [--tracks DIR] [--out sdk/facelink/keypoints/data/basis.npz]

1. Track every clip of ``subsets/video_real.txt`` with FaceLink's own tracker (cached as
   ``DIR/<clip>.npz``: smoothed landmarks per frame).
2. Generalised Procrustes on the training persons (``facelink.datasets.split_clips``): a
   mean face, oriented by the eye line and the forehead-chin axis, inter-ocular distance 1;
   per-landmark rigid-fit weights from how much each landmark moves with expression.
3. PCA of each frame's deviation from its clip's mean shape (identity removed), clips
   weighted equally, gives the orthonormal expression modes.
4. Reports reconstruction error vs K on the held-out persons (percent of inter-ocular distance).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "sdk"))

from facelink.datasets import data_root, real_clips, split_clips  # noqa: E402
from facelink.keypoints import ExpressionBasis, KeypointFitter, canonicalize, similarity_fit  # noqa: E402

K_MAX = 48
FRAMES_PER_CLIP = 240
SEED = 1234


def extract_tracks(clips, out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    for c in clips:
        dst = out_dir / (c.rel.replace("/", "__") + ".npz")
        if dst.exists():
            continue
        from facelink.face import create_tracker
        from facelink.io import open_video

        tracker = create_tracker()
        lms, ok = [], []
        with open_video(str(c.path)) as video:
            for frame in video:
                obs = tracker.update(frame.image, frame.time)
                ok.append(obs is not None)
                lms.append(obs.landmarks if obs is not None else np.zeros((468, 3), np.float32))
        np.savez_compressed(dst, smooth=np.array(lms), ok=np.array(ok))
        print(f"tracked {c.rel}: {sum(ok)}/{len(ok)} frames with a face", flush=True)


def load_track(tracks: Path, rel: str, rng: np.random.Generator, limit: int | None) -> np.ndarray:
    z = np.load(tracks / (rel.replace("/", "__") + ".npz"))
    lm = z["smooth"][z["ok"]].astype(np.float64)
    if limit and len(lm) > limit:
        lm = lm[np.sort(rng.choice(len(lm), limit, replace=False))]
    return lm


def orient(mean: np.ndarray) -> np.ndarray:
    """Centre, upright/frontal axes (eye corners 33->263 = +x, forehead 10 -> chin 152 ~ +y), IOD 1."""
    x = mean[263] - mean[33]
    x /= np.linalg.norm(x)
    y = mean[152] - mean[10]
    y -= x * (x @ y)
    y /= np.linalg.norm(y)
    z = np.cross(x, y)
    m = (mean - mean.mean(0)) @ np.stack([x, y, z]).T
    return m / np.linalg.norm(m[263] - m[33])


def canonical_frames(frames: np.ndarray, mean: np.ndarray, w: np.ndarray) -> np.ndarray:
    out = np.empty_like(frames)
    for i, lm in enumerate(frames):
        s, r, t = similarity_fit(mean, lm, w)
        out[i] = ((lm - t) @ r) / s
    return out


def fit(train_tracks: list[np.ndarray], full_tracks: list[np.ndarray]) -> ExpressionBasis:
    """Basis from subsampled tracks; motion statistics from the full (consecutive) tracks."""
    mean = orient(train_tracks[0][0])
    w = np.ones(468)
    for it in range(4):
        canon = [canonical_frames(f, mean, w) for f in train_tracks]
        clip_means = [c.mean(0) for c in canon]
        new_mean = np.mean([canonical_frames(m[None], mean, w)[0] for m in clip_means], axis=0)
        mean = orient(new_mean)
        dev = np.concatenate([c - m for c, m in zip(canon, clip_means)])
        var = np.mean(np.sum(dev**2, axis=2), axis=0)
        w = 1.0 / (var + np.median(var))
        w /= w.sum()
        print(f"procrustes iteration {it}: rms expression deviation {np.sqrt(var.mean()):.4f} IOD", flush=True)
    canon = [canonical_frames(f, mean, w) for f in train_tracks]
    dev = np.concatenate(
        [((c - c.mean(0)) / np.sqrt(len(c))).reshape(len(c), -1) for c in canon]
    )  # each clip carries equal weight
    _, sig, vt = np.linalg.svd(dev, full_matrices=False)
    modes = vt[:K_MAX].reshape(K_MAX, 468, 3)
    n_clips = len(train_tracks)
    std = sig[:K_MAX] / np.sqrt(n_clips)
    basis = ExpressionBasis(mean, modes, std, w, np.ones(6 + K_MAX))
    return ExpressionBasis(mean, modes, std, w, motion_stats(basis, [t for t in full_tracks if len(t) > 10]))


def field_values(fitter: KeypointFitter, frames: np.ndarray, s0: float) -> np.ndarray:
    """The coded fields of each frame: yaw, pitch, roll (deg), tx, ty (face units), log scale, coeffs."""
    rows = []
    for lm in frames:
        pose, c = fitter.fit(lm)
        ang = np.degrees([pose.yaw, pose.pitch, pose.roll])
        rows.append(np.concatenate([ang, [pose.tx / s0, pose.ty / s0, np.log(pose.scale)], c]))
    return np.array(rows)


def motion_stats(basis: ExpressionBasis, tracks: list[np.ndarray]) -> np.ndarray:
    """Mean absolute frame-to-frame change of every field (consecutive frames only)."""
    deltas = []
    for frames in tracks:
        fitter, pose0 = KeypointFitter.from_reference(basis, frames[0], K_MAX)
        v = field_values(fitter, frames[:120], pose0.scale)
        deltas.append(np.abs(np.diff(v, axis=0)))
    return np.concatenate(deltas).mean(0)


def evaluate(basis: ExpressionBasis, tracks: list[np.ndarray], ks=(4, 8, 12, 16, 20, 24, 32, 48)) -> dict[int, float]:
    """Mean landmark error (x, y) of the fitted (pose + k modes) reconstruction, % of IOD."""
    res = {}
    for k in ks:
        errs = []
        for frames in tracks:
            fitter, _ = KeypointFitter.from_reference(basis, frames[0], k)
            for lm in frames[:: max(1, len(frames) // 60)]:
                pose, c = fitter.fit(lm)
                rec = fitter.reconstruct(pose, c)
                iod = np.linalg.norm(lm[263, :2] - lm[33, :2])
                errs.append(np.mean(np.linalg.norm(rec[:, :2] - lm[:, :2], axis=1)) / iod)
        res[k] = 100 * float(np.mean(errs))
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=None)
    ap.add_argument("--tracks", type=Path, default=Path.home() / ".cache" / "facelink" / "tracks")
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "sdk/facelink/keypoints/data/basis.npz")
    args = ap.parse_args(argv)
    root = args.data or data_root()
    if root is None:
        print("error: ../shared/data not found (pass --data)", file=sys.stderr)
        return 2
    clips = real_clips(root)
    extract_tracks(clips, args.tracks)
    train, evals = split_clips(clips)
    rng = np.random.default_rng(SEED)
    tr = [load_track(args.tracks, c.rel, rng, FRAMES_PER_CLIP) for c in train]
    tr = [t for t in tr if len(t) > 10]
    basis = fit(tr, [load_track(args.tracks, c.rel, rng, None) for c in train])
    ev = [load_track(args.tracks, c.rel, rng, None) for c in evals]
    ev = [t for t in ev if len(t) > 10]
    print(f"train: {len(tr)} clips of {len({c.person for c in train})} persons; eval: {len(ev)} clips of {len({c.person for c in evals})} persons")
    print("explained std (first 12):", np.round(basis.std[:12], 4))
    print("mean |delta| per frame (pose fields, first 6 coeffs):", np.round(basis.motion[:12], 4))
    for k, e in evaluate(basis, ev).items():
        print(f"eval reconstruction error K={k:2d}: {e:.2f} % IOD")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    basis.save(args.out)
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes), basis id {basis.basis_id.hex()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
