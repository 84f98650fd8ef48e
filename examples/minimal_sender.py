#!/usr/bin/env python3
"""Minimal FaceLink sender: camera or file -> face keypoints -> signed stream to a receiver.

    python examples/minimal_sender.py /dev/video0 tcp://kiosk:5555 --key me --receiver-key kiosk.pub
"""

import argparse
import sys

from facelink.codec import QUALITY_PRESETS
from facelink.face import FaceTracker, create_models
from facelink.io import open_source
from facelink.security import load_identity, load_public, resolve_key_path
from facelink.sender import make_reference
from facelink.transport import Sender


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("input", help="camera or file URI: /dev/video0, csi://0, picam://0, clip.mp4")
    ap.add_argument("to", help="the receiver's endpoint, tcp://HOST:PORT")
    ap.add_argument("--key", required=True, help="this sender's key (name or .key path)")
    ap.add_argument("--receiver-key", required=True, help="the receiver's .pub")
    args = ap.parse_args(argv)

    models = create_models()
    tracker = FaceTracker(*models)
    with open_source(args.input) as source:
        frames = iter(source)
        first = next((f for f in frames if tracker.update(f.image, f.time) is not None), None)
        if first is None:
            return print(f"{args.input}: no face found", file=sys.stderr) or 1
        sender = Sender(
            args.to, load_identity(resolve_key_path(args.key)), reference=make_reference(first.image, models),
            params=QUALITY_PRESETS["medium"], width=source.width, height=source.height, fps=source.fps,
            receiver_key=load_public(args.receiver_key).curve,
        )  # fmt: skip
        with sender:
            if not sender.wait_connected(30):
                return print(f"{args.to}: no receiver", file=sys.stderr) or 1
            for frame in frames:  # capture -> track -> send
                face = tracker.update(frame.image, frame.time)
                sender.send_frame(
                    frame.index, frame.time, face.landmarks if face else None, eyes=face.eyes if face else None, image=frame.image
                )
    print(f"{sender.stats.frames_sent} frames sent, {sender.stats.total_bytes} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
