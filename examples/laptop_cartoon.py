#!/usr/bin/env python3
"""Drive a cartoon, painting or another person's photo with your own face from a video.

    python examples/laptop_cartoon.py me_talking.mp4 cartoon.png avatar.mp4

Encodes the clip (signed with this machine's local key), then renders the stream onto the
target image: expression and head motion are applied relative to your first frame, the
target keeps its own face shape.  The target needs a face the detector can find.
"""

import argparse
import sys
import tempfile
from pathlib import Path

from facelink.errors import FaceLinkError
from facelink.pipeline import decode_file, encode_file


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("video")
    ap.add_argument("target")
    ap.add_argument("output")
    args = ap.parse_args()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            stream = Path(tmp) / "s.flk"
            encode_file(args.video, stream)  # signed with this machine's key, which it trusts
            res = decode_file(stream, args.output, reference_image=args.target)
    except FaceLinkError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"{args.output}: {res.frames} frames {res.width}x{res.height} (the target's size)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
