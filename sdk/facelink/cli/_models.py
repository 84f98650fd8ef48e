"""``facelink models fetch``: download, verify and convert the encoder models."""

from __future__ import annotations

from ._common import emit_json


def register(sub) -> None:
    p = sub.add_parser("models", help="manage the encoder models (fetch, show the cache)")
    msub = p.add_subparsers(dest="models_command", metavar="ACTION")
    msub.required = True
    f = msub.add_parser("fetch", help="fetch mediapipe==0.10.18, verify SHA-256 pins, convert to ONNX")
    f.add_argument("--wheel", help="use this local mediapipe wheel instead of downloading (offline pre-seeding)")
    f.add_argument("--force", action="store_true", help="re-fetch and re-convert even if cached")
    f.add_argument("--json", action="store_true", help="print one JSON object")
    f.set_defaults(func=_fetch)


def _fetch(args) -> int:
    import sys

    from ..models import facelink_home, fetch_models

    def say(msg: str) -> None:
        if not args.json:
            print(msg, file=sys.stderr)

    paths = fetch_models(wheel=args.wheel, force=args.force, progress=say)
    if args.json:
        emit_json({"home": str(facelink_home()), "models": {k: str(v) for k, v in paths.items()}})
    else:
        for k, v in paths.items():
            print(f"{k}: {v}")
    return 0
