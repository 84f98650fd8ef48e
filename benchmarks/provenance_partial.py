#!/usr/bin/env python3
"""Damaged streams (issue #20 item 2): is every partial output labelled partial?

    python benchmarks/provenance_partial.py [--frames 40] [--reference-stride 97] [--out FILE.md]

Encodes a short signed stream (the public-domain astronaut portrait drifting, as the tests
do), then decodes it cut at every byte offset after the reference image (and every
``--reference-stride``-th offset inside it) and with 13 garbage suffixes appended, and runs
``facelink verify --json`` on every output that was written.  Counts: outputs written; of
those, labelled partial in decode's JSON, in the manifest, in verify's verdict and summary
line; and how many verify as "VALID ... describes this exact file" (must be 0).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "sdk"))

from facelink.assets import asset_path  # noqa: E402
from facelink.bitstream import PacketType, iter_flk, packet_type  # noqa: E402
from facelink.cli import main as cli  # noqa: E402
from facelink.io import VideoWriter, load_image  # noqa: E402
from facelink.provenance import parse_manifest, sidecar_path  # noqa: E402

GARBAGE = [b"\x00", b"\xff", b"\x01\x02", b"FL", b"\x05FL\x01\x07", bytes(16), bytes(range(64)), b"\x7f" * 3,
           b"\x80\x80\x80\x01", b"\xff\xff\x7f", b"garbage at the end\n", bytes(1000), b"\x03FL\x01"]  # fmt: skip


def _run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli(list(argv))
    return code, out.getvalue(), err.getvalue()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=40)
    ap.add_argument("--reference-stride", type=int, default=97, help="cut every N-th byte inside the reference")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "provenance_partial_results.md")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    from PIL import Image

    img = load_image(str(asset_path("astronaut")))
    crop = np.asarray(Image.fromarray(img[10:330, 60:380]).resize((256, 256)))
    with tempfile.TemporaryDirectory(prefix="flk-partial-") as tmp:
        tmp = Path(tmp)
        video = tmp / "talk.mp4"
        with VideoWriter(str(video), 288, 256, 25) as vw:
            for i in range(args.frames):
                f = np.zeros((256, 288, 3), np.uint8)
                f[:, i % 32 : i % 32 + 256] = crop
                vw.write(f, i / 25)
        flk = tmp / "talk.flk"
        code, _, err = _run("encode", str(video), "-o", str(flk))
        if code != 0:
            print(f"benchmarks/provenance_partial.py: encode failed: {err.strip()}", file=sys.stderr)
            return 1
        data = flk.read_bytes()
        records = list(iter_flk(flk))
        last_chunk = max(i for i, p in enumerate(records) if packet_type(p) == PacketType.REFERENCE_CHUNK)
        ref_end = len(data) - sum(len(p) + (1 if len(p) < 128 else 2 if len(p) < 16384 else 3) for p in records[last_chunk + 1 :])
        cuts = list(range(1, ref_end, args.reference_stride)) + list(range(ref_end, len(data)))
        cases = [("cut", data[:n]) for n in cuts] + [("garbage", data + g) for g in GARBAGE]
        tally = {k: dict.fromkeys(("cases", "written", "exit3", "json_partial", "manifest_partial", "verdict_partial",
                                   "line_partial", "valid_exact", "valid_any", "tracebacks"), 0) for k in ("cut", "garbage")}  # fmt: skip
        src, out = tmp / "damaged.flk", tmp / "out.mp4"
        for kind, blob in cases:
            t = tally[kind]
            t["cases"] += 1
            src.write_bytes(blob)
            for p in (out, sidecar_path(out)):
                p.unlink(missing_ok=True)
            code, stdout, err = _run("decode", str(src), "-o", str(out), "--no-c2pa", "--json")
            t["tracebacks"] += "Traceback" in err
            if not out.exists():
                continue
            t["written"] += 1
            t["exit3"] += code == 3
            info = json.loads(stdout.strip().splitlines()[-1])
            t["json_partial"] += info.get("partial") is True
            t["manifest_partial"] += parse_manifest(sidecar_path(out).read_bytes()).complete is False
            _, vout, _ = _run("verify", str(out), "--json")
            r = json.loads(vout)
            t["verdict_partial"] += r["verdict"] == "partial"
            _, line, _ = _run("verify", str(out))
            t["line_partial"] += "provenance: PARTIAL" in line
            t["valid_exact"] += "VALID" in line and "describes this exact file" in line and "PARTIAL" not in line
            t["valid_any"] += r["verdict"] == "valid"
    seconds = time.perf_counter() - t0
    lines = [
        "# Damaged streams: results",
        "",
        f"`python benchmarks/provenance_partial.py --frames {args.frames} --reference-stride {args.reference_stride}`: "
        f"a {len(data)}-byte signed stream ({args.frames} frames; reference ends at byte {ref_end}), "
        f"{seconds:.0f} s on this machine's CPU.",
        "",
        "| damage | cases | output written | exit 3 | decode JSON partial | manifest complete: false | verify verdict partial | summary line PARTIAL | VALID, describes this exact file | verdict valid | tracebacks |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for k, t in tally.items():
        lines.append(f"| {k} | {' | '.join(str(v) for v in t.values())} |")
    report = "\n".join(lines) + "\n"
    args.out.write_text(report)
    print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
