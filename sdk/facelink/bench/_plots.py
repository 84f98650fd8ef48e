"""Rate-quality plots (matplotlib, the ``bench`` extra; imported only when plots are drawn)."""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path

from ..errors import FaceLinkError
from ._codec import MAX_MKR, METRICS, metric_value
from ._rd import efficient_front

__all__ = ["have_matplotlib", "rd_figure"]

_STYLE = {
    "facelink": ("tab:red", "o", "FaceLink"),
    "x264": ("tab:blue", "s", "x264 (zerolatency)"),
    "x265": ("tab:green", "^", "x265"),
    "svtav1": ("tab:purple", "D", "SVT-AV1"),
}


def have_matplotlib() -> bool:
    """True when matplotlib (the ``bench`` extra) is installed."""
    return importlib.util.find_spec("matplotlib") is not None


def _require():
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise FaceLinkError("the bench plots need matplotlib: pip install 'facelink[bench]' (or pass --no-plots)") from None
    return Figure, FigureCanvasAgg


def rd_figure(runs: Sequence[dict], path: str | Path, title: str) -> None:
    """One PNG with a rate-quality panel per metric (log-rate x axis), every codec as a curve."""
    Figure, FigureCanvasAgg = _require()
    metrics = [m for m in METRICS if any(metric_value(r, m.key) is not None for r in runs)]
    ncol = 3
    nrow = max(1, -(-len(metrics) // ncol))
    fig = Figure(figsize=(5.0 * ncol, 3.9 * nrow), dpi=100)
    FigureCanvasAgg(fig)
    codecs: list[str] = []
    for r in runs:
        if r["codec"] not in codecs:
            codecs.append(r["codec"])
    for i, m in enumerate(metrics):
        ax = fig.add_subplot(nrow, ncol, i + 1)
        for c in codecs:
            pts = sorted((r["kbps"], metric_value(r, m.key)) for r in runs if r["codec"] == c and metric_value(r, m.key) is not None)
            if not pts:
                continue
            color, marker, label = _STYLE.get(c, ("tab:gray", "x", c))
            # every point as a marker; the line joins the efficient ones (those the analysis uses)
            ax.plot([p[0] for p in pts], [p[1] for p in pts], ls="none", marker=marker, color=color, ms=5, mfc="none")
            fr, fq = efficient_front([p[0] for p in pts], [m.oriented(p[1]) for p in pts])
            ax.plot(fr, [m.oriented(q) for q in fq], marker=marker, color=color, label=label, lw=1.5, ms=5)
        ax.set_xscale("log")
        ax.set_xlabel("kbit/s (measured)")
        unit = f" ({m.unit})" if m.unit else ""
        ax.set_ylabel(m.label + unit + ("" if m.higher_is_better else ", lower is better"))
        if m.key == "akd":
            ax.set_title(f"points with the face lost in > {MAX_MKR:.0%} of frames left out", fontsize=8)
        if i == 0:
            ax.set_title("line: efficient points; hollow: dominated points", fontsize=8)
        ax.grid(True, which="both", alpha=0.3)
        if i == 0:
            ax.legend(fontsize=8, loc="lower right")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(str(path))
