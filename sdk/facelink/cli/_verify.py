"""``facelink verify VIDEO``: is this clip FaceLink-generated, and by which session and receiver?

Exit codes: 0 whenever the analysis ran (whatever it found), 1 when the file cannot be
read, 2 on usage errors.  The signed-manifest fields (``sender``, ``signature_valid``)
are null until manifest support lands; ``--trust`` is accepted for that step and only
checked to be a directory now.
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
    p.add_argument("--trust", metavar="DIR", help="trust directory of public keys (for signed manifests)")
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
    out.update(
        video=args.video,
        mark_key="public" if key.is_public else key.fingerprint,
        sender=None,
        signature_valid=None,
    )
    if args.json:
        emit_json(out)
    else:
        if result.synthetic:
            who = f" session {out['session']}, receiver {out['receiver']}" if result.payload_bits_ok else " (payload not recovered)"
            print(f"{args.video}: SYNTHETIC (FaceLink mark, p = {result.p_value:.1e}){who}; no signed manifest checked")
        else:
            why = f": {result.reason}" if result.reason and "no FaceLink mark" not in result.reason else ""
            p = "n/a" if result.p_value is None else f"{result.p_value:.2g}"
            print(f"{args.video}: no FaceLink mark found (p = {p}){why}")
        print(f"{result.frames_analyzed} frames analysed, {result.frames_marked} marked", file=sys.stderr)
    return 0
