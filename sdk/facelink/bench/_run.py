"""Drive the codec benchmark over clips and write its outputs (JSON, Markdown, plots, contact sheets)."""

from __future__ import annotations

import os
import platform
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import BackendUnavailable, InputError, ModelFetchError
from ._codec import ClipResult, CodecBenchConfig, compare_runs, prepare_clip, run_clip, summarize
from ._report import codec_markdown, contact_sheet, pick_contact_runs, write_json, write_text

__all__ = ["ClipSpec", "default_clips", "environment", "load_models", "rerender_report", "resolve_clips", "run_codec_bench"]


@dataclass(frozen=True)
class ClipSpec:
    """A clip to benchmark: its path, a file-name-safe unique name, and the person (data clips)."""

    path: str
    name: str
    person: str | None = None


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "clip"


def default_clips(split: str = "eval", per_person: int = 1) -> list[ClipSpec]:
    """Clips of the development data (``facelink.datasets``): ``per_person`` per person of the split."""
    from ..datasets import real_clips, split_clips

    clips = real_clips()
    if not clips:
        return []
    train, evals = split_clips(clips)
    chosen = {"eval": evals, "train": train, "all": clips}[split]
    seen: dict[str, int] = {}
    out = []
    for c in chosen:
        if seen.get(c.person, 0) >= per_person:
            continue
        seen[c.person] = seen.get(c.person, 0) + 1
        out.append(ClipSpec(str(c.path), _safe(c.rel.rsplit(".", 1)[0].replace("/", "__")), c.person))
    return out


def resolve_clips(paths: Sequence[str]) -> list[ClipSpec]:
    """User files as clip specs (missing files are an :class:`InputError`); data clips keep their person id."""
    from ..datasets import data_root, real_clips

    persons: dict[str, tuple[str, str]] = {}
    if data_root() is not None:
        for c in real_clips():
            persons[str(Path(c.path).resolve())] = (c.person, c.rel)
    out: list[ClipSpec] = []
    used: set[str] = set()
    for p in paths:
        if "://" not in p and not os.path.isfile(p):
            raise InputError(f"{p}: no such file")
        key = str(Path(p).resolve())
        person, rel = persons.get(key, (None, None))
        base = _safe(rel.rsplit(".", 1)[0].replace("/", "__")) if rel else _safe(Path(p).stem)
        name = base
        i = 2
        while name in used:
            name = f"{base}-{i}"
            i += 1
        used.add(name)
        out.append(ClipSpec(p, name, person))
    return out


def load_models(backend: str):
    """(detector, landmarks) or ``(None, reason)`` when the face models cannot be had."""
    from ..face import create_models

    try:
        return create_models(backend), None
    except (ModelFetchError, BackendUnavailable) as e:
        return None, str(e)


def environment(backend: str) -> dict:
    """Versions and machine facts that the figures depend on."""
    import av

    from .._version import __version__

    env = {"facelink": __version__, "python": platform.python_version(), "platform": platform.platform(), "pyav": av.__version__}
    try:
        env["libavcodec"] = ".".join(str(x) for x in av.library_versions["libavcodec"])
    except (AttributeError, KeyError, TypeError):
        pass
    try:
        import onnxruntime as ort

        env["onnxruntime"] = ort.__version__
    except ImportError:
        pass
    try:
        from ..backend import select_backend

        chosen = select_backend(backend)
        env["backend"] = f"{chosen.name} {chosen.version}" + (" (auto)" if backend == "auto" else "")
    except (BackendUnavailable, ValueError) as e:
        env["backend"] = f"{backend} (unavailable: {e})"
    env["cpu"] = _cpu_name()
    env["cpu_count"] = os.cpu_count()
    try:
        env["load_average_at_start"] = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        pass
    return env


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def run_codec_bench(
    clips: Sequence[ClipSpec],
    out_dir: str | os.PathLike,
    config: CodecBenchConfig,
    *,
    plots: bool = True,
    progress: Callable[[int, int], None] | None = None,
    command: str = "",
    models: object = "auto",
) -> dict:
    """Run every clip, write ``report.json`` (after each clip, then complete), ``report.md``,
    ``plots/*.png`` and ``contact/*.png`` under ``out_dir``; returns the report.

    ``models``: ``"auto"`` loads the face models for ``config.backend`` (FaceLink, AKD and the
    face-centred crop need them; without them only the peers run, scored by PSNR/SSIM);
    ``None`` runs without them; or a ``(detector, landmarks)`` pair.
    """
    if not clips:
        raise InputError("no clips to benchmark")
    out = Path(out_dir)
    if plots:
        from ._plots import _require

        _require()  # fail before hours of work, not after
    (out / "contact").mkdir(parents=True, exist_ok=True)
    if plots:
        (out / "plots").mkdir(exist_ok=True)
    why = "not requested"
    if isinstance(models, str) and models == "auto":
        models, why = load_models(config.backend)
    t0 = time.perf_counter()
    report: dict = {
        "version": 1,
        "complete": False,
        "command": command,
        "settings": config.as_dict(),
        "environment": environment(config.backend),
        "models": None if models is not None else f"unavailable: {why}",
        "clips": [],
        "overall": {},
    }
    total = len(clips) * config.runs_per_clip() * (config.frames - 1)
    done = 0
    overview_rows: list[list] = []
    titles: list[str] = []
    for spec in clips:
        clip = prepare_clip(spec.path, config.size, config.frames, models, name=spec.name, person=spec.person)
        coded = len(clip.frames) - 1

        if coded < config.frames - 1:  # a short clip: keep the bar's total honest
            total -= config.runs_per_clip() * (config.frames - 1 - coded)

        def tick(_label: str, _n: int = coded, _total: int = total) -> None:
            nonlocal done
            done += _n
            if progress:
                progress(done, _total)

        res = run_clip(clip, config, models, progress=tick)
        report["clips"].append(res.as_dict())
        report["overall"] = summarize(report["clips"])
        report["elapsed_s"] = round(time.perf_counter() - t0, 1)
        write_json(out / "report.json", report)
        rows, head = _clip_sheet(res)
        if rows:
            contact_sheet(rows, head).save(out / "contact" / f"{spec.name}.png")
            mid = rows[len(pick_contact_runs(res.runs)[0].samples) // 2]  # a sampled frame, not a re-posed view
            overview_rows.append([(mid[0][0], f"{spec.name[-26:]} {mid[0][1]}")] + mid[1:])
            titles = head
    if overview_rows:
        width = max(len(r) for r in overview_rows)
        overview_rows = [r for r in overview_rows if len(r) == width]
        contact_sheet(overview_rows, titles).save(out / "contact" / "overall.png")
    report["complete"] = True
    report["elapsed_s"] = round(time.perf_counter() - t0, 1)
    write_json(out / "report.json", report)
    _write_outputs(report, out, plots)
    return report


def _write_outputs(report: dict, out: Path, plots: bool) -> None:
    size = report["settings"]["size"]
    if plots:
        from ._plots import rd_figure

        (out / "plots").mkdir(exist_ok=True)
        if report["overall"].get("mean_runs"):
            rd_figure(
                report["overall"]["mean_runs"],
                out / "plots" / "rd_overall.png",
                f"Mean over {report['overall']['clips']} clip(s), {size}×{size}",
            )
        for c in report["clips"]:
            rd_figure(c["runs"], out / "plots" / f"rd_{c['name']}.png", f"{c['name']} ({size}×{size})")
    command = report.get("command", "")
    sheets = "contact" if (out / "contact" / "overall.png").is_file() else None
    md = codec_markdown(report, plots="plots" if plots else None, sheets=sheets)
    write_text(out / "report.md", "# FaceLink codec benchmark\n\n" + (f"`{command}`\n\n" if command else "") + md + "\n")


def rerender_report(out_dir: str | os.PathLike, *, plots: bool = True) -> dict:
    """Re-analyse a finished ``report.json`` (comparisons, means) and rewrite it, ``report.md`` and
    the plots -- for when the analysis or the report's format changed, without re-running codecs.
    Contact sheets need the decoded frames and are left as they are."""
    import json

    out = Path(out_dir)
    path = out / "report.json"
    if not path.is_file():
        raise InputError(f"{path}: no such file (run `facelink bench codec --out {out}` first)")
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
        clips = report["clips"]
        for c in clips:
            c["comparison"] = compare_runs(c["runs"])
    except (ValueError, KeyError, TypeError) as e:
        raise InputError(f"{path}: not a facelink bench codec report ({type(e).__name__}: {e})") from None
    if plots:
        from ._plots import _require

        _require()
    report["overall"] = summarize(clips)
    write_json(path, report)
    _write_outputs(report, out, plots)
    return report


def _clip_sheet(res: ClipResult) -> tuple[list[list], list[str]]:
    """Rows (one per sampled frame) of true / FaceLink / peers-at-FaceLink's-rate tiles; frames
    picked for what they show are captioned with it ("deepest blink", "largest glance", ...)."""
    chosen = pick_contact_runs(res.runs)
    if not chosen:
        return [], []
    names = {"x264": "x264", "x265": "x265", "svtav1": "SVT-AV1"}
    head = ["true"] + [f"FaceLink {r.setting}" if r.codec == "facelink" else f"{names.get(r.codec, r.codec)} nearest rate" for r in chosen]
    rows = []
    for pos in sorted(chosen[0].samples):
        why = res.sample_labels.get(pos)
        row = [(res.clip.frames[pos + 1], f"frame {pos + 1}" + (f": {why}" if why else ""))]
        for r in chosen:
            cap = f"{r.kbps:.2f} kbps" if r.codec == "facelink" else f"{r.kbps:.1f} kbps, {r.setting.replace(' (floor)', '')}"
            row.append((r.samples[pos], cap))
        rows.append(row)
    # free view: FaceLink's frame re-posed (--pose), beside the true, unturned frame
    head_run = chosen[0]
    if head_run.codec == "facelink" and head_run.views and res.view_position is not None:
        pos = res.view_position
        for pose, img in head_run.views.items():
            label = ",".join(f"{v:g}" for v in pose)
            rows.append([(res.clip.frames[pos + 1], f"frame {pos + 1} (true)"), (img, f"--pose {label}")])
    return rows, head
