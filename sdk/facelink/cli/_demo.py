"""``facelink demo [--out DIR]``: the whole pipeline on a scripted performance."""

from __future__ import annotations

import sys

from ._common import Progress, add_backend_argument, add_refiner_argument, emit_json


def register(sub) -> None:
    p = sub.add_parser("demo", help="run sender and receiver on a scripted performance; writes demo.mp4 + report.json")
    p.add_argument("--out", default="demo-out", metavar="DIR", help="output directory (default: demo-out)")
    p.add_argument("--seconds", type=float, default=8.0, help="length of the performance (default: 8)")
    add_backend_argument(p)
    add_refiner_argument(p)
    p.add_argument("--json", action="store_true", help="print the report as one JSON object")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..demo import run_demo

    if not 1.0 <= args.seconds <= 600:
        from . import _UsageError

        raise _UsageError("facelink demo: --seconds must be in 1..600")
    bar = Progress("demo")
    report = run_demo(args.out, backend=args.backend, seconds=args.seconds, progress=bar, refiner=args.refiner)
    bar.close()
    if args.json:
        emit_json(report)
    else:
        sp = report["speed"]
        fw, fh = sp["face_box"]
        print(
            f"wrote {report['video']} ({report['frames']} frames, {report['width']}x{report['height']}) and "
            f"{args.out}/report.json: {report['kbps']:.2f} kbps (keypoints {report['kbps_keypoints']:.2f}, "
            f"sound {report['kbps_audio']:.2f}: {report['speech']['source']} speech, lips from {report['speech']['lips']})\n"
            f"speed on this machine for the demo's portrait (face box {fw}x{fh}, {sp['face_box_share']:.0%} of the frame): "
            f"encoder {report['encoder_fps']} fps, generator alone {report['generator_fps']} fps, receiver end to end "
            f"{sp['receiver_fps']} fps; a face that fills the frame runs several times slower "
            f"(`facelink decode --json` on your clip gives your figure)",
            file=sys.stderr,
        )
    return 0
