"""Bench outputs: ``report.json`` / ``speed.json``, their Markdown renderings, contact sheets.

The Markdown is rendered from the JSON alone, so ``benchmarks/results.py`` can rebuild
``docs/results.md`` from saved reports without re-running anything.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ._codec import MAX_MKR, METRICS, metric_value

__all__ = [
    "codec_markdown",
    "contact_sheet",
    "pick_contact_runs",
    "speed_markdown",
    "write_json",
    "write_text",
]

_PEER_TITLES = {"x264": "x264 (zerolatency)", "x265": "x265", "svtav1": "SVT-AV1"}
_FORMATS = {
    "psnr": "{:.2f}",
    "ssim": "{:.4f}",
    "ms_ssim": "{:.4f}",
    "akd": "{:.2f}",
    "face_psnr": "{:.2f}",
    "face_ssim": "{:.4f}",
    "mouth_ssim": "{:.4f}",
    "mkr": "{:.0%}",
}


def write_text(path: str | os.PathLike, text: str) -> None:
    """Write a file atomically (temporary name beside it, then rename)."""
    dst = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{dst.name}.", dir=dst.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, dst)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_json(path: str | os.PathLike, obj: dict) -> None:
    write_text(path, json.dumps(obj, indent=1, sort_keys=False, allow_nan=False) + "\n")


def _fmt(key: str, v: float | None) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "–"
    return _FORMATS.get(key, "{:.3g}").format(v)


def _kbps(v: float) -> str:
    return f"{v:.2f}" if v < 10 else f"{v:.1f}"


def _title(codec: str) -> str:
    return "FaceLink" if codec == "facelink" else _PEER_TITLES.get(codec, codec)


def _metric_header(m) -> str:
    return f"{m.label} ({m.unit})" if m.unit else m.label


def _runs_table(runs: Sequence[dict], *, with_range: bool = False) -> list[str]:
    cols = ["codec", "setting", "kbps"] + [_metric_header(m) for m in METRICS] + ["MKR"]
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join(["---"] * 2 + ["---:"] * (len(cols) - 2)) + "|"]
    for r in runs:
        k = _kbps(r["kbps"])
        if with_range and "kbps_min" in r:
            k += f" ({_kbps(r['kbps_min'])}–{_kbps(r['kbps_max'])})"
        q = r["quality"]
        vals = [_fmt(m.key, q.get(m.key)) + ("†" if q.get(m.key) is not None and metric_value(r, m.key) is None else "") for m in METRICS]
        cells = [_title(r["codec"]), r["setting"], k] + vals + [_fmt("mkr", q.get("mkr"))]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _saving_cell(s: dict | None) -> str:
    if not s or s.get("ratio") is None:
        return "–"
    r = s["ratio"]
    txt = f"{r:.1f}×" if r >= 1 else f"{r:.2f}×"
    if s["bound"] == "floor":
        return f"≤{txt}ᶠ"
    if s["bound"] == "ceiling":
        return f"≥{txt}ᶜ"
    return txt


def _bd_cell(md: dict | None) -> str:
    if not md:
        return "–"
    if md["bd_rate"] is None:
        return "n/a (no overlap)" if md["note"].startswith("no quality overlap") else "n/a"
    return f"{100 * md['bd_rate']:+.0f} %"


def _savings_table(comparison: dict, point: str) -> list[str]:
    lines = ["| FaceLink `" + point + "` vs | peer floor kbps | " + " | ".join(m.label for m in METRICS) + " |"]
    lines.append("|---|---:|" + "---:|" * len(METRICS))
    for peer, d in comparison.items():
        cells = [_saving_cell(d["metrics"].get(m.key, {}).get("savings", {}).get(point)) for m in METRICS]
        lines.append(f"| {_title(peer)} | {_kbps(d['floor_kbps'])} | " + " | ".join(cells) + " |")
    return lines


def _bd_table(comparison: dict, medians: dict | None) -> list[str]:
    lines = ["| FaceLink vs | " + " | ".join(m.label for m in METRICS) + " |", "|---|" + "---:|" * len(METRICS)]
    for peer, d in comparison.items():
        cells = []
        for m in METRICS:
            cell = _bd_cell(d["metrics"].get(m.key))
            if medians is not None:
                med = medians.get(peer, {}).get(m.key)
                if med is not None:
                    mv = "–" if med["median_bd_rate"] is None else f"{100 * med['median_bd_rate']:+.0f} %"
                    cell += f"<br>clips: {mv} ({med['clips_with_overlap']}/{med['clips']})"
            cells.append(cell)
        lines.append(f"| {_title(peer)} | " + " | ".join(cells) + " |")
    return lines


def _facelink_points(runs: Sequence[dict]) -> list[str]:
    return [r["setting"] for r in runs if r["codec"] == "facelink"]


def _headline_point(runs: Sequence[dict]) -> str | None:
    pts = _facelink_points(runs)
    if not pts:
        return None
    return "medium" if "medium" in pts else pts[len(pts) // 2]


SAVINGS_NOTE = (
    "Saving = the peer's rate at FaceLink's quality (PCHIP interpolation in log-rate along the "
    "peer's efficient points) ÷ FaceLink's rate. ᶠ FaceLink's quality is *below* the peer's quality "
    "at the peer's lowest measured rate: the figure is the peer's minimum rate ÷ FaceLink's rate, the "
    "peer then delivers better quality than FaceLink, and the true equal-quality saving is at most "
    "this. ᶜ FaceLink's quality is above every peer point: the peer's highest tested rate ÷ "
    "FaceLink's rate, a lower bound."
)
BD_NOTE = (
    "BD-rate = FaceLink's average rate difference against the peer at equal quality (Bjøntegaard, "
    "piecewise cubic (PCHIP) log-rate over the overlapping quality interval; negative = FaceLink "
    "needs less). It exists only where the two curves overlap in quality; the overlap is often a "
    "thin sliver at the peer's lowest rates, so read it together with the savings table."
)


def _clip_summary(clips: Sequence[dict]) -> list[str]:
    """One row per clip: FaceLink's headline point and its saving against each peer (PSNR / AKD)."""
    peers: list[str] = []
    for c in clips:
        for p in c["comparison"]:
            if p not in peers:
                peers.append(p)
    lines = [
        "| clip | person | source | FaceLink point | kbps | PSNR | AKD | " + " | ".join(f"vs {_title(p)} PSNR / AKD" for p in peers) + " |",
        "|---|---|---|---|---:|---:|---:|" + "---:|" * len(peers),
    ]
    for c in clips:
        src = f"{c['source_size'][0]}×{c['source_size'][1]}"
        p = _headline_point(c["runs"])
        if p is None:
            lines.append(f"| {c['name']} | {c.get('person') or '?'} | {src} | – ({c.get('facelink_skipped')}) | | | |" + " |" * len(peers))
            continue
        r = next(r for r in c["runs"] if r["codec"] == "facelink" and r["setting"] == p)
        cells = []
        for peer in peers:
            d = c["comparison"].get(peer, {}).get("metrics", {})
            cells.append(
                f"{_saving_cell(d.get('psnr', {}).get('savings', {}).get(p))} / {_saving_cell(d.get('akd', {}).get('savings', {}).get(p))}"
            )
        lines.append(
            f"| {c['name']} | {c.get('person') or '?'} | {src} | `{p}` | {_kbps(r['kbps'])} | {_fmt('psnr', r['quality'].get('psnr'))} | "
            f"{_fmt('akd', r['quality'].get('akd'))} | " + " | ".join(cells) + " |"
        )
    return lines


def _clip_section(c: dict, h: str) -> list[str]:
    """One clip's heading, source facts, every run and its comparison tables."""
    lines: list[str] = []
    fb = f", face box {100 * c['face_area_fraction']:.0f} % of the frame" if c.get("face_area_fraction") else ""
    src = f"{c['source_size'][0]}×{c['source_size'][1]}"
    crop = c["crop"]
    crop_txt = (
        ""
        if crop["side"] == max(c["source_size"]) == min(c["source_size"])
        else f", square crop {crop['side']} px at ({crop['x']}, {crop['y']})"
    )
    lines.append(f"{h}# {c['name']}")
    lines.append("")
    lines.append(
        f"`{c['path']}` — person `{c.get('person') or '?'}`, {src} @ {c['fps']:g} fps{crop_txt}{fb}; {c['coded_frames']} coded frames ({c['duration_s']:.2f} s)."
    )
    for n in c.get("notes", []):
        lines.append(f"Note: {n}.")
    if c.get("facelink_skipped"):
        lines.append(f"FaceLink: {c['facelink_skipped']}.")
    lines.append("")
    lines += _runs_table(c["runs"])
    p = _headline_point(c["runs"])
    if p and c["comparison"]:
        lines.append("")
        lines += _savings_table(c["comparison"], p)
        lines.append("")
        lines += _bd_table(c["comparison"], None)
    lines.append("")
    return lines


def codec_markdown(
    report: dict, *, level: int = 2, plots: str | None = "plots", sheets: str | None = "contact", per_clip: str = "full"
) -> str:
    """The codec report as Markdown (``level``: heading level of its top sections).

    ``per_clip``: ``"full"`` (every run of every clip), ``"summary"`` (one row per clip) or ``"none"``.
    """
    h = "#" * level
    s = report["settings"]
    ov = report["overall"]
    lines: list[str] = []
    clips = report["clips"]
    lines.append(
        f"{len(clips)} clip(s), first {s['frames']} frames each (frame 0 = FaceLink's reference, "
        f"{s['coded_frames']} coded), {s['size']}×{s['size']}, native frame rate; quality on "
        + ("every coded frame." if s["metric_every"] == 1 else f"one coded frame in {s['metric_every']} (rates count every frame).")
    )
    if ov["clips"] < len(clips):
        lines.append(f"Overall figures average the {ov['clips']} clip(s) where FaceLink ran.")
    lines.append("")
    lines.append(f"{h} Overall: mean over clips")
    lines.append("")
    lines.append(
        "kbps = measured rate of the produced packets (FaceLink: every packet but the one-time reference; "
        "peers: every packet, first I-frame included), mean over clips (min–max). PSNR on RGB, SSIM and MS-SSIM "
        "on luma; face = the same on the face box; open-mouth SSIM = luma SSIM on the mouth box (outer lips "
        "+ 25 %) of frames whose true mouth is open (aspect ratio > 0.25), – when a clip has none. "
        "AKD = landmark error of the tracker on the decoded vs the true "
        "frame, % of the inter-ocular distance (lower is better), over frames where a face was found; MKR = share "
        f"of frames where the tracker found no face in the decoded frame. Where MKR > {MAX_MKR:.0%} the AKD is "
        "left out of means, curves and comparisons (– in the mean table, † in per-clip tables)."
    )
    lines.append("")
    lines += _runs_table(ov["mean_runs"], with_range=True)
    ref = [r["reference_bytes"] for r in ov["mean_runs"] if r["codec"] == "facelink"]
    if ref:
        lines.append("")
        lines.append(f"FaceLink's one-time reference (JPEG + landmarks): {ref[0] / 1000:.1f} kB per session on average (not in its kbps).")
    point = _headline_point(ov["mean_runs"])
    if point and ov["comparison"]:
        lines += ["", f"{h} Bandwidth saving at equal quality", ""]
        lines += _savings_table(ov["comparison"], point)
        lines += ["", SAVINGS_NOTE, ""]
        others = [p for p in _facelink_points(ov["mean_runs"]) if p != point]
        if others:
            lines.append("Other FaceLink points (saving vs each peer, PSNR / AKD):")
            lines.append("")
            lines.append("| FaceLink point | kbps | " + " | ".join(f"{_title(p)} PSNR / AKD" for p in ov["comparison"]) + " |")
            lines.append("|---|---:|" + "---:|" * len(ov["comparison"]))
            for p in _facelink_points(ov["mean_runs"]):
                k = next(r["kbps"] for r in ov["mean_runs"] if r["codec"] == "facelink" and r["setting"] == p)
                cells = []
                for d in ov["comparison"].values():
                    a = _saving_cell(d["metrics"].get("psnr", {}).get("savings", {}).get(p))
                    b = _saving_cell(d["metrics"].get("akd", {}).get("savings", {}).get(p))
                    cells.append(f"{a} / {b}")
                lines.append(f"| `{p}` | {_kbps(k)} | " + " | ".join(cells) + " |")
            lines.append("")
        lines += [f"{h} BD-rate", ""]
        lines += _bd_table(ov["comparison"], ov.get("per_clip_bd_rate"))
        lines += [
            "",
            BD_NOTE + " First line: on the mean curves; second: median of the per-clip BD-rates (clips with an overlap / clips).",
            "",
        ]
    if plots:
        lines += [f"{h} Plots", ""]
        lines.append(f"Rate–quality curves (log-rate axis): `{plots}/rd_overall.png`, per clip `{plots}/rd_<clip>.png`.")
        if sheets:
            lines.append(
                f"Contact sheets (true / FaceLink / peers at FaceLink's rate or their lowest rate): `{sheets}/overall.png`, per clip `{sheets}/<clip>.png`."
            )
        lines.append("")
    if per_clip == "summary":
        lines += [
            f"{h} Per clip",
            "",
            "Saving at equal quality of FaceLink's headline point against each peer (PSNR / AKD); ᶠ ᶜ as above.",
            "",
        ]
        lines += _clip_summary(clips)
        lines.append("")
    if per_clip == "full":
        lines += [f"{h} Per clip", ""]
        for c in clips:
            lines += _clip_section(c, h)
    env = report.get("environment", {})
    if env:
        lines += [f"{h} Environment", ""]
        for k, v in env.items():
            lines.append(f"- {k}: {v}")
        lines.append("")
    return "\n".join(lines)


def speed_markdown(speed: dict, *, level: int = 2) -> str:
    """The speed report as Markdown."""
    h = "#" * level
    lines = [
        (
            f"Backend `{speed['backend']}` ({speed.get('backend_version', '?')}, providers: {', '.join(speed.get('providers', [])) or '?'}); "
            f"input `{speed['input']}`, {speed['frames']} frames at {speed['size']}×{speed['size']}. "
            f"CPU: {speed['environment'].get('cpu', '?')}, {speed['environment'].get('cpu_count', '?')} logical CPUs, "
            f"load average {speed['environment'].get('load_average_at_start', '?')} at the start. "
            "Timings are per frame, median (p90) over the frames, single process."
        ),
        "",
        f"{h} Encoder",
        "",
        "| stage | ms / frame (median) | p90 | fps |",
        "|---|---:|---:|---:|",
    ]
    for row in speed["encoder"]:
        if row.get("ms") is None:
            lines.append(f"| {row['stage']} | – | – | {row.get('note', '')} |")
        else:
            lines.append(f"| {row['stage']} | {row['ms']:.2f} | {row['p90_ms']:.2f} | {1000 / row['ms']:.0f} |")
    lines += ["", f"{h} Generator", "", "| output | ms / frame (median) | p90 | fps |", "|---|---:|---:|---:|"]
    for row in speed["generator"]:
        if row.get("ms") is None:
            lines.append(f"| {row['size']}×{row['size']} | – | – | {row.get('note', '')} |")
        else:
            lines.append(f"| {row['size']}×{row['size']} | {row['ms']:.1f} | {row['p90_ms']:.1f} | {1000 / row['ms']:.1f} |")
    lines += ["", f"{h} Loopback latency", "", "| path | ms (median) | p90 |", "|---|---:|---:|"]
    for row in speed["latency"]:
        if row.get("ms") is None:
            lines.append(f"| {row['path']} | – ({row.get('note', '')}) | |")
        else:
            lines.append(f"| {row['path']} | {row['ms']:.1f} | {row['p90_ms']:.1f} |")
    lines += ["", f"Peak RSS of the process: {speed['peak_rss_mb']:.0f} MB.", ""]
    for n in speed.get("notes", []):
        lines.append(f"- {n}")
    if speed.get("notes"):
        lines.append("")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------
# contact sheets


def _font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: fixed-size bitmap font
        return ImageFont.load_default()


def _fit(draw: ImageDraw.ImageDraw, text: str, font, width: int) -> str:
    """``text`` shortened (with an ellipsis) to fit ``width`` pixels."""
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "…", font=font) > width:
        text = text[:-1]
    return text + "…"


def contact_sheet(rows: Sequence[Sequence[tuple[np.ndarray, str]]], titles: Sequence[str], row_labels: Sequence[str] = ()) -> Image.Image:
    """A grid of equally sized RGB tiles with a caption under each and column titles on top."""
    if not rows or not rows[0]:
        raise ValueError("contact sheet needs at least one tile")
    th, tw = rows[0][0][0].shape[:2]
    pad, cap, top = 4, 16, 20
    left = 0
    font = _font(12)
    if row_labels:
        left = 8 + max(int(ImageDraw.Draw(Image.new("RGB", (1, 1))).textlength(s, font=font)) for s in row_labels)
    ncol = max(len(r) for r in rows)
    W = left + pad + ncol * (tw + pad)
    H = top + len(rows) * (th + cap + pad) + pad
    sheet = Image.new("RGB", (W, H), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for j, t in enumerate(titles):
        draw.text((left + pad + j * (tw + pad), 4), _fit(draw, t, font, tw), fill=(0, 0, 0), font=font)
    for i, row in enumerate(rows):
        y = top + i * (th + cap + pad)
        if row_labels:
            draw.text((4, y + th // 2 - 6), row_labels[i], fill=(0, 0, 0), font=font)
        for j, (img, label) in enumerate(row):
            x = left + pad + j * (tw + pad)
            tile = Image.fromarray(np.ascontiguousarray(img))
            if tile.size != (tw, th):
                tile = tile.resize((tw, th), Image.Resampling.LANCZOS)
            sheet.paste(tile, (x, y))
            draw.text((x, y + th + 1), _fit(draw, label, font, tw), fill=(0, 0, 0), font=font)
    return sheet


def pick_contact_runs(runs: Sequence, peers: Sequence[str] = ("x264", "svtav1")) -> list:
    """FaceLink's headline point, then for each listed peer the run closest to its rate (log scale)."""
    fl = [r for r in runs if r.codec == "facelink"]
    if not fl:
        return []
    names = [r.setting for r in fl]
    head = fl[names.index("medium")] if "medium" in names else fl[len(fl) // 2]
    out = [head]
    for p in peers:
        cand = [r for r in runs if r.codec == p]
        if cand:
            out.append(min(cand, key=lambda r: (abs(math.log(max(r.kbps, 1e-9) / max(head.kbps, 1e-9))), r.kbps)))
    return out
