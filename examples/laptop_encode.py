#!/usr/bin/env python3
"""Encode a talking-head clip into a keypoint stream.

    python examples/laptop_encode.py talk.mp4 talk.flk [--quality medium] [--reference face.jpg]
"""

import argparse
import sys

from facelink.bitstream import FlkWriter
from facelink.codec import QUALITY_PRESETS
from facelink.errors import FaceLinkError
from facelink.security import signer_extension
from facelink.security._local import local_identity
from facelink.security import seal_packets
from facelink.sender import encode_file


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("input", help="video file")
    ap.add_argument("output", help="stream file (.flk)")
    ap.add_argument("--quality", default="medium", choices=sorted(QUALITY_PRESETS))
    ap.add_argument("--reference", help="reference image (default: first frame with a face)")
    args = ap.parse_args()
    identity = local_identity()  # this machine's signing key, trusted locally
    packets: list[bytes] = []
    try:
        stats = encode_file(
            args.input, packets.append, params=QUALITY_PRESETS[args.quality],
            reference_image=args.reference, extensions=(signer_extension(identity),),
        )  # fmt: skip
    except FaceLinkError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    with FlkWriter(args.output) as w:
        for p in seal_packets(packets, identity):
            w.write(p)
    print(f"{args.output}: {stats.frames} frames, {stats.kbps:.2f} kbit/s, encoder {stats.fps:.0f} fps")
    return 0


if __name__ == "__main__":
    sys.exit(main())
