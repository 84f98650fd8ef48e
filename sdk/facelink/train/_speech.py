"""Paired speech + face-motion data for the audio -> motion model (``python -m facelink.train audio2motion``).

Every clip of ``subsets/video_real.txt`` with its own audio track (or a paired ``.wav`` of
the same stem, ``subsets/audio_paired_with_video.txt``) is tracked with FaceLink's own
tracker, and each frame's landmarks are fitted with the expression basis around the mean
face: the targets are exactly the keypoints FaceLink streams.  Per clip (``<cache>/<rel>.npz``):

* ``times`` (N,) frame times, s; ``ok`` (N,) whether a face was tracked;
* ``coeffs`` (N, K) expression coefficients (mean-face identity: they include the person's
  own shape, which the trainer removes with the clip's median);
* ``pose`` (N, 3) yaw, pitch, roll (radians); ``eyes`` (N, 2) lid opening per eye (NaN if hidden);
* ``mel`` (T, MEL_BINS) log-mel of the clip's speech (10 ms hop, ``facelink.animate._features``).

Split by person with :func:`facelink.datasets.split_clips`.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..animate._features import log_mel, read_speech
from ..datasets import Clip, data_root, real_clips

__all__ = ["SpeechClip", "build_clip", "load_or_build", "speech_clips"]

#: expression coefficients stored per frame (the model predicts the first ``K_MODEL``)
K_STORE = 24
#: at most this much of each clip is used (long speeches add little variety per second)
MAX_SECONDS = 20.0


@dataclass(frozen=True)
class SpeechClip:
    clip: Clip
    audio: Path  # the video itself, or its paired .wav


def speech_clips(root: Path | None = None) -> list[SpeechClip]:
    """Real clips with speech: their own audio track, or a paired ``.wav`` beside them."""
    root = root or data_root()
    if root is None:
        return []
    meta = {r["path"]: r for r in csv.DictReader(open(root / "manifest.tsv", newline=""), delimiter="\t")}
    out = []
    for c in real_clips(root):
        wav = c.path.with_suffix(".wav")
        if wav.is_file():
            out.append(SpeechClip(c, wav))
        elif meta.get(c.rel, {}).get("has_audio") == "yes":
            out.append(SpeechClip(c, c.path))
    return out


def build_clip(sc: SpeechClip, models, max_seconds: float = MAX_SECONDS) -> dict[str, np.ndarray]:
    """Track one clip and compute its speech features (see the module docstring)."""
    from ..face import FaceTracker
    from ..io import open_video
    from ..keypoints import KeypointFitter, default_basis

    basis = default_basis()
    fitter = KeypointFitter(basis, basis.mean, K_STORE)
    tracker = FaceTracker(*models)
    times, ok, coeffs, pose, eyes = [], [], [], [], []
    with open_video(str(sc.clip.path)) as video:
        for frame in video:
            if frame.time > max_seconds:
                break
            obs = tracker.update(frame.image, frame.time)
            times.append(frame.time)
            ok.append(obs is not None)
            if obs is None:
                coeffs.append(np.zeros(K_STORE))
                pose.append(np.zeros(3))
                eyes.append(np.full(2, np.nan))
                continue
            p, c = fitter.fit(obs.landmarks)
            coeffs.append(c)
            pose.append([p.yaw, p.pitch, p.roll])
            e = obs.eyes
            eyes.append(np.where(e.visible, e.openness, np.nan) if e is not None else np.full(2, np.nan))
    pcm = read_speech(str(sc.audio), max_seconds)
    return {
        "times": np.array(times, np.float64),
        "ok": np.array(ok, bool),
        "coeffs": np.array(coeffs, np.float32).reshape(-1, K_STORE),
        "pose": np.array(pose, np.float32).reshape(-1, 3),
        "eyes": np.array(eyes, np.float32).reshape(-1, 2),
        "mel": log_mel(pcm),
    }


def load_or_build(sc: SpeechClip, cache: Path, models) -> dict[str, np.ndarray] | None:
    """The clip's cached data (built on first use); ``None`` when it cannot be used (said why)."""
    path = cache / (sc.clip.rel.replace("/", "__") + ".npz")
    if path.is_file():
        with np.load(path) as z:
            return {k: z[k] for k in z.files}
    try:
        d = build_clip(sc, models)
    except (ValueError, OSError) as e:
        print(f"{sc.clip.rel}: skipped ({e})", flush=True)
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, **d)
    tmp.replace(path)
    return d
