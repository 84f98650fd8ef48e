#!/usr/bin/env python3
"""Regenerate the benchmark sections of ``docs/results.md`` from saved bench outputs.

    facelink bench codec --out OUT/codec [...]        # writes OUT/codec/report.json
    facelink bench speed --out OUT/speed               # writes OUT/speed/speed.json
    python benchmarks/results.py --codec OUT/codec --speed OUT/speed [--out docs/results.md]

Only the text between this script's markers is replaced (``<!-- facelink-bench:codec begin -->``
… ``end -->``, same for ``speed``); everything else in the file -- other teams' sections,
hand-written commentary -- is kept.  Missing markers are appended at the end.  Nothing is
re-run: the figures are exactly those of the JSON files.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "sdk"))

from facelink.bench._report import codec_markdown, speed_markdown, write_text

_MARK = "<!-- facelink-bench:{name} {edge} -->"


def _replace(doc: str, name: str, body: str) -> str:
    begin, end = _MARK.format(name=name, edge="begin"), _MARK.format(name=name, edge="end")
    block = f"{begin}\n{body.rstrip()}\n{end}"
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.DOTALL)
    if pattern.search(doc):
        return pattern.sub(lambda _m: block, doc, count=1)
    return doc.rstrip() + "\n\n" + block + "\n"


def codec_section(report: dict) -> str:
    cmd = report.get("command") or "facelink bench codec --out DIR"
    env = report.get("environment", {})
    head = [
        "## Codec comparison: figures",
        "",
        (
            f"Regenerate: `{cmd}` (took {report.get('elapsed_s', 0) / 60:.0f} min on {env.get('cpu_count', '?')} shared CPU cores, "
            f"load average {env.get('load_average_at_start', '?')} at the start), then `python benchmarks/results.py --codec DIR`."
        ),
        "",
        (
            "Self-reenactment: frame 0 of each clip is FaceLink's reference, every codec codes the following frames "
            "at the same size and frame rate (non-square clips: a square crop centred on the face found by the tracker "
            "in frame 0). Peers: " + "; ".join(p["description"] for p in report["settings"]["peers"].values()) + ". "
            "Their rate points are bitrate targets of "
            + ", ".join(f"{k:g}" for k in report["settings"]["peer_kbps_targets"])
            + " kbit/s plus "
            "their coarsest quantiser (the lowest rate they can reach)."
        ),
        "",
    ]
    return "\n".join(head) + "\n" + codec_markdown(report, level=3, plots=None, sheets=None, per_clip="summary")


def speed_section(speed: dict) -> str:
    cmd = speed.get("command") or "facelink bench speed --out DIR"
    head = ["## Speed: figures", "", f"Regenerate: `{cmd}`, then `python benchmarks/results.py --speed DIR`.", "", ""]
    return "\n".join(head) + speed_markdown(speed, level=3)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--codec", type=Path, metavar="DIR", help="output directory of `facelink bench codec` (report.json)")
    ap.add_argument("--speed", type=Path, metavar="DIR", help="output directory of `facelink bench speed` (speed.json)")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "results.md")
    args = ap.parse_args(argv)
    if args.codec is None and args.speed is None:
        ap.error("give --codec DIR and/or --speed DIR")
    doc = args.out.read_text(encoding="utf-8") if args.out.exists() else "# FaceLink results\n"
    if args.codec is not None:
        path = args.codec / "report.json"
        if not path.is_file():
            print(f"{path}: no such file (run `facelink bench codec --out {args.codec}` first)", file=sys.stderr)
            return 2
        report = json.loads(path.read_text(encoding="utf-8"))
        if not report.get("complete"):
            print(f"{path}: the run did not finish; refusing to publish partial figures", file=sys.stderr)
            return 2
        doc = _replace(doc, "codec", codec_section(report))
    if args.speed is not None:
        path = args.speed / "speed.json"
        if not path.is_file():
            print(f"{path}: no such file (run `facelink bench speed --out {args.speed}` first)", file=sys.stderr)
            return 2
        doc = _replace(doc, "speed", speed_section(json.loads(path.read_text(encoding="utf-8"))))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_text(args.out, doc if doc.endswith("\n") else doc + "\n")
    print(f"{args.out}: updated", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
