"""Expected outputs for the C tests, made with FaceLink's Python API (not facelink.capi).

``python make_expected.py DIR`` writes into DIR:

* ``meta.txt``: ``key value`` lines (sizes, counts, session id, created time, features,
  and ``models 0`` plus a ``reason`` when the models or the portrait are unavailable);
* ``frames.rgb``: FRAMES frames of WIDTH x HEIGHT RGB24, the public-domain astronaut
  portrait moved by small rotations and shifts (the reference is frame 0);
* ``packets.bin``: every packet of the session (header, reference chunks, one per frame,
  end), each as a little-endian u32 length and the bytes; ``kinds`` in meta.txt;
* ``decoded.rgb`` + ``decoded.txt``: what :class:`facelink.receiver.FrameRenderer` renders
  from those packets (RGB24 frames; one ``index held kind time`` line per frame);
* ``portrait.rgb``: :func:`facelink.io.load_image` of the portrait (``portrait_path``);
* ``clip.mp4``: the frames as a video, for the file-encoding tests;
* signed streams (when ``facelink.security`` is there; ``signed 1`` in meta.txt):
  ``keys/signer.key`` + ``.pub`` (a fresh identity), ``trust/`` (a trust directory that
  trusts it) and ``signed.bin``: the same session signed with it, as
  :func:`facelink.security.seal_packets` seals it with ``seal_interval`` (0.1 s: a seal
  every 3 frames), in the format of ``packets.bin`` (``signed_packets`` in meta.txt).
"""

from __future__ import annotations

import dataclasses
import struct
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np

SIZE = 256
FRAMES = 8
FPS = Fraction(30, 1)
SESSION_ID = bytes(range(16))
CREATED_US = 1_700_000_000_000_000
SEAL_INTERVAL = 0.1
KIND_CODES = {"key": 1, "predicted": 2, "no_face": 3, "lost": 4}


def make_frames(portrait: np.ndarray) -> list[np.ndarray]:
    from PIL import Image

    base = Image.fromarray(portrait).resize((SIZE, SIZE), Image.Resampling.LANCZOS)
    frames = []
    for i in range(FRAMES):
        angle = 3.0 * np.sin(i / 2.0)
        dx, dy = round(4 * np.sin(i / 3.0)), round(2 * np.cos(i / 4.0)) - 2
        moved = base.rotate(angle, resample=Image.Resampling.BILINEAR, translate=(dx, dy))
        frames.append(np.asarray(moved, dtype=np.uint8).copy())
    return frames


def write_packets(path: Path, packets: list[bytes]) -> None:
    with path.open("wb") as f:
        for p in packets:
            f.write(struct.pack("<I", len(p)))
            f.write(p)


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: make_expected.py OUTPUT_DIR", file=sys.stderr)
        return 2
    out = Path(argv[1])
    out.mkdir(parents=True, exist_ok=True)
    from facelink import capi
    from facelink.errors import FaceLinkError

    feats = capi.features()
    meta: dict[str, object] = {
        "width": SIZE,
        "height": SIZE,
        "frames": FRAMES,
        "fps_num": FPS.numerator,
        "fps_den": FPS.denominator,
        "session_id": SESSION_ID.hex(),
        "created_us": CREATED_US,
        "keys": int(feats["keys"]),
        "verify": int(feats["verify"]),
    }
    try:
        result = _expected(out)
    except FaceLinkError as e:  # no network and no cache: the C tests skip the model-backed checks
        meta.update(models=0, reason=f"models or portrait unavailable: {' '.join(str(e).split())}")
    else:
        meta.update(models=1, **result)
    lines = [f"{k} {v}" for k, v in meta.items() if k != "reason"]
    if "reason" in meta:
        lines.append(f"reason {meta['reason']}")  # last: its value runs to the end of the line
    (out / "meta.txt").write_text("\n".join(lines) + "\n")
    print(f"make_expected: wrote {out} (models {'available' if meta['models'] else 'unavailable'})")
    return 0


def _expected(out: Path) -> dict[str, object]:
    from facelink.assets import asset_path
    from facelink.codec import QUALITY_PRESETS
    from facelink.face import create_models, create_tracker
    from facelink.io import Frame, VideoWriter, load_image
    from facelink.receiver import FrameRenderer
    from facelink.sender import FrameEncoder, make_reference

    portrait_path = asset_path("astronaut")
    portrait = load_image(str(portrait_path))
    (out / "portrait.rgb").write_bytes(portrait.tobytes())
    frames = make_frames(portrait)
    (out / "frames.rgb").write_bytes(b"".join(f.tobytes() for f in frames))

    # the sender exactly as facelink_sender_create documents it
    reference = make_reference(frames[0], create_models("auto"))
    enc = FrameEncoder(
        reference, QUALITY_PRESETS["medium"], width=SIZE, height=SIZE, fps=FPS,
        tracker=create_tracker("auto"), session_id=SESSION_ID,
    )  # fmt: skip
    enc.codec.header = dataclasses.replace(enc.codec.header, created_us=CREATED_US)
    packets = list(enc.start())
    n_start = len(packets)
    kinds = []
    for i, image in enumerate(frames):
        pkt, kf = enc.push(Frame(image, i / float(FPS), i))
        packets.append(pkt)
        kinds.append(KIND_CODES[kf.kind.value])
    packets.append(enc.end())
    write_packets(out / "packets.bin", packets)
    signed = _signed(out, reference, frames)

    renderer = FrameRenderer()
    decoded, lines = [], []
    for p in packets:
        r = renderer.push(p)
        if r is not None:
            decoded.append(np.ascontiguousarray(r.image).tobytes())
            lines.append(f"{r.index} {int(r.held)} {KIND_CODES[r.kind.value]} {r.time!r}")
            shape = r.image.shape
    (out / "decoded.rgb").write_bytes(b"".join(decoded))
    (out / "decoded.txt").write_text("\n".join(lines) + "\n")

    writer = VideoWriter(str(out / "clip.mp4"), SIZE, SIZE, FPS)
    for i, image in enumerate(frames):
        writer.write(image, i / float(FPS))
    writer.close()
    return {
        **signed,
        "packets": len(packets),
        "start_packets": n_start,
        "kinds": ",".join(map(str, kinds)),
        "decoded": len(decoded),
        "out_width": shape[1],
        "out_height": shape[0],
        "portrait_width": portrait.shape[1],
        "portrait_height": portrait.shape[0],
        "portrait_path": str(portrait_path),
    }


def _signed(out: Path, reference, frames: list[np.ndarray]) -> dict[str, object]:
    """The session signed as facelink_sender_create_ex documents it: FrameEncoder with the
    signer extension, then seal_packets() (the Python API's sealing of a recorded stream)."""
    import shutil

    try:
        from facelink.security import (
            generate_identity,
            seal_packets,
            signer_extension,
            trust_key,
            write_identity,
        )
    except ImportError:
        return {"signed": 0}
    from facelink.codec import QUALITY_PRESETS
    from facelink.face import create_tracker
    from facelink.io import Frame
    from facelink.sender import FrameEncoder

    for d in ("keys", "trust"):
        shutil.rmtree(out / d, ignore_errors=True)
    identity = generate_identity("signer")
    write_identity(identity, out / "keys")
    trust_key(out / "trust", identity.public)
    from facelink.security._local import local_identity

    trust_key(out / "trust", local_identity().public)  # the decoding receiver: its manifests verify as valid
    enc = FrameEncoder(
        reference, QUALITY_PRESETS["medium"], width=SIZE, height=SIZE, fps=FPS, tracker=create_tracker("auto"),
        session_id=SESSION_ID, created_us=CREATED_US, extensions=(signer_extension(identity),),
    )  # fmt: skip
    packets = list(enc.start())
    for i, image in enumerate(frames):
        packets.append(enc.push(Frame(image, i / float(FPS), i))[0])
    packets.append(enc.end())
    sealed = list(seal_packets(packets, identity, interval=SEAL_INTERVAL))
    write_packets(out / "signed.bin", sealed)
    return {"signed": 1, "signed_packets": len(sealed), "seal_interval": SEAL_INTERVAL, "signer": identity.fingerprint}


if __name__ == "__main__":
    sys.exit(main(sys.argv))
