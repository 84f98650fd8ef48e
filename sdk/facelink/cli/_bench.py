"""``facelink bench codec|report|speed``: rate-quality against real codecs, and pipeline speed."""

from __future__ import annotations

import shlex
import sys

from ._common import Progress, add_backend_argument, emit_json


def _usage(msg: str):
    from . import _UsageError

    return _UsageError(f"facelink bench: {msg}")


def register(sub) -> None:
    p = sub.add_parser("bench", help="benchmarks: codec rate-quality vs x264/x265/AV1, pipeline speed")
    bsub = p.add_subparsers(dest="bench_command", metavar="BENCH")
    bsub.required = True

    c = bsub.add_parser(
        "codec",
        help="FaceLink vs peer codecs on the same frames: rates, PSNR/SSIM/MS-SSIM/AKD, BD-rate, plots",
        description="Self-reenactment on each clip (first frame = FaceLink's reference, the rest coded by every "
        "codec at the same size and frame rate). Without --clips: the evaluation persons' clips of the "
        "development data (one per person), when that data is present.",
    )
    c.add_argument("--clips", nargs="+", metavar="PATH", help="video files (default: the development data's clips)")
    c.add_argument("--out", required=True, metavar="DIR", help="output directory (report.json, report.md, plots/, contact/)")
    c.add_argument("--size", type=int, help="square frame size every codec sees (default 256; --fast: 128)")
    c.add_argument("--frames", type=int, help="frames read per clip, the first is the reference (default 150; --fast: 10)")
    c.add_argument("--every", type=int, default=1, metavar="N", help="score every Nth coded frame (rates always count all; default 1)")
    c.add_argument("--peers", default="x264,x265,svtav1", help="comma-separated peer codecs (default: x264,x265,svtav1)")
    c.add_argument(
        "--peer-kbps", metavar="LIST", help="comma-separated bitrate targets for the peers (default 5,10,20,50,100,200; --fast: 20,100)"
    )
    c.add_argument("--no-facelink", action="store_true", help="run the peers only")
    c.add_argument(
        "--facelink", metavar="LIST", dest="facelink_points",
        help="comma-separated FaceLink points (default: k4-coarse,low,medium,high,k32-fine; also <preset>-noeyes)",
    )  # fmt: skip
    c.add_argument(
        "--split", choices=["eval", "train", "all"], default="eval", help="which persons of the development data (default: eval)"
    )
    c.add_argument("--limit", type=int, metavar="N", help="only the first N clips")
    c.add_argument("--fast", action="store_true", help="smoke run: small frames, few frames, few rate points")
    c.add_argument("--no-plots", action="store_true", help="skip the matplotlib plots (contact sheets are still drawn)")
    add_backend_argument(c)
    c.add_argument("--json", action="store_true", help="print one JSON object (the overall results and output paths)")
    c.set_defaults(func=run_codec)

    r = bsub.add_parser(
        "report",
        help="re-analyse a finished codec run (DIR/report.json): comparisons, report.md, plots",
        description="Recomputes the BD-rates, savings and means of DIR/report.json and rewrites it, report.md and "
        "the plots, without re-running any codec (contact sheets are kept).",
    )
    r.add_argument("dir", metavar="DIR", help="output directory of `facelink bench codec`")
    r.add_argument("--no-plots", action="store_true", help="skip the matplotlib plots")
    r.add_argument("--json", action="store_true", help="print one JSON object (the overall results)")
    r.set_defaults(func=run_report)

    s = bsub.add_parser(
        "speed",
        help="encoder stages, generator at 256/512, loopback latency, peak RSS",
        description="Times the pipeline on one clip (the first of --clips, else a development-data clip).",
    )
    s.add_argument("--clips", nargs="+", metavar="PATH", help="video file(s); the first is used")
    s.add_argument("--out", required=True, metavar="DIR", help="output directory (speed.json, speed.md)")
    s.add_argument("--frames", type=int, default=100, help="frames timed per stage (default 100)")
    add_backend_argument(s)
    s.add_argument("--json", action="store_true", help="print speed.json's object")
    s.set_defaults(func=run_speed)


def run(args) -> int:  # the module contract: register(sub) / run(args)
    return int(args.func(args))


def _out_dir(path: str):
    from pathlib import Path

    from ..errors import InputError

    out = Path(path)
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: exists and is not a directory")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise InputError(f"{out}: cannot create output directory ({e.strerror or e})") from None
    return out


def _clips(args, *, speed: bool = False):
    from ..bench import default_clips, resolve_clips

    if args.clips:
        return resolve_clips(args.clips)
    clips = default_clips(getattr(args, "split", "eval"))
    if not clips:
        raise _usage("no --clips given and the development data (../shared/data or $FACELINK_DATA) is absent")
    if speed:  # prefer a clip of at least 512 px, so the 512x512 generator input is not upscaled
        big = [c for c in clips if _min_side(c.path) >= 512]
        return big[:1] or clips[:1]
    return clips


def _min_side(path: str) -> int:
    from ..errors import InputError
    from ..io import probe_video

    try:
        info = probe_video(path)
    except InputError:  # an unreadable clip is simply not preferred
        return 0
    return min(info.width, info.height)


def _command(args) -> str:
    """The command line that reproduces this run (recorded in the report)."""
    parts = ["facelink", "bench", "codec"]
    if args.clips:
        parts += ["--clips", *args.clips]
    parts += ["--out", args.out]
    for flag, value in (("--size", args.size), ("--frames", args.frames), ("--peer-kbps", args.peer_kbps), ("--limit", args.limit)):
        if value is not None:
            parts += [flag, str(value)]
    if args.every != 1:
        parts += ["--every", str(args.every)]
    if args.peers != "x264,x265,svtav1":
        parts += ["--peers", args.peers]
    if getattr(args, "facelink_points", None):
        parts += ["--facelink", args.facelink_points]
    if args.split != "eval" and not args.clips:
        parts += ["--split", args.split]
    if args.backend != "auto":
        parts += ["--backend", args.backend]
    parts += [f for f, on in (("--fast", args.fast), ("--no-facelink", args.no_facelink), ("--no-plots", args.no_plots)) if on]
    return " ".join(shlex.quote(p) for p in parts)


def _floats(text: str, what: str) -> tuple[float, ...]:
    try:
        vals = tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise _usage(f"{what} wants comma-separated numbers, got {text!r}") from None
    if not vals or any(not v > 0 for v in vals):
        raise _usage(f"{what} wants positive numbers, got {text!r}")
    return vals


def run_codec(args) -> int:
    from ..bench import DEFAULT_PEER_KBPS, FAST_PEER_KBPS, CodecBenchConfig, available_peers, facelink_points, run_codec_bench
    from ..bench._peers import PEERS

    names = [p.strip() for p in args.peers.split(",") if p.strip()] if args.peers else []
    unknown = [n for n in names if n not in PEERS]
    if unknown:
        raise _usage(f"unknown peer codec(s) {', '.join(unknown)}; choose from {', '.join(PEERS)}")
    peers = available_peers(names)
    missing = sorted(set(names) - {p.name for p in peers})
    if missing:
        print(f"facelink bench: warning: this PyAV build lacks {', '.join(missing)}; skipped", file=sys.stderr)
    if not peers and args.no_facelink:
        raise _usage("nothing to run: no peer codec available and --no-facelink")
    kbps = _floats(args.peer_kbps, "--peer-kbps") if args.peer_kbps else (FAST_PEER_KBPS if args.fast else DEFAULT_PEER_KBPS)
    size = args.size if args.size is not None else (128 if args.fast else 256)
    frames = args.frames if args.frames is not None else (10 if args.fast else 150)
    names = [n.strip() for n in args.facelink_points.split(",") if n.strip()] if args.facelink_points else None
    try:
        config = CodecBenchConfig(
            size=size, frames=frames, every=args.every,
            facelink=() if args.no_facelink else tuple(facelink_points(fast=args.fast, names=names)),
            peers=tuple(peers), peer_kbps=kbps, backend=args.backend,
        )  # fmt: skip
    except ValueError as e:
        raise _usage(str(e)) from None
    clips = _clips(args)
    if args.limit is not None:
        if args.limit < 1:
            raise _usage("--limit must be >= 1")
        clips = clips[: args.limit]
    out = _out_dir(args.out)
    bar = Progress("bench codec")
    report = run_codec_bench(clips, out, config, plots=not args.no_plots, progress=lambda d, t: bar(d, t), command=_command(args))
    bar.close()
    ov = report["overall"]
    if args.json:
        emit_json(
            {
                "out": str(out),
                "report": str(out / "report.json"),
                "markdown": str(out / "report.md"),
                "clips": len(report["clips"]),
                "facelink_clips": ov.get("clips", 0),
                "mean_runs": ov.get("mean_runs", []),
                "comparison": ov.get("comparison", {}),
                "elapsed_s": report.get("elapsed_s"),
            }
        )
    else:
        print(f"{out / 'report.md'}: {len(report['clips'])} clip(s), {report.get('elapsed_s', 0):.0f} s", file=sys.stderr)
    return 0


def run_report(args) -> int:
    from ..bench import rerender_report

    report = rerender_report(args.dir, plots=not args.no_plots)
    ov = report["overall"]
    if args.json:
        emit_json(
            {
                "report": str(args.dir),
                "clips": len(report["clips"]),
                "facelink_clips": ov.get("clips", 0),
                "mean_runs": ov.get("mean_runs", []),
                "comparison": ov.get("comparison", {}),
            }
        )
    else:
        print(f"{args.dir}: report.md rewritten from report.json ({len(report['clips'])} clip(s))", file=sys.stderr)
    return 0


def run_speed(args) -> int:
    from ..bench import WARMUP, run_speed_bench

    if args.frames < WARMUP + 3:
        raise _usage(f"--frames must be >= {WARMUP + 3}")
    clips = _clips(args, speed=True)
    out = _out_dir(args.out)
    bar = Progress("bench speed")
    cmd = ["facelink", "bench", "speed"] + (["--clips", *args.clips] if args.clips else []) + ["--out", args.out]
    if args.frames != 100:
        cmd += ["--frames", str(args.frames)]
    if args.backend != "auto":
        cmd += ["--backend", args.backend]
    result = run_speed_bench(
        clips[0],
        out,
        frames=args.frames,
        backend=args.backend,
        progress=lambda d, t: bar(d, t),
        command=" ".join(shlex.quote(c) for c in cmd),
    )
    bar.close()
    if args.json:
        emit_json(result)
    else:
        print(f"{out / 'speed.md'}: peak RSS {result['peak_rss_mb']:.0f} MB", file=sys.stderr)
    return 0
