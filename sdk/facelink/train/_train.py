"""Training loop of the refiner (``python -m facelink.train refiner``).

Losses, all computable without any pretrained network:
  * L1 on RGB (the bulk of the pixel fidelity);
  * 1 - SSIM on luma (11x11 Gaussian window, as the evaluation computes it): structure;
  * L1 between image gradients (finite differences): keeps edges sharp where L1 alone blurs;
  * small L1 penalties on the residual and on the flow correction themselves: change only
    what the warp cannot explain.

Samples are random ``crop``x``crop`` windows of the face boxes (the network is fully
convolutional), with horizontal flips (the x flow channel changes sign) and a brightness /
contrast jitter applied to input and target alike.  Adam with a cosine learning-rate decay;
a fixed number of steps and a seed make a run reproducible on the same hardware.
"""

from __future__ import annotations

import json
import math
import platform
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ._data import Sample
from ._model import RefinerNet, apply, export_onnx

__all__ = ["TrainConfig", "train"]


@dataclass(frozen=True)
class TrainConfig:
    steps: int = 12000
    batch: int = 16
    crop: int = 128
    lr: float = 2e-3
    seed: int = 0
    w_l1: float = 1.0
    w_ssim: float = 0.5
    w_grad: float = 0.5
    w_residual: float = 0.02
    w_flow: float = 0.002  # per pixel of correction
    threads: int = 2
    log_every: int = 100


_LUMA = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)


def _gauss(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float32) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    g = g / g.sum()
    return (g[:, None] * g[None, :]).view(1, 1, size, size)


_WIN = _gauss()


def ssim_luma(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Mean SSIM of the luma of two (N, 3, H, W) images in [0, 1] (valid windows only)."""
    ya, yb = (a * _LUMA).sum(1, keepdim=True), (b * _LUMA).sum(1, keepdim=True)
    c1, c2 = 0.01**2, 0.03**2
    mu_a, mu_b = F.conv2d(ya, _WIN), F.conv2d(yb, _WIN)
    saa = F.conv2d(ya * ya, _WIN) - mu_a**2
    sbb = F.conv2d(yb * yb, _WIN) - mu_b**2
    sab = F.conv2d(ya * yb, _WIN) - mu_a * mu_b
    s = ((2 * mu_a * mu_b + c1) * (2 * sab + c2)) / ((mu_a**2 + mu_b**2 + c1) * (saa + sbb + c2))
    return s.mean()


def _grad_l1(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    dx = (a[..., :, 1:] - a[..., :, :-1]) - (b[..., :, 1:] - b[..., :, :-1])
    dy = (a[..., 1:, :] - a[..., :-1, :]) - (b[..., 1:, :] - b[..., :-1, :])
    return dx.abs().mean() + dy.abs().mean()


class _Batches:
    """Random crops of the samples (edge-padded where a face box is smaller than the crop)."""

    def __init__(self, samples: list[Sample], crop: int, rng: np.random.Generator) -> None:
        self.samples = samples
        self.crop = crop
        self.rng = rng

    def _one(self, s: Sample) -> tuple[np.ndarray, np.ndarray]:
        c = self.crop
        x = s.inputs.astype(np.float32)
        y = s.target.astype(np.float32) / 255.0
        _, h, w = x.shape
        if h < c or w < c:
            ph, pw = max(0, c - h), max(0, c - w)
            x = np.pad(x, ((0, 0), (0, ph), (0, pw)), mode="edge")
            y = np.pad(y, ((0, 0), (0, ph), (0, pw)), mode="edge")
            h, w = x.shape[1:]
        i, j = self.rng.integers(0, h - c + 1), self.rng.integers(0, w - c + 1)
        x, y = x[:, i : i + c, j : j + c].copy(), y[:, i : i + c, j : j + c].copy()
        if self.rng.random() < 0.5:  # mirror: the x displacement changes sign
            x, y = x[:, :, ::-1].copy(), y[:, :, ::-1].copy()
            x[3] = -x[3]
        gain, bias = self.rng.uniform(0.85, 1.15), self.rng.uniform(-0.06, 0.06)
        x[:3] = np.clip(x[:3] * gain + bias, 0, 1)
        y = np.clip(y * gain + bias, 0, 1)
        return x, y

    def __call__(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        idx = self.rng.integers(0, len(self.samples), n)
        xs, ys = zip(*(self._one(self.samples[k]) for k in idx))
        return torch.from_numpy(np.stack(xs)), torch.from_numpy(np.stack(ys))


def _loss(cfg: TrainConfig, x: torch.Tensor, y: torch.Tensor, flow: torch.Tensor, r: torch.Tensor) -> tuple[torch.Tensor, dict]:
    out = apply(x[:, :3], flow, r)
    l1 = (out - y).abs().mean()
    ss = 1 - ssim_luma(out, y)
    gr = _grad_l1(out, y)
    rr = r.abs().mean()
    ff = flow.abs().mean()
    total = cfg.w_l1 * l1 + cfg.w_ssim * ss + cfg.w_grad * gr + cfg.w_residual * rr + cfg.w_flow * ff
    parts = (("loss", total), ("l1", l1), ("1-ssim", ss), ("grad", gr), ("residual", rr), ("flow_px", ff))
    return total, {k: float(v.detach()) for k, v in parts}


@torch.no_grad()
def evaluate(net: RefinerNet, samples: list[Sample]) -> dict:
    """Mean L1, luma SSIM and PSNR of warp-only vs refined over whole face boxes."""
    net.eval()
    acc = {"l1_warp": 0.0, "l1_refined": 0.0, "ssim_warp": 0.0, "ssim_refined": 0.0, "psnr_warp": 0.0, "psnr_refined": 0.0}
    for s in samples:
        x = torch.from_numpy(s.inputs.astype(np.float32))[None]
        y = torch.from_numpy(s.target.astype(np.float32) / 255.0)[None]
        h, w = x.shape[2:]
        ph, pw = -h % 16, -w % 16
        xp = F.pad(x, (0, pw, 0, ph), mode="replicate")
        flow, r = net(xp)
        out = apply(x[:, :3], flow[:, :, :h, :w], r[:, :, :h, :w])
        for name, img in (("warp", x[:, :3]), ("refined", out)):
            acc[f"l1_{name}"] += float((img - y).abs().mean())
            acc[f"ssim_{name}"] += float(ssim_luma(img, y))
            acc[f"psnr_{name}"] += float(-10 * torch.log10(((img - y) ** 2).mean().clamp_min(1e-10)))
    net.train()
    return {k: v / max(1, len(samples)) for k, v in acc.items()}


def train(cfg: TrainConfig, samples: list[Sample], val: list[Sample], out_dir: Path, record: dict, log=print) -> Path:
    """Train, save ``loss.json``/``loss.png``/``refiner.pt`` and export ``refiner.onnx`` in ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    rng = np.random.default_rng(cfg.seed)
    net = RefinerNet()
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda k: 0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * min(k, cfg.steps) / cfg.steps)))
    batches = _Batches(samples, cfg.crop, rng)
    history: list[dict] = []
    evals: list[dict] = []
    t0 = time.time()
    run: dict[str, float] = {}
    for step in range(1, cfg.steps + 1):
        x, y = batches(cfg.batch)
        flow, r = net(x)
        loss, parts = _loss(cfg, x, y, flow, r)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        for k, v in parts.items():
            run[k] = run.get(k, 0.0) + v
        if step % cfg.log_every == 0 or step == cfg.steps:
            n = cfg.log_every if step % cfg.log_every == 0 else step % cfg.log_every
            row = {"step": step, "seconds": round(time.time() - t0, 1), "lr": sched.get_last_lr()[0]} | {k: v / n for k, v in run.items()}
            history.append(row)
            run.clear()
            log(json.dumps({k: (round(v, 5) if isinstance(v, float) else v) for k, v in row.items()}))
        if val and (step % (cfg.steps // 6) == 0 or step == cfg.steps):
            e = {"step": step} | evaluate(net, val)
            evals.append(e)
            log("val " + json.dumps({k: round(v, 5) for k, v in e.items()}))
            torch.save(net.state_dict(), out_dir / "refiner.pt")
    seconds = time.time() - t0
    torch.save(net.state_dict(), out_dir / "refiner.pt")
    meta = record | {
        "config": asdict(cfg),
        "train_seconds": round(seconds, 1),
        "hardware": f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads",
        "torch": torch.__version__,
        "final_val": evals[-1] if evals else None,
        "params": sum(p.numel() for p in net.parameters()),
    }
    (out_dir / "loss.json").write_text(json.dumps({"meta": meta, "train": history, "val": evals}, indent=1))
    _plot(history, evals, out_dir / "loss.png")
    onnx_path = out_dir / "refiner.onnx"
    export_onnx(net, onnx_path, meta)
    return onnx_path


def _plot(history: list[dict], evals: list[dict], path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    fig, ax = plt.subplots(1, 2, figsize=(10, 3.5))
    steps = [h["step"] for h in history]
    for k in ("loss", "l1", "1-ssim", "grad"):
        ax[0].plot(steps, [h[k] for h in history], label=k)
    ax[0].set_xlabel("step")
    ax[0].set_yscale("log")
    ax[0].legend()
    ax[0].set_title("training loss (crops)")
    if evals:
        es = [e["step"] for e in evals]
        ax[1].plot(es, [e["ssim_warp"] for e in evals], "--", label="warp only")
        ax[1].plot(es, [e["ssim_refined"] for e in evals], label="refined")
        ax[1].set_xlabel("step")
        ax[1].set_title("validation SSIM (held-out persons, face box)")
        ax[1].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
