"""Train the audio -> motion model (``python -m facelink.train audio2motion --out DIR``).

Input: a window of log-mel frames around a video frame's time (``PAST`` frames before,
``AHEAD`` after: 190 ms of look-ahead, so the same network runs causally on a live link with
a 200 ms delay), normalised per recording (:func:`facelink.animate._model.normalise_mel`).
Output: the frame's ``K`` expression coefficients as the change from the speaker's median
face, in units of each mode's standard deviation (the lips, jaw and cheeks FaceLink streams).
Head motion, blinks and gaze are not predicted from speech (``facelink.animate._motion``).

A small 1-D convolutional network (about 0.4 M parameters), trained with an L1 loss (plus
``LIP_WEIGHT`` times the L1 of the lip gap the coefficients imply) on the
training persons' clips (``facelink.datasets.split_clips``: no evaluation person is seen),
exported to ONNX (opset 17), evaluated on the evaluation persons: Pearson r of the lip
opening it implies against the tracked one, per clip, next to a baseline that maps the
audio's loudness to the opening (linear regression with the best lag).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from ..animate._model import AHEAD, K, PAST, mouth_gap, normalise_mel, target_coeffs, windows
from ..datasets import EVAL_PERSONS
from ._speech import load_or_build, speech_clips

__all__ = ["train_audio2motion"]

#: weight of the lip-gap term of the loss (against the mean L1 over all coefficients)
LIP_WEIGHT = 4.0


def _samples(d: dict, stride: int = 1) -> tuple[np.ndarray, np.ndarray] | None:
    ok = d["ok"]
    if ok.sum() < 30:
        return None
    y = target_coeffs(d["coeffs"], ok)
    mel = normalise_mel(d["mel"])
    x = windows(mel, d["times"])
    keep = np.flatnonzero(ok)[::stride]
    return x[keep], y[keep]


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    a = a - a.mean()
    b = b - b.mean()
    d = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / d) if d > 0 else 0.0


def _variance_gain(net, train_d: list[dict]) -> float:
    """How much to scale the predictions so the lip gap they imply moves as much as the real
    one (median over training clips of the two standard deviations' ratio, within 1..4).

    A network trained for the least error predicts the expected motion, which is damped
    wherever the speech leaves it uncertain: right on average, but a mouth that barely opens
    looks wrong.  The gain does not change any correlation."""
    import torch

    ratios = []
    with torch.no_grad():
        for d in train_d[::3]:
            ok = d["ok"]
            pred = net(torch.from_numpy(windows(normalise_mel(d["mel"]), d["times"]))).numpy()
            sp = float(mouth_gap(pred)[ok].std())
            st = float(mouth_gap(target_coeffs(d["coeffs"], ok))[ok].std())
            if sp > 1e-6 and st > 1e-6:
                ratios.append(st / sp)
    return float(np.clip(np.median(ratios), 1.0, 4.0)) if ratios else 1.0


def _check_export(net, path: Path, d: dict) -> None:
    """The ONNX graph computes what the trained network does (on one evaluation clip)."""
    import torch

    from ..animate._model import AudioToExpression

    with torch.no_grad():
        ref = net(torch.from_numpy(windows(normalise_mel(d["mel"]), d["times"]))).numpy()
    got = AudioToExpression(path, backend="onnxruntime").predict(d["mel"], d["times"])
    err = float(np.abs(ref - got).max())
    if err > 1e-3:
        raise RuntimeError(f"exported model differs from the trained one by {err:.2g}")


def _energy_baseline(train: list[dict], evals: list[dict]) -> list[float]:
    """r of the best linear map (with lag) from log energy to the lip gap, fitted on training clips."""

    def feats(d):
        e = np.log(np.exp(d["mel"]).sum(axis=1) + 1e-9)
        idx = np.clip(np.round(d["times"] / 0.01).astype(int), 0, len(e) - 1)
        return e, idx

    best = None
    for lag in range(-10, 11, 2):
        xs, ys = [], []
        for d in train:
            e, idx = feats(d)
            ok = d["ok"]
            xs.append(e[np.clip(idx + lag, 0, len(e) - 1)][ok])
            ys.append(mouth_gap(target_coeffs(d["coeffs"], ok))[ok])
        x, y = np.concatenate(xs), np.concatenate(ys)
        r = _pearson(x, y)
        if best is None or r > best[0]:
            best = (r, lag)
    lag = best[1]
    out = []
    for d in evals:
        e, idx = feats(d)
        ok = d["ok"]
        out.append(_pearson(e[np.clip(idx + lag, 0, len(e) - 1)][ok], mouth_gap(target_coeffs(d["coeffs"], ok))[ok]))
    return out


def train_audio2motion(out: Path, cache: Path, *, epochs: int = 5, seed: int = 0, threads: int = 2, install: Path | None = None) -> dict:
    import torch
    from torch import nn

    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    rng = np.random.default_rng(seed)
    from ..face import create_models

    clips = speech_clips()
    if not clips:
        raise SystemExit("../shared/data not found: nothing to train on")
    models = create_models(eyes=False)  # the targets are expression and pose; blinks are not learned
    data = {}
    for sc in clips:
        d = load_or_build(sc, cache, models)
        if d is not None and d["ok"].sum() >= 30:
            data[sc.clip.rel] = (sc.clip.person, d)
    train_d = [d for p, d in data.values() if p not in EVAL_PERSONS]
    eval_d = {rel: d for rel, (p, d) in data.items() if p in EVAL_PERSONS}
    xs, ys = zip(*[s for d in train_d if (s := _samples(d)) is not None])
    x = torch.from_numpy(np.concatenate(xs))
    y = torch.from_numpy(np.concatenate(ys))
    ex, ey = zip(*[s for d in eval_d.values() if (s := _samples(d)) is not None])
    vx, vy = torch.from_numpy(np.concatenate(ex)), torch.from_numpy(np.concatenate(ey))
    # the lip gap is linear in the coefficients: weight it in the loss, since most modes'
    # variance (head shape, brows, cheeks) is not in the speech and would drown the mouth
    gap_w = torch.from_numpy((mouth_gap(np.eye(K)) - mouth_gap(np.zeros((1, K)))).astype(np.float32))
    gap_scale = float((y @ gap_w).std()) or 1.0
    net = Audio2MotionNet()
    opt = torch.optim.AdamW(net.parameters(), lr=2e-3, weight_decay=1e-4)
    steps_per_epoch = max(1, len(x) // 256)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=epochs * steps_per_epoch)
    log = []
    t0 = time.time()
    for ep in range(epochs):
        net.train()
        perm = torch.from_numpy(rng.permutation(len(x)))
        total = 0.0
        for s in range(steps_per_epoch):
            idx = perm[s * 256 : (s + 1) * 256]
            xb = x[idx]
            xb = xb * (1.0 + 0.1 * torch.randn(len(xb), 1, 1)) + 0.05 * torch.randn_like(xb)  # loudness, noise
            pred = net(xb)
            loss = nn.functional.l1_loss(pred, y[idx]) + LIP_WEIGHT * nn.functional.l1_loss(pred @ gap_w, y[idx] @ gap_w) / gap_scale
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach())
        net.eval()
        with torch.no_grad():
            val = float(nn.functional.l1_loss(net(vx), vy))
        log.append({"epoch": ep, "train_l1": total / steps_per_epoch, "eval_l1": val, "seconds": round(time.time() - t0, 1)})
        print(json.dumps(log[-1]), flush=True)
    # evaluation: lip gap r per evaluation clip, against the loudness baseline
    per_clip = {}
    with torch.no_grad():
        for rel, d in eval_d.items():
            ok = d["ok"]
            xw = torch.from_numpy(windows(normalise_mel(d["mel"]), d["times"]))
            pred = net(xw).numpy()
            truth = target_coeffs(d["coeffs"], ok)
            per_clip[rel] = {
                "lip_gap_r": _pearson(mouth_gap(pred)[ok], mouth_gap(truth)[ok]),
                "frames": int(ok.sum()),
                "coeff_r_mean": float(np.mean([_pearson(pred[ok, j], truth[ok, j]) for j in range(K)])),
            }
    gain = _variance_gain(net, train_d)
    with torch.no_grad():  # bake the gain into the last layer: the runtime sees one network
        last = net.head[-1]
        last.weight.mul_(gain)
        last.bias.mul_(gain)
    base = _energy_baseline(train_d, list(eval_d.values()))
    summary = {
        "train_clips": len(train_d),
        "train_frames": int(len(x)),
        "eval_clips": len(eval_d),
        "eval_frames": int(len(vx)),
        "lip_gap_r_median": float(np.median([v["lip_gap_r"] for v in per_clip.values()])),
        "loudness_baseline_r_median": float(np.median(base)),
        "gain": round(gain, 3),
        "epochs": epochs,
        "seed": seed,
        "parameters": int(sum(p.numel() for p in net.parameters())),
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "loss.json").write_text(json.dumps({"summary": summary, "log": log, "eval": per_clip}, indent=1))
    onnx_path = out / "audio2motion.onnx"
    export_onnx(net, onnx_path, summary)
    _check_export(net, onnx_path, next(iter(eval_d.values())))
    if install is not None:
        install.write_bytes(onnx_path.read_bytes())
    print("SUMMARY", json.dumps(summary), flush=True)
    return summary


def _net():
    import torch
    from torch import nn

    class Net(nn.Module):
        """(B, PAST + AHEAD, MEL_BINS) normalised log-mel -> (B, K) coefficients."""

        def __init__(self) -> None:
            super().__init__()
            from ..animate._features import MEL_BINS

            c = 128
            self.conv = nn.Sequential(
                nn.Conv1d(MEL_BINS, c, 5, padding=2), nn.GELU(),
                nn.Conv1d(c, c, 5, stride=2, padding=2), nn.GELU(),
                nn.Conv1d(c, c, 5, stride=2, padding=2), nn.GELU(),
                nn.Conv1d(c, 64, 3, padding=1), nn.GELU(),
            )  # fmt: skip
            n = (PAST + AHEAD + 3) // 4
            self.head = nn.Sequential(nn.Flatten(), nn.Dropout(0.1), nn.Linear(64 * n, 128), nn.GELU(), nn.Linear(128, K))

        def forward(self, mel: torch.Tensor) -> torch.Tensor:
            return self.head(self.conv(mel.transpose(1, 2)))

    return Net()


def Audio2MotionNet():  # noqa: N802 (a factory: torch is imported lazily)
    return _net()


def export_onnx(net, path: Path, summary: dict) -> None:
    import onnx
    import torch

    net.eval()
    from ..animate._features import MEL_BINS

    dummy = torch.zeros(1, PAST + AHEAD, MEL_BINS)
    torch.onnx.export(
        net, (dummy,), str(path), input_names=["mel"], output_names=["coeffs"],
        dynamic_axes={"mel": {0: "batch"}, "coeffs": {0: "batch"}}, opset_version=17, dynamo=False,
    )  # fmt: skip
    m = onnx.load(str(path))
    m.producer_name = "facelink.train audio2motion"
    del m.metadata_props[:]
    for k, v in {"summary": json.dumps(summary, sort_keys=True), "past": str(PAST), "ahead": str(AHEAD), "k": str(K)}.items():
        p = m.metadata_props.add()
        p.key, p.value = k, v
    onnx.save(m, str(path))
