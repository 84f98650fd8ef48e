"""``facelink verify VIDEO``: is this clip FaceLink-generated, and by which session and receiver?

Exit codes: 0 whenever the analysis ran (whatever it found), 1 when the file cannot be
read, 2 on usage errors.  Besides the watermark it checks the signed provenance
manifest (``VIDEO.facelink.json`` beside the video, or the one embedded with C2PA):
its signature, whether it describes this very file, whether it agrees with the
watermark, and -- with a trust directory (``--trust DIR``, default
``$FACELINK_HOME/trust`` when it exists) -- whether its keys are trusted.  See
``docs/provenance.md`` for every field.
"""

from __future__ import annotations

import os
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
    p.add_argument("--max-frames", type=int, metavar="N", help="analyse at most N frames (default: 900)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..errors import InputError
    from ..io import open_video
    from ..watermark import MAX_FRAMES, MIN_FRAMES, MarkKey, WatermarkDetector

    try:
        key = MarkKey.from_hex(args.mark_key)
    except ValueError as e:
        raise _usage(f"--mark-key: {e}") from None
    max_frames = MAX_FRAMES if args.max_frames is None else args.max_frames
    if max_frames < MIN_FRAMES:
        raise _usage(f"--max-frames must be at least {MIN_FRAMES}")
    if args.trust is not None and not os.path.isdir(args.trust):
        raise InputError(f"{args.trust}: trust directory does not exist")
    if args.manifest is not None and not os.path.isfile(args.manifest):
        raise InputError(f"{args.manifest}: no such manifest file")
    det = WatermarkDetector(key, max_frames=max_frames)
    bar = Progress("verify", max_frames)
    with open_video(args.video) as reader:
        for frame in reader:
            det.add(frame.image)
            bar(det.frames)
            if det.full:
                break
    bar.close()
    result = det.result()
    out = result.as_dict()
    out.update(video=args.video, mark_key="public" if key.is_public else key.fingerprint)
    out.update(_provenance(args, out))
    if args.json:
        emit_json(out)
    else:
        if result.synthetic:
            who = f" session {out['session']}, receiver {out['receiver']}" if result.payload_bits_ok else " (payload not recovered)"
            print(f"{args.video}: SYNTHETIC (FaceLink mark, p = {result.p_value:.1e}){who}")
        else:
            why = f": {result.reason}" if result.reason and "no FaceLink mark" not in result.reason else ""
            p = "n/a" if result.p_value is None else f"{result.p_value:.2g}"
            print(f"{args.video}: no FaceLink mark found (p = {p}){why}")
        sig = {True: "VALID", False: "INVALID", None: "unverified"}[out["signature_valid"]]
        sender = f", sender {out['sender']}" if out["sender"] else ""
        print(f"provenance: {sig}{sender}: {out['provenance']}")
        c = out.get("c2pa")
        if c and c.get("present"):
            print(f"C2PA: {c['validation_state']}" + (f" ({c['reason']})" if c.get("reason") else ""))
        print(f"{result.frames_analyzed} frames analysed, {result.frames_marked} marked", file=sys.stderr)
    return 0


def _provenance(args, mark: dict) -> dict:
    """The manifest fields; the trust store is --trust DIR, else the default one if it exists."""
    from ..provenance import check_provenance
    from ..security import TrustStore, default_trust_dir

    trust_dir = args.trust if args.trust is not None else (str(default_trust_dir()) if default_trust_dir().is_dir() else None)
    store = TrustStore.load(trust_dir) if trust_dir is not None else None
    out = check_provenance(args.video, mark, store, manifest_path=args.manifest, use_c2pa=not args.no_c2pa)
    out["trust"] = trust_dir
    return out
