#!/usr/bin/env python3
"""Free view: the same stream rendered from several head angles side by side (eye-contact demo).

    python examples/laptop_repose.py talk.flk grid.mp4 [--yaw 25] [--pitch 10]
"""

import argparse
import sys
from fractions import Fraction

import numpy as np

from facelink.bitstream import iter_flk
from facelink.codec import StreamDecoder
from facelink.io import VideoWriter
from facelink.receiver import SessionRenderer
from facelink.security import TrustStore, default_trust_dir, iter_verified


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("input")
    ap.add_argument("output")
    ap.add_argument("--yaw", type=float, default=25.0)
    ap.add_argument("--pitch", type=float, default=10.0)
    args = ap.parse_args()
    views = [(-args.yaw, 0.0, 0.0), (0.0, 0.0, 0.0), (args.yaw, 0.0, 0.0), (0.0, -args.pitch, 0.0)]
    decoder = StreamDecoder()  # each packet is verified and decoded once, then rendered from every angle
    renderers = [SessionRenderer(pose_offset=v) for v in views]
    writer = None
    for packet in iter_verified(iter_flk(args.input), TrustStore.load(default_trust_dir())):
        frame = decoder.feed(packet)
        if frame is None or not decoder.ready:
            continue
        shown = [r.render(decoder, frame) for r in renderers]
        row = np.concatenate([s.image for s in shown], axis=1)
        if writer is None:
            h = decoder.header
            writer = VideoWriter(args.output, row.shape[1], row.shape[0], Fraction(h.fps_num, h.fps_den))
        writer.write(row, frame.time)
    if writer is None:
        print("error: no frames in the stream", file=sys.stderr)
        return 1
    writer.close()
    print(f"{args.output}: views {views}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
