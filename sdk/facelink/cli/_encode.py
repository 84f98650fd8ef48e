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
    add_rate_arguments(p)
    add_backend_argument(p)
    add_precision_argument(p)
    p.add_argument("--key", metavar="KEY", help="sign with this identity (default: this machine's local key, created on first use)")
    p.add_argument("--json", action="store_true", help="print one JSON object with the statistics")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..bitstream import FlkWriter, PacketType
    from ..security import load_identity, resolve_key_path, seal_packets, signer_extension
    from ..security._local import local_identity
    from ..sender import encode_file

    params = codec_params(args)
    bar = Progress("encode")
    if args.key:
        identity = load_identity(resolve_key_path(args.key))
    else:
        identity = local_identity()
    packets: list[bytes] = []
    stats = encode_file(
        args.input, packets.append, params=params, reference_image=args.reference, backend=args.backend,
        precision=args.precision, progress=bar, extensions=(signer_extension(identity),),
    )  # fmt: skip
    bar.close()
    seal_bytes = 0
    with atomic_output(args.output) as tmp, FlkWriter(tmp) as w:
        for p in seal_packets(packets, identity):
            w.write(p)
            seal_bytes += len(p) if p[3] == PacketType.SEAL else 0
    out = stats.as_dict()
    from ..bitstream import SessionHeader

    header = SessionHeader.parse(packets[0])
    out.update(
        session=session_tag_hex(header),
        session_id=header.session_id.hex(),
        seal_bytes=seal_bytes,
        kbps_with_seals=round(8 * (stats.bytes + seal_bytes) / max(stats.duration, 1e-9) / 1000, 3),
        signer=identity.public.fingerprint,
    )
    from ..backend import select_backend
    from ..models import resolve_precision

    used = resolve_precision(args.precision, select_backend(args.backend).name)
    out.update(output=args.output, k=params.k, key_interval=params.key_interval, precision=used)
    if args.json:
        emit_json(out)
    else:
        print(
            f"{args.output}: {out['frames']} frames ({out['face_frames']} with a face), {out['bytes']} bytes, "
            f"{out['kbps']:.2f} kbps ({out['kbps_with_seals']:.2f} with seals) + {out['reference_bytes']} bytes reference, "
            f"{out['fps']:.1f} fps, session {out['session']}, signed by {out['signer']}",
            file=sys.stderr,
        )
    return 0
