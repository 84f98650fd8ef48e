"""``facelink encode INPUT -o STREAM.flk``: a video file (or capture URI) to a keypoint stream."""

from __future__ import annotations

import sys

from ._common import Progress, add_backend_argument, atomic_output, emit_json


def add_rate_arguments(p) -> None:
    g = p.add_mutually_exclusive_group()
    g.add_argument("--quality", choices=["low", "medium", "high"], help="rate/fidelity preset (default: medium)")
    g.add_argument("--kbps", type=float, help="target rate in kbit/s: picks the finest operating point that fits")
    p.add_argument("--key-interval", type=int, metavar="N", help="frames between key frames (default: 60)")


def codec_params(args):
    from ..codec import QUALITY_PRESETS, params_for_kbps

    params = params_for_kbps(args.kbps) if args.kbps is not None else QUALITY_PRESETS[args.quality or "medium"]
    if args.key_interval is not None:
        if not 1 <= args.key_interval <= 65535:
            raise _usage("--key-interval must be in 1..65535")
        params = params.with_(key_interval=args.key_interval)
    return params


def _usage(msg: str):
    from . import _UsageError

    return _UsageError(f"facelink encode: {msg}")


def register(sub) -> None:
    p = sub.add_parser("encode", help="encode a video into a keypoint stream (.flk)")
    p.add_argument("input", metavar="INPUT", help="video file or capture URI")
    p.add_argument("-o", "--output", required=True, metavar="STREAM.flk")
    p.add_argument("--reference", metavar="IMG", help="reference image (default: the first frame showing a face)")
    add_rate_arguments(p)
    add_backend_argument(p)
    p.add_argument("--json", action="store_true", help="print one JSON object with the statistics")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..bitstream import FlkWriter
    from ..sender import encode_file

    if args.kbps is not None and not args.kbps > 0:
        raise _usage("--kbps must be positive")
    params = codec_params(args)
    bar = Progress("encode")
    with atomic_output(args.output) as tmp, FlkWriter(tmp) as w:
        stats = encode_file(args.input, w.write, params=params, reference_image=args.reference, backend=args.backend, progress=bar)
    bar.close()
    out = stats.as_dict()
    out.update(output=args.output, k=params.k, key_interval=params.key_interval)
    if args.json:
        emit_json(out)
    else:
        print(
            f"{args.output}: {out['frames']} frames ({out['face_frames']} with a face), {out['bytes']} bytes, "
            f"{out['kbps']:.2f} kbps + {out['reference_bytes']} bytes reference, {out['fps']:.1f} fps",
            file=sys.stderr,
        )
    return 0
