"""``facelink encode INPUT -o STREAM.flk``: a video file (or capture URI) to a keypoint stream."""

from __future__ import annotations

import sys

from ._common import Progress, add_backend_argument, emit_json


def add_rate_arguments(p) -> None:
    g = p.add_mutually_exclusive_group()
    g.add_argument("--quality", choices=["low", "medium", "high"], help="rate/fidelity preset (default: medium)")
    g.add_argument(
        "--kbps",
        type=float,
        help="target keypoint rate in kbit/s: picks the finest operating point whose typical rate fits "
        "(about 3.0 low, 3.6 medium, 4.8 high at 30 fps, seals not counted); below 3.0 is refused",
    )
    p.add_argument("--key-interval", type=int, metavar="N", help="frames between key frames (default: 60)")


def add_audio_arguments(p) -> None:
    g = p.add_mutually_exclusive_group()
    g.add_argument("--audio-kbps", type=float, default=8.0, metavar="K", help="Opus rate of the sound, 6-24 kbit/s (default: 8)")
    g.add_argument("--no-audio", action="store_true", help="leave the sound out (a silent stream, as before bitstream version 3)")


def audio_kbps(args, command: str = "encode") -> float | None:
    """``--audio-kbps`` / ``--no-audio`` as the rate to code the sound at (None: no sound)."""
    import math

    from ..audio import MAX_KBPS, MIN_KBPS

    if args.no_audio:
        return None
    if not math.isfinite(args.audio_kbps) or not MIN_KBPS <= args.audio_kbps <= MAX_KBPS:
        raise _usage(f"--audio-kbps must be {MIN_KBPS}..{MAX_KBPS}, got {args.audio_kbps:g}", command)
    return float(args.audio_kbps)


def codec_params(args, command: str = "encode"):
    """The codec parameters of ``--quality``/``--kbps``/``--key-interval``; usage errors for values out of range."""
    import math

    from ..codec import QUALITY_PRESETS, params_for_kbps
    from ..codec._params import RATE_TABLE

    if args.kbps is not None:
        lowest = RATE_TABLE[0][0]
        if not math.isfinite(args.kbps) or not args.kbps > 0:
            raise _usage(f"--kbps must be a positive finite number, got {args.kbps:g}", command)
        if args.kbps < lowest:
            names = {id(p): n for n, p in QUALITY_PRESETS.items()}
            points = ", ".join(f"{r:g} ({names.get(id(p), f'k={p.k}')})" for r, p in RATE_TABLE)
            raise _usage(
                f"--kbps {args.kbps:g} is below the lowest operating point: keypoints need about {points} kbit/s "
                f"(typical at 30 fps; seals come on top); give --kbps {lowest:g} or more, or --quality low",
                command,
            )
        params = params_for_kbps(args.kbps)
    else:
        params = QUALITY_PRESETS[args.quality or "medium"]
    if args.key_interval is not None:
        if not 1 <= args.key_interval <= 65535:
            raise _usage("--key-interval must be in 1..65535", command)
        params = params.with_(key_interval=args.key_interval)
    return params


def _usage(msg: str, command: str = "encode"):
    from . import _UsageError

    return _UsageError(f"facelink {command}: {msg}")


#: smallest --reference-size: below it the face in a typical frame gets too small to track or to render
MIN_REFERENCE_SIZE = 128


def add_reference_arguments(p) -> None:
    """``--reference-quality`` / ``--reference-size``: a smaller one-off reference."""
    p.add_argument(
        "--reference-quality",
        type=int,
        default=None,
        metavar="Q",
        help="JPEG quality of the reference image, 30..95 (default: 92); lower sends a smaller one-off reference",
    )
    p.add_argument(
        "--reference-size",
        type=int,
        default=None,
        metavar="PX",
        help=f"shrink the reference so its longer side is at most PX pixels (>= {MIN_REFERENCE_SIZE}; default: as captured); "
        "the receiver renders at the reference's size",
    )


def reference_options(args, command: str = "encode") -> dict:
    """``make_reference`` keyword arguments from the reference options; usage errors for values out of range."""
    from ..sender import REFERENCE_QUALITY

    q = REFERENCE_QUALITY if args.reference_quality is None else args.reference_quality
    if not 30 <= q <= 95:
        raise _usage(f"--reference-quality must be in 30..95 (JPEG quality), got {q}", command)
    if args.reference_size is not None and args.reference_size < MIN_REFERENCE_SIZE:
        raise _usage(f"--reference-size must be at least {MIN_REFERENCE_SIZE} pixels, got {args.reference_size}", command)
    return {"quality": q, "max_side": args.reference_size}


def add_precision_argument(p) -> None:
    p.add_argument(
        "--precision",
        choices=["auto", "int8", "fp32"],
        default="auto",
        help="encoder model precision (default: auto = $FACELINK_PRECISION, else int8 on TensorRT, fp32 on "
        "ONNX Runtime, where float runs faster; see docs/jetson.md)",
    )


def register(sub) -> None:
    p = sub.add_parser("encode", help="encode a video into a keypoint stream (.flk)")
    p.add_argument("input", metavar="INPUT", help="video file or capture URI")
    p.add_argument("-o", "--output", required=True, metavar="STREAM.flk")
    p.add_argument("--reference", metavar="IMG", help="reference image (default: the first frame showing a face)")
    add_reference_arguments(p)
    add_rate_arguments(p)
    add_audio_arguments(p)
    add_backend_argument(p)
    add_precision_argument(p)
    p.add_argument("--key", metavar="KEY", help="sign with this identity (default: this machine's local key, created on first use)")
    p.add_argument(
        "--session-id", metavar="HEX",
        help="fix the session id (32 hex digits; default random): with --created-us, the same input and key give the same bytes",
    )  # fmt: skip
    p.add_argument("--created-us", type=int, metavar="US", help="fix the session's creation time (microseconds since 1970; default now)")
    p.add_argument("--json", action="store_true", help="print one JSON object with the statistics")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..pipeline import encode_file
    from ..security import load_identity, resolve_key_path

    params = codec_params(args)
    kbps_audio = audio_kbps(args)
    ref_opts = reference_options(args)
    session_id, created_us = _session_options(args)
    identity = load_identity(resolve_key_path(args.key)) if args.key else None
    bar = Progress("encode")
    res = encode_file(
        args.input, args.output, identity, params=params, reference_image=args.reference, backend=args.backend,
        precision=args.precision, progress=bar, reference_quality=ref_opts["quality"], reference_size=ref_opts["max_side"],
        session_id=session_id, created_us=created_us, audio_kbps=kbps_audio,
    )  # fmt: skip
    bar.close()
    out = res.as_dict()
    if out.get("audio_warning"):
        print(f"facelink: warning: {out['audio_warning']}", file=sys.stderr)
    if args.json:
        emit_json(out)
    else:
        a = out["reference_amortised_kbps"]
        print(
            f"{args.output}: {out['frames']} frames ({out['face_frames']} with a face), {out['fps']:.1f} fps, "
            f"session {out['session']}, signed by {out['signer']}\n"
            f"  rate: keypoints {out['kbps_keypoints']:.2f}"
            + (f" + sound {out['kbps_audio']:.2f}" if out["audio_packets"] else " (no sound)")
            + f" + seals {out['kbps_seals']:.2f} = {out['kbps_with_seals']:.2f} kbps; "
            f"reference {out['reference_bytes']} bytes once ({res.reference_width}x{res.reference_height}, JPEG q{res.reference_quality}): "
            f"+{a['this_clip']:.1f} kbps over this {out['duration_s']:.1f} s clip, +{a['1_min']:.1f} over 1 min, "
            f"+{a['10_min']:.2f} over 10 min"
            + (f"; {out['regions']} region reference(s) {out['region_bytes']} bytes once" if out["regions"] else "")
            + f"; all-in {out['kbps_all_in']:.2f} kbps",
            file=sys.stderr,
        )
    return 0


def _session_options(args) -> tuple[bytes | None, int | None]:
    """``--session-id HEX`` / ``--created-us US``: a fixed session header (reproducible streams)."""
    sid = None
    if args.session_id is not None:
        try:
            sid = bytes.fromhex(args.session_id)
        except ValueError:
            sid = b""
        if len(sid) != 16:
            raise _usage(f"--session-id wants 32 hex digits (16 bytes), got {args.session_id!r}")
    if args.created_us is not None and args.created_us < 0:
        raise _usage(f"--created-us must be >= 0 (microseconds since 1970), got {args.created_us}")
    return sid, args.created_us
