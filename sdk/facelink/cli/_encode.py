"""``facelink encode INPUT -o STREAM.flk``: a video file (or capture URI) to a keypoint stream."""

from __future__ import annotations

import sys

from ._common import Progress, add_backend_argument, atomic_output, emit_json, session_tag_hex


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
    add_backend_argument(p)
    add_precision_argument(p)
    p.add_argument("--key", metavar="KEY", help="sign with this identity (default: this machine's local key, created on first use)")
    p.add_argument("--json", action="store_true", help="print one JSON object with the statistics")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..bitstream import FlkWriter, PacketType, SessionHeader, parse_packet
    from ..codec import Reference
    from ..errors import NoFaceError
    from ..security import load_identity, resolve_key_path, seal_packets, signer_extension
    from ..security._local import local_identity
    from ..sender import encode_file

    params = codec_params(args)
    ref_opts = reference_options(args)
    bar = Progress("encode")
    if args.key:
        identity = load_identity(resolve_key_path(args.key))
    else:
        identity = local_identity()
    packets: list[bytes] = []
    try:
        stats = encode_file(
            args.input, packets.append, params=params, reference_image=args.reference, backend=args.backend,
            precision=args.precision, progress=bar, extensions=(signer_extension(identity),),
            reference_quality=ref_opts["quality"], reference_size=ref_opts["max_side"],
        )  # fmt: skip
    except NoFaceError as e:
        if ref_opts["max_side"] is None or "reference image" not in str(e):
            raise
        raise NoFaceError(f"{e} after --reference-size {ref_opts['max_side']} shrank it; give a larger size") from None
    bar.close()
    seal_bytes = ref_packet_bytes = 0
    with atomic_output(args.output) as tmp, FlkWriter(tmp) as w:
        for p in seal_packets(packets, identity):
            w.write(p)
            seal_bytes += len(p) if p[3] == PacketType.SEAL else 0
            ref_packet_bytes += len(p) if p[3] == PacketType.REFERENCE_CHUNK else 0
    out = stats.as_dict()
    out.update(rate_breakdown(stats.bytes, seal_bytes, ref_packet_bytes, stats.duration, stats.region_bytes))
    header = SessionHeader.parse(packets[0])
    out.update(
        session=session_tag_hex(header),
        session_id=header.session_id.hex(),
        seal_bytes=seal_bytes,
        signer=identity.public.fingerprint,
    )
    chunks = sorted((parse_packet(p) for p in packets if p[3] == PacketType.REFERENCE_CHUNK), key=lambda c: c.index)
    reference = Reference.parse(b"".join(c.data for c in chunks))
    w_ref, h_ref = reference.width, reference.height  # the receiver renders at this size
    from ..backend import select_backend
    from ..models import resolve_precision

    used = resolve_precision(args.precision, select_backend(args.backend).name)
    out.update(output=args.output, k=params.k, key_interval=params.key_interval, precision=used)
    out.update(reference_quality=ref_opts["quality"], reference_width=w_ref, reference_height=h_ref)
    if args.json:
        emit_json(out)
    else:
        a = out["reference_amortised_kbps"]
        print(
            f"{args.output}: {out['frames']} frames ({out['face_frames']} with a face), {out['fps']:.1f} fps, "
            f"session {out['session']}, signed by {out['signer']}\n"
            f"  rate: keypoints {out['kbps_keypoints']:.2f} + seals {out['kbps_seals']:.2f} = {out['kbps_with_seals']:.2f} kbps; "
            f"reference {out['reference_bytes']} bytes once ({w_ref}x{h_ref}, JPEG q{ref_opts['quality']}): "
            f"+{a['this_clip']:.1f} kbps over this {out['duration_s']:.1f} s clip, +{a['1_min']:.1f} over 1 min, "
            f"+{a['10_min']:.2f} over 10 min"
            + (f"; {out['regions']} region reference(s) {out['region_bytes']} bytes once" if out["regions"] else "")
            + f"; all-in {out['kbps_all_in']:.2f} kbps",
            file=sys.stderr,
        )
    return 0


def rate_breakdown(stream_bytes: int, seal_bytes: int, reference_packet_bytes: int, duration: float, region_bytes: int = 0) -> dict:
    """The rate of a stream, part by part: keypoints (frame packets, session header, end),
    seals, and the one-off reference and region references (crops of the open mouth),
    whose cost per second falls with the session's length."""

    def kbps(n: int, seconds: float) -> float:
        return round(8 * n / max(seconds, 1e-9) / 1000, 3)

    return {
        "kbps_keypoints": kbps(stream_bytes, duration),
        "kbps_seals": kbps(seal_bytes, duration),
        "kbps_with_seals": kbps(stream_bytes + seal_bytes, duration),
        "reference_packet_bytes": reference_packet_bytes,
        "reference_amortised_kbps": {
            "this_clip": kbps(reference_packet_bytes, duration),
            "1_min": kbps(reference_packet_bytes, 60.0),
            "10_min": kbps(reference_packet_bytes, 600.0),
        },
        "region_amortised_kbps": {
            "this_clip": kbps(region_bytes, duration),
            "1_min": kbps(region_bytes, 60.0),
            "10_min": kbps(region_bytes, 600.0),
        },
        "kbps_all_in": kbps(stream_bytes + seal_bytes + reference_packet_bytes + region_bytes, duration),
    }
