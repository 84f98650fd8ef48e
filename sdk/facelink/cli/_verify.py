"""``facelink verify VIDEO``: is this clip FaceLink-generated, and by which session and receiver?

Exit codes: 0 whenever the analysis ran (whatever it found), 1 when the file cannot be
read, 2 on usage errors; 3 when a ``--require-*`` condition fails.  Besides the
watermark it checks the signed provenance manifest (``VIDEO.facelink.json`` beside the
video, or the one embedded with C2PA): its signature, whether it describes this very
file or -- for a re-encoded copy -- whether the video's frames match the content
fingerprint the receiver signed, whether the recording is complete, and -- with a
trust directory (``--trust DIR``, default ``$FACELINK_HOME/trust`` when it exists) --
whether its keys are trusted.  See ``docs/provenance.md`` for every field.
"""

from __future__ import annotations

import sys

from ._common import Progress, emit_json


def _usage(msg: str):
    from . import _UsageError

    return _UsageError(f"facelink verify: {msg}")


def register(sub) -> None:
    p = sub.add_parser("verify", help="check a video for the FaceLink provenance watermark")
    p.add_argument("video", metavar="VIDEO", help="any video file (a FaceLink clip, re-encoded, cut, captured)")
    p.add_argument("--trust", metavar="DIR", help="trust directory of public keys for the signed manifest (default: $FACELINK_HOME/trust if it exists)")
    p.add_argument("--manifest", metavar="FILE", help="the provenance manifest to check (default: VIDEO.facelink.json beside the video)")
    p.add_argument("--no-c2pa", action="store_true", help="do not read C2PA Content Credentials from the video")
    p.add_argument(
        "--mark-key",
        metavar="HEX",
        default="public",
        help="mark key to look for: hex of a per-deployment key, or 'public' (default: the public FaceLink key)",
    )
    p.add_argument("--max-frames", type=int, metavar="N", help="analyse at most N frames for the watermark (default: 900; the content check reads every frame)")
    p.add_argument("--require-synthetic", action="store_true", help="exit 3 unless the FaceLink mark is found")
    p.add_argument("--require-clean", action="store_true", help="exit 3 if the FaceLink mark is found (the clip must not be FaceLink output)")
    p.add_argument("--require-valid", action="store_true", help="exit 3 unless the provenance verdict is valid (signed, trusted, content matches, complete)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..pipeline import verify_video
    from ..watermark import MAX_FRAMES, MIN_FRAMES, MarkKey

    try:
        key = MarkKey.from_hex(args.mark_key)
    except ValueError as e:
        raise _usage(f"--mark-key: {e}") from None
    max_frames = MAX_FRAMES if args.max_frames is None else args.max_frames
    if max_frames < MIN_FRAMES:
        raise _usage(f"--max-frames must be at least {MIN_FRAMES}")
    if args.require_synthetic and args.require_clean:
        raise _usage("--require-synthetic and --require-clean contradict each other")
    bar = Progress("verify")
    report = verify_video(
        args.video, args.trust, manifest=args.manifest, c2pa=not args.no_c2pa, mark_key=key, max_frames=max_frames, progress=bar
    )
    bar.close()
    result = report.mark
    out = report.as_dict()
    failed = _requirement_failed(args, out)
    out["requirement_failed"] = failed
    if args.json:
        emit_json(out)
    else:
        _print_summary(args.video, result, out)
    if failed:
        print(f"facelink: verify: {failed}", file=sys.stderr)
        return 3
    return 0


def _print_summary(video: str, result, out: dict) -> None:
    if result.synthetic:
        who = f" session {out['session']}, receiver {out['receiver']}" if result.payload_bits_ok else " (payload not recovered)"
        print(f"{video}: SYNTHETIC (FaceLink mark, p = {result.p_value:.1e}){who}")
    else:
        why = f": {result.reason}" if result.reason and "no FaceLink mark" not in result.reason else ""
        p = "n/a" if result.p_value is None else f"{result.p_value:.2g}"
        print(f"{video}: no FaceLink mark found (p = {p}){why}")
    verdict = {"valid": "VALID", "partial": "PARTIAL", "invalid": "INVALID", "unverified": "unverified", "none": "none"}[out["verdict"]]
    if out["copy"] and out["copy"] != "exact":
        verdict += f" ({out['copy']})"
    print(f"provenance: {verdict}{_sender_text(out)}: {out['provenance']}")
    c = out.get("c2pa")
    if c and c.get("present"):
        print(f"C2PA: {c['validation_state']}" + (f" ({c['reason']})" if c.get("reason") else ""))
    print(f"{result.frames_analyzed} frames analysed, {result.frames_marked} marked", file=sys.stderr)


def _sender_text(out: dict) -> str:
    """The sender as the summary line shows it: never hidden when unsigned or untrusted."""
    if out["manifest_session"] is None:
        return ""
    if out["sender"] is None:
        return ", sender NONE (unsigned stream)"
    notes = []
    if out["sender_trusted_by_receiver"] is False:
        notes.append("not trusted by the receiver")
    if out["sender_trusted"] is False:
        notes.append("not in your trust directory")
    if out.get("motion_source") == "audio-driven":
        notes.append("motion AUDIO-DRIVEN: made from speech, not a tracked face")
    return f", sender {out['sender']}" + (f" ({', '.join(notes)})" if notes else "")


def _requirement_failed(args, out: dict) -> str | None:
    if args.require_synthetic and not out["synthetic"]:
        return "--require-synthetic: no FaceLink mark found"
    if args.require_clean and out["synthetic"]:
        return "--require-clean: the FaceLink mark was found"
    if args.require_valid and out["verdict"] != "valid":
        return f"--require-valid: provenance is {out['verdict']}"
    return None
