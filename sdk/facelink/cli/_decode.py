"""``facelink decode STREAM.flk -o OUT.mp4``: synthesise the talking head from a keypoint stream."""

from __future__ import annotations

import re
import sys

from ._common import Progress, add_backend_argument, add_refiner_argument, emit_json


def register(sub) -> None:
    p = sub.add_parser("decode", help="render a keypoint stream (.flk) to video")
    p.add_argument("input", metavar="STREAM.flk")
    p.add_argument("-o", "--output", required=True, metavar="OUT.mp4")
    p.add_argument("--reference", metavar="IMG", help="drive this image instead of the stream's reference (motion transfer)")
    p.add_argument(
        "--pose",
        metavar="YAW,PITCH,ROLL",
        help="re-pose the head by these angles in degrees (free view; within ±30,±20,±20); negative angles as written: "
        "--pose -30,0,0",
    )
    p.add_argument("--yaw", type=float, metavar="DEG", help="re-pose: turn the head by DEG degrees (within ±30; instead of --pose)")
    p.add_argument("--pitch", type=float, metavar="DEG", help="re-pose: nod by DEG degrees (within ±20; instead of --pose)")
    p.add_argument("--roll", type=float, metavar="DEG", help="re-pose: tilt by DEG degrees (within ±20; instead of --pose)")
    # "--pose -30,0,0": argparse takes only plain negative numbers ("-30") for values, so a
    # negative angle list would read as an unknown option.  This parser has no option that
    # looks like a negative number, so every "-<digit>..." token is a value here.
    p._negative_number_matcher = re.compile(r"^-\.?\d[\d.,eE+-]*$")
    p.add_argument(
        "--eye-contact", action="store_true",
        help="redirect the rendered gaze at the camera (blinks and lids kept; --pose turns the head, this turns the eyes)",
    )  # fmt: skip
    p.add_argument("--trust", metavar="DIR", help="trusted sender keys (default: $FACELINK_HOME/trust)")
    p.add_argument("--insecure", action="store_true", help="decode unsigned streams or untrusted signers (seals still checked)")
    p.add_argument("--no-c2pa", action="store_true", help="do not embed C2PA Content Credentials (the signed OUT.facelink.json is always written)")
    add_backend_argument(p)
    add_refiner_argument(p)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..receiver import parse_pose

    angles = (args.yaw, args.pitch, args.roll)
    try:
        if args.pose is not None and any(a is not None for a in angles):
            raise ValueError("give either --pose YAW,PITCH,ROLL or --yaw/--pitch/--roll, not both")
        if args.pose is not None:
            offset = parse_pose(args.pose)
        elif any(a is not None for a in angles):
            try:
                offset = parse_pose(",".join(repr(float(a or 0.0)) for a in angles))
            except ValueError as e:  # name the option that was given
                raise ValueError(re.sub(r"--pose (yaw|pitch|roll)", r"--\1", str(e))) from None
        else:
            offset = (0.0, 0.0, 0.0)
    except ValueError as e:
        from . import _UsageError

        raise _UsageError(f"facelink decode: {e}") from None
    from ..pipeline import decode_file

    bar = Progress("decode")
    result = decode_file(
        args.input, args.output, args.trust, insecure=args.insecure, reference_image=args.reference, pose_offset=offset,
        eye_contact=args.eye_contact, backend=args.backend, refiner=args.refiner, c2pa=not args.no_c2pa, progress=bar,
    )  # fmt: skip
    bar.close()
    out = result.as_dict()
    tags = list(result.sessions)
    prov = result.provenance
    partial = result.partial
    if args.json:
        emit_json(out)
    else:
        what = "PARTIAL output (the stream stops before a verified End): " if partial else ""
        print(
            f"{args.output}: {what}{out['frames']} frames {out['width']}x{out['height']} @ {out['fps']:.3f} fps, "
            f"{out['held_frames']} held, generator {out['generator_fps']:.1f} fps"
            + (f", session {', '.join(tags)}" if tags else ""),
            file=sys.stderr,
        )
    if prov is not None and not args.json:
        note = f", marked PARTIAL ({prov.manifest.incomplete_reason})" if not prov.manifest.complete else ""
        print(f"{prov.manifest_path}: provenance manifest signed by receiver {prov.manifest.receiver_fingerprint}{note}", file=sys.stderr)
    if prov is not None and prov.c2pa_skipped and not args.no_c2pa:
        print(f"facelink: warning: C2PA Content Credentials not embedded: {prov.c2pa_skipped}", file=sys.stderr)
    if result.invalid_packets:
        print(f"facelink: error: {args.input}: {result.invalid_packets} damaged packet(s) skipped ({result.first_error}); the output is partial", file=sys.stderr)
        return 3
    if partial:
        print(f"facelink: error: {args.input}: stream ends before a verified End packet; the output is partial", file=sys.stderr)
        return 3
    return 0
