"""``facelink animate --audio SPEECH --reference PORTRAIT -o OUT.mp4``: a portrait talking from speech."""

from __future__ import annotations

import sys

from ._common import Progress, add_backend_argument, emit_json


def register(sub) -> None:
    p = sub.add_parser("animate", help="a talking head from a portrait and speech (audio file or --text)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--audio", metavar="SPEECH", help="speech: any audio or video file with a sound track (wav, mp3, m4a, mp4, ...)")
    src.add_argument("--text", metavar="TEXT", help="speak this text first (needs espeak-ng: apt-get install espeak-ng)")
    p.add_argument("--reference", required=True, metavar="PORTRAIT", help="the face to animate (a photo, painting or cartoon)")
    p.add_argument("-o", "--output", required=True, metavar="OUT.mp4")
    p.add_argument("--seed", type=int, default=0, help="head motion and blinks (default 0; another seed, another take)")
    p.add_argument("--motion", choices=["calm", "natural", "lively"], default="natural", help="how much the head moves (default natural)")
    p.add_argument("--fps", type=float, default=30.0, help="frame rate of the video (default 30)")
    p.add_argument("--no-c2pa", action="store_true", help="do not embed C2PA Content Credentials (the signed manifest is always written)")
    add_backend_argument(p)
    p.add_argument("--json", action="store_true", help="print one JSON object ({frames, width, height, fps, seconds, ...})")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..pipeline import animate_file

    bar = Progress("animate")
    res = animate_file(
        args.reference, args.output, audio=args.audio, text=args.text, fps=args.fps, seed=args.seed, motion=args.motion,
        backend=args.backend, c2pa=not args.no_c2pa, progress=bar,
    )  # fmt: skip
    bar.close()
    out = res.as_dict()
    out["output"] = args.output
    if args.json:
        emit_json(out)
    else:
        print(
            f"{args.output}: {out['frames']} frames {out['width']}x{out['height']} @ {out['fps']:.0f} fps, "
            f"{out['seconds']:.1f} s of speech, motion {args.motion} (seed {args.seed}); audio-driven, watermarked, "
            f"manifest {res.decode.provenance.manifest_path if res.decode.provenance else 'not written'}",
            file=sys.stderr,
        )
    return 3 if res.decode.partial else 0
