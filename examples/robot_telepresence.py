#!/usr/bin/env python3
"""Two-way telepresence call: each side captures and sends its face, and shows the other's.

    # on the robot (Jetson, CSI camera, screen on its head)
    python3 examples/robot_telepresence.py csi://0 display://0 --listen tcp://*:5556 \\
        --peer tcp://operator.local:5556 --key robot --peer-key operator.pub
    # on the operator's laptop
    python3 examples/robot_telepresence.py /dev/video0 display://0 --listen tcp://*:5556 \\
        --peer tcp://robot.local:5556 --key operator --peer-key robot.pub

Both directions are independent FaceLink links (a Sender to the peer's Receiver and back),
each CurveZMQ-encrypted and Ed25519-signed; each side must trust the other's .pub
(`facelink keys trust PEER.pub`).  One loop does capture -> track -> send and
receive -> verify -> generate -> watermark -> show, newest frame first, and prints one
status line (fps both ways, kbit/s, latency).  Ctrl-C or closing the window hangs up.
"""

import argparse
import sys
import time
from fractions import Fraction

from facelink.codec import QUALITY_PRESETS
from facelink.errors import FaceLinkError
from facelink.face import FaceTracker, create_models
from facelink.io import open_output, open_source
from facelink.receiver import SessionRenderer
from facelink.security import (
    TrustStore,
    default_trust_dir,
    load_identity,
    load_public,
    resolve_key_path,
)
from facelink.sender import make_reference
from facelink.transport import Receiver, ReferenceCache, Sender, check_endpoint


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n", 2)[2])
    ap.add_argument("input", nargs="?", default="csi://0", help="this side's camera (default csi://0)")
    ap.add_argument("output", nargs="?", default="display://0", help="where the peer's face goes (default display://0)")
    ap.add_argument("--listen", required=True, help="this side's receiver endpoint, tcp://*:PORT")
    ap.add_argument("--peer", required=True, help="the peer's receiver endpoint, tcp://HOST:PORT")
    ap.add_argument("--key", required=True, help="this side's key (name or .key path)")
    ap.add_argument("--peer-key", required=True, help="the peer's .pub (must also be in the trust directory)")
    ap.add_argument("--trust", default=None, help="trust directory (default: $FACELINK_HOME/trust)")
    ap.add_argument("--quality", default="medium", choices=sorted(QUALITY_PRESETS), help="rate preset (default medium)")
    ap.add_argument("--headless", action="store_true", help="no window: only send, and verify what comes back")
    ap.add_argument("--windowed", action="store_true", help="a window instead of full screen")
    ap.add_argument("--input-width", type=int, default=640)
    ap.add_argument("--input-height", type=int, default=480)
    ap.add_argument("--backend", default="auto", choices=["auto", "tensorrt", "onnxruntime"])
    args = ap.parse_args(argv)
    try:
        return call(args)
    except FaceLinkError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1


def call(args) -> int:
    me = load_identity(resolve_key_path(args.key))
    peer = load_public(args.peer_key)
    trust = TrustStore.load(args.trust or default_trust_dir())
    if trust.by_curve(peer.curve) is None:
        print(f"error: {args.peer_key} is not in the trust directory; run `facelink keys trust {args.peer_key}`", file=sys.stderr)
        return 1
    models = create_models(args.backend)
    tracker = FaceTracker(*models)
    source = open_source(args.input, width=args.input_width, height=args.input_height)
    print(f"{args.input}: {source.width}x{source.height} via {source.backend}; look at the camera", file=sys.stderr)
    first = next((f for f in source if tracker.update(f.image, f.time) is not None), None)
    if first is None:
        print(f"error: {args.input}: no face seen", file=sys.stderr)
        return 1
    sender = Sender(
        check_endpoint(args.peer, bind=False), me, reference=make_reference(first.image, models),
        params=QUALITY_PRESETS[args.quality], width=source.width, height=source.height, fps=source.fps,
        receiver_key=peer.curve,
    )  # fmt: skip
    receiver = Receiver(check_endpoint(args.listen, bind=True), me, trust=trust, refcache=ReferenceCache())
    renderer = SessionRenderer(backend=args.backend, receiver_key=me.public.ed25519)
    out = None
    shown = 0
    t0 = last_line = time.monotonic()
    sender.open()
    receiver.open()
    try:
        for frame in source:
            # this side -> the peer: track the face, send its keypoints (skipped while the peer is away)
            sender.service(0.0)
            face = tracker.update(frame.image, frame.time)
            sender.send_frame(
                frame.index, frame.time, face.landmarks if face else None, captured_at=time.time(),
                eyes=face.eyes if face else None, image=frame.image,
            )  # fmt: skip
            # the peer -> this side: verify, generate and show the newest frame
            got = [r.delivery for r in receiver.poll(0.0) if r.delivery.frame is not None]
            core = receiver.core
            if got and core.ready and not args.headless:
                dec = core.session.decoder
                d = got[-1]
                if d.session_id == dec.header.session_id and d.frame.decodable:
                    image = renderer.render(dec, d.frame).image
                    if out is None:
                        fps = Fraction(dec.header.fps_num, dec.header.fps_den)
                        out = open_output(args.output, image.shape[1], image.shape[0], fps, fullscreen=not args.windowed, title="FaceLink call")
                    out.write(image, d.frame.time)
                    shown += 1
                    if not out.is_open:
                        break
            now = time.monotonic()
            if now - last_line >= 1.0:
                s, r = sender.stats, core.stats()
                kbps = 8 * (s.total_bytes - s.reference_bytes) / max(now - t0, 1e-9) / 1000
                line = f"send {s.frames_sent / (now - t0):5.1f} fps {kbps:5.1f} kbps | show {shown / (now - t0):5.1f} fps, {r.frames} frames in"
                print("\r" + line, end="", file=sys.stderr, flush=True)
                if out is not None:
                    out.set_status(line)
                last_line = now
    except KeyboardInterrupt:
        pass
    finally:
        print(file=sys.stderr)
        sender.close(linger=1.0)
        stats = receiver.close()
        source.close()
        if out is not None:
            out.close()
    v = stats.verify
    print(f"sent {sender.stats.frames_sent} frames; received {stats.frames}" + (f", {v.spans_verified} spans verified" if v else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
