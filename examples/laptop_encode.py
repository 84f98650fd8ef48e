#!/usr/bin/env python3
"""Encode a talking-head clip into a signed keypoint stream.

    python examples/laptop_encode.py talk.mp4 talk.flk [--quality medium] [--reference face.jpg]
"""

import argparse
import sys

from facelink.codec import QUALITY_PRESETS
from facelink.errors import FaceLinkError
from facelink.pipeline import encode_file


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("input", help="video file")
    ap.add_argument("output", help="stream file (.flk)")
    ap.add_argument("--quality", default="medium", choices=sorted(QUALITY_PRESETS))
    ap.add_argument("--reference", help="reference image (default: first frame with a face)")
    args = ap.parse_args()
    try:  # signed with this machine's key (trusted locally); give identity= to sign with another
        res = encode_file(args.input, args.output, params=QUALITY_PRESETS[args.quality], reference_image=args.reference)
    except FaceLinkError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    s = res.stats
    print(f"{args.output}: {s.frames} frames, {s.kbps:.2f} kbit/s, encoder {s.fps:.0f} fps, signed by {res.signer}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
