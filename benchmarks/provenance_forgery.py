#!/usr/bin/env python3
"""Forged provenance (issue #20): can a genuine manifest be made to vouch for another video?

    python benchmarks/provenance_forgery.py [--clips 12] [--frames 100] [--size 256] [--out FILE.md]

For each evaluation person (real clips from ../shared/data, persons never used to design
anything) the script plays the receiver: it marks ``--frames`` frames of the clip with the
watermark of a signed session, writes them with FaceLink's own video writer and signs the
provenance manifest for them with a receiver key that the verifier trusts, exactly as
``facelink decode`` does (the frames are real footage instead of generator output: the
content check compares pixels, wherever they came from).  Then it runs ``facelink verify
--json`` in-process on:

genuine copies (must stay attributed, "re-encoded"):
  exact file; H.264 CRF 28; 0.5x + H.264 CRF 28; H.264 CRF 23 twice; a cut excerpt (frames 20-79)

forgeries (must never verify as valid):
  A  the published attack: another person's real video stamped with the genuine payload,
     the genuine manifest copied beside it
  B  the same person and background 4 s later (another "session" of the same kiosk),
     stamped with the genuine payload
  C  another genuine FaceLink recording (its own session) beside the genuine manifest
  D  C restamped with the genuine payload (mark and manifest agree; pixels do not)
  E  the genuine video with 24 frames in the middle replaced by stamped foreign frames
  F  the genuine video's first 60 frames followed by 40 stamped foreign frames
  G  the manifest edited to describe the forged video (content and hash replaced), signature kept
  H  G re-signed by the forger's own key (a valid manifest by an untrusted receiver)

Numbers are written to ``benchmarks/provenance_forgery_results.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "sdk"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import watermark as wb  # noqa: E402
from facelink.bitstream import SessionHeader  # noqa: E402
from facelink.cli import main as cli  # noqa: E402
from facelink.datasets import data_root, real_clips, split_clips  # noqa: E402
from facelink.io import VideoWriter  # noqa: E402
from facelink.provenance import RecordingLog, frame_grid, sidecar_path, write_provenance  # noqa: E402
from facelink.security import generate_identity, signer_extension, trust_key  # noqa: E402
from facelink.watermark import PUBLIC_MARK_KEY, Watermarker, WatermarkPayload  # noqa: E402

GENUINE = ["exact file", "H.264 CRF 28", "0.5x + H.264 CRF 28", "H.264 CRF 23 twice", "excerpt 20-79, CRF 28"]
FORGERIES = {
    "A": "another person's video stamped with the genuine payload + genuine manifest (the published attack)",
    "B": "same person and background 4 s later, stamped + genuine manifest",
    "C": "another genuine recording (own session) + genuine manifest",
    "D": "another genuine recording restamped with the genuine payload + genuine manifest",
    "E": "genuine video, frames 40-63 replaced by stamped foreign frames",
    "F": "genuine frames 0-59 + 40 stamped foreign frames",
    "G": "manifest edited to describe the forged video, signature kept",
    "H": "manifest for the forged video re-signed by the forger's own (untrusted) key",
}


def _header(sender, sid: bytes) -> bytes:
    return bytes(
        SessionHeader(
            session_id=sid, created_us=1_800_000_000_000_000, width=256, height=256, fps_num=25, fps_den=1,
            key_interval=60, n_coeffs=2, basis_id=b"basis-02", steps=(0.5, 1.0, 0.25, 0.125),
            key_scales=bytes([45] * 8), pred_scales=bytes([18] * 8), reference_digest=sid * 2, reference_size=100,
            extensions=(signer_extension(sender),),
        )  # fmt: skip
    )


def _write(path: Path, frames, fps: int = 25) -> Path:
    h, w = frames[0].shape[:2]
    with VideoWriter(str(path), w, h, fps) as vw:
        for i, f in enumerate(frames):
            vw.write(np.ascontiguousarray(f), i / fps)
    return path


def _stamp(frames, header: bytes, receiver: bytes, first: int = 0):
    wm = Watermarker(PUBLIC_MARK_KEY, WatermarkPayload.for_session(header, receiver))
    return [wm.embed(np.ascontiguousarray(f), first + i) for i, f in enumerate(frames)]


def _record(path: Path, frames, header: bytes, identity) -> list:
    """Play the receiver: mark, write, sign.  Returns the frames as written (marked)."""
    marked = _stamp(frames, header, identity.public.ed25519)
    log = RecordingLog()
    log.start(header)
    for i, f in enumerate(marked):
        log.frame(1_800_000_000.0 + i / 25, image=f)
    log.end()
    _write(path, marked)
    write_provenance(path, log, identity, c2pa=False)
    return marked


def _verify(video: Path, manifest: Path, trust: Path) -> dict:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli(["verify", str(video), "--manifest", str(manifest), "--trust", str(trust), "--no-c2pa", "--json"])
    if code != 0:
        raise RuntimeError(f"verify {video} exited {code}: {err.getvalue().strip()}")
    return json.loads(out.getvalue())


def _decoded(path: Path):
    import av

    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


def _edit_manifest(src: Path, dst: Path, forged_video: Path, forged_frames, resign=None) -> Path:
    from facelink.provenance import ContentLog, canonical_json, file_sha256

    doc = json.loads(src.read_bytes())
    log = ContentLog()
    for f in forged_frames:
        log.add(f)
    doc["body"]["content"] = log.fingerprint().as_body()
    digest, size = file_sha256(forged_video)
    doc["body"]["video"] = {"sha256": digest.hex(), "bytes": size, "name": forged_video.name}
    if resign is not None:
        body = doc["body"]
        body["receiver"] = {"ed25519": resign.public.ed25519.hex(), "fingerprint": resign.fingerprint, "name": resign.name}
        sig = resign.sign(b"facelink/provenance/v1\x00" + canonical_json(body))
        doc["signature"] = {"alg": "Ed25519", "key": resign.public.ed25519.hex(), "value": sig.hex()}
    dst.write_text(json.dumps(doc))
    return dst


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", type=int, default=12, help="evaluation persons (one clip each)")
    ap.add_argument("--frames", type=int, default=100, help="frames per genuine recording")
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "provenance_forgery_results.md")
    args = ap.parse_args(argv)
    root = data_root()
    if root is None:
        print("benchmarks/provenance_forgery.py: ../shared/data is absent; nothing to measure", file=sys.stderr)
        return 0
    n = args.frames
    _, evals = split_clips(real_clips(root))
    seen, clips = set(), []
    for c in evals:
        if c.person not in seen and c.frames >= 2 * n + 10 and min(c.width, c.height) >= args.size // 2:
            seen.add(c.person)
            clips.append(c)
    clips = clips[: args.clips + 4]  # a few spares for clips shorter than their metadata says
    if len(clips) < 2:
        print("benchmarks/provenance_forgery.py: fewer than 2 usable evaluation clips", file=sys.stderr)
        return 1
    receiver, sender, forger = generate_identity("kiosk-rx"), generate_identity("cam-1"), generate_identity("forger")
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="flk-forgery-") as tmp:
        tmp = Path(tmp)
        trust = tmp / "trust"
        trust.mkdir(mode=0o700)
        trust_key(trust, receiver.public)
        # the genuine recordings, one session per person
        rec = []
        for i, c in enumerate(clips):
            raw = wb._read(c.path, 2 * n, args.size)
            if len(raw) < 2 * n:
                print(f"skipped {c.rel}: {len(raw)} frames decoded", file=sys.stderr)
                continue
            hdr = _header(sender, f"forgery-bench-{len(rec):02d}".encode())
            d = tmp / f"p{len(rec)}"
            d.mkdir()
            video = d / "genuine.mp4"
            _record(video, raw[:n], hdr, receiver)
            rec.append({"clip": c, "raw": raw, "header": hdr, "video": video, "manifest": sidecar_path(video), "dir": d})
            print(f"recorded {c.rel}", file=sys.stderr)
            if len(rec) == args.clips:
                break
        rows = []
        for i, r in enumerate(rec):
            other = rec[(i + 1) % len(rec)]
            d, man = r["dir"], r["manifest"]
            written = _decoded(r["video"])
            res = {"person": r["clip"].person, "genuine": {}, "forged": {}}
            copies = {
                "exact file": r["video"],
                "H.264 CRF 28": _write(d / "crf28.mp4", wb.ATTACKS["H.264 CRF 28"](written)),
                "0.5x + H.264 CRF 28": _write(d / "half.mp4", wb.ATTACKS["0.5x + H.264 CRF 28"](written)),
                "H.264 CRF 23 twice": _write(d / "twice.mp4", wb.ATTACKS["H.264 CRF 23 twice"](written)),
                "excerpt 20-79, CRF 28": _write(d / "excerpt.mp4", wb.ATTACKS["H.264 CRF 28"](written[20:80])),
            }
            for name, path in copies.items():
                res["genuine"][name] = _verify(path, man, trust)
            hdr, rk = r["header"], receiver.public.ed25519
            foreign = other["raw"][:n]
            forged = {
                "A": _stamp(foreign, hdr, rk),
                "B": _stamp(r["raw"][n : 2 * n], hdr, rk),
                "C": _decoded(other["video"]),
                "D": _stamp(_decoded(other["video"]), hdr, rk),
                "E": written[:40] + _stamp(foreign[40:64], hdr, rk, first=40) + written[64:],
                "F": written[:60] + _stamp(foreign[60:], hdr, rk, first=60),
            }
            for k, frames in forged.items():
                path = _write(d / f"forged-{k}.mp4", frames)
                shutil.copy(man, sidecar_path(path))
                res["forged"][k] = _verify(path, sidecar_path(path), trust)
            fa = d / "forged-A.mp4"
            res["forged"]["G"] = _verify(fa, _edit_manifest(man, d / "G.json", fa, _decoded(fa)), trust)
            res["forged"]["H"] = _verify(fa, _edit_manifest(man, d / "H.json", fa, _decoded(fa), resign=forger), trust)
            rows.append(res)
            print(f"{res['person']}: genuine {[v['verdict'] for v in res['genuine'].values()]}, "
                  f"forged {[v['verdict'] for v in res['forged'].values()]}", file=sys.stderr)  # fmt: skip
        # cost of the content fingerprint per frame (receiver side)
        f = rec[0]["raw"][0]
        t = time.perf_counter()
        for _ in range(200):
            frame_grid(f)
        grid_ms = (time.perf_counter() - t) / 200 * 1000
    report = _summary(rows, [r["clip"] for r in rec], args, grid_ms, time.perf_counter() - t0)
    args.out.write_text(report)
    print(report)
    return 0


def _summary(rows, clips, args, grid_ms: float, seconds: float) -> str:
    n = len(rows)
    lines = [
        "# Forged provenance: results",
        "",
        f"`python benchmarks/provenance_forgery.py --clips {args.clips} --frames {args.frames} --size {args.size}`: "
        f"{n} evaluation persons, {args.frames}-frame recordings at {args.size} x {args.size}, "
        f"{seconds:.0f} s on this machine's CPU. A verdict counts as valid when `verdict` is `valid` "
        "(signature verifies, receiver trusted, content matches, recording complete).",
        "",
        "## Genuine copies (must stay attributed)",
        "",
        "| copy | valid | said | worst segment RMS (median / max) | worst cell (median / max) |",
        "|---|---|---|---|---|",
    ]
    for g in GENUINE:
        rs = [r["genuine"][g] for r in rows]
        ok = sum(x["verdict"] == "valid" for x in rs)
        said = sorted({x["copy"] or "-" for x in rs})
        cs = [x["content"] for x in rs if x["content"]]
        if cs:
            wr = [c["worst_rms"] for c in cs]
            wm = [c["worst_max"] for c in cs]
            rms = f"{np.median(wr):.2f} / {max(wr):.2f}"
            mx = f"{np.median(wm):.2f} / {max(wm):.2f}"
        else:
            rms = mx = "(exact file: not compared)"
        lines.append(f"| {g} | {ok}/{n} | {', '.join(said)} | {rms} | {mx} |")
    lines += [
        "",
        "## Forgeries (must never be valid)",
        "",
        "| | forgery | valid | signature_valid true | content matched | mark names the manifest's session | best-alignment segments failing (median) |",
        "|---|---|---|---|---|---|---|",
    ]
    for k, what in FORGERIES.items():
        rs = [r["forged"][k] for r in rows]
        ok = sum(x["verdict"] == "valid" for x in rs)
        sv = sum(x["signature_valid"] is True for x in rs)
        cm = sum(x["content_match"] is True for x in rs)
        mm = sum(x["manifest_matches_mark"] is True for x in rs)
        fails = [x["content"]["segments_failed"] / max(1, x["content"]["segments_checked"]) for x in rs if x["content"] and x["content"]["segments_checked"]]
        frac = f"{100 * np.median(fails):.0f} %" if fails else "-"
        lines.append(f"| {k} | {what} | {ok}/{n} | {sv}/{n} | {cm}/{n} | {mm}/{n} | {frac} |")
    statuses = {k: sorted({r["forged"][k]["manifest_status"] for r in rows}) for k in ("G", "H")}
    lines += [
        "",
        f"G: manifest status {', '.join(statuses['G'])}; H: manifest status {', '.join(statuses['H'])}, "
        "receiver not in the trust directory.",
        "",
        f"Content fingerprint cost on the receiver: {grid_ms:.2f} ms per {args.size} x {args.size} frame (one core).",
        "",
        "Persons: " + ", ".join(sorted({c.person for c in clips})) + ".",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
