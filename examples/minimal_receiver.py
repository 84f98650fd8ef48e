#!/usr/bin/env python3
"""Minimal FaceLink receiver: verify a signed keypoint stream and render it to a window or a file.

    python examples/minimal_receiver.py tcp://*:5555 display://0 --key kiosk
"""

import argparse
import sys
from fractions import Fraction

from facelink.io import open_output
from facelink.receiver import SessionRenderer
from facelink.security import default_trust_dir, load_identity, resolve_key_path
from facelink.transport import Receiver


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("listen", help="endpoint to listen on, tcp://*:PORT")
    ap.add_argument("output", nargs="?", default="display://0", help="display://0 (default), out.mp4, rtsp://@:8554/face")
    ap.add_argument("--key", required=True, help="this receiver's key (name or .key path)")
    ap.add_argument("--trust", default=str(default_trust_dir()), help="directory of trusted senders' .pub files")
    args = ap.parse_args(argv)

    me = load_identity(resolve_key_path(args.key))
    renderer, out = SessionRenderer(receiver_key=me.public.ed25519), None
    with Receiver(args.listen, me, trust_dir=args.trust) as rx:
        while not (rx.core.summary() and rx.core.summary().end_verified):  # until the sender hangs up
            for frame in [r.delivery.frame for r in rx.poll(0.05) if r.delivery.frame is not None]:
                if rx.core.ready and frame.decodable:  # verified, and its session is ready
                    dec = rx.core.session.decoder
                    image = renderer.render(dec, frame).image  # generated and watermarked
                    out = out or open_output(args.output, image.shape[1], image.shape[0], Fraction(dec.header.fps_num, dec.header.fps_den))
                    out.write(image, frame.time)
    if out is not None:
        out.close()
    print(f"{out.frames if out else 0} frames rendered to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
