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

from facelink.cli import main as facelink


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("video")
    ap.add_argument("target")
    ap.add_argument("output")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        stream = str(Path(tmp) / "s.flk")
        rc = facelink(["encode", args.video, "-o", stream])
        return rc or facelink(["decode", stream, "-o", args.output, "--reference", args.target])


if __name__ == "__main__":
    sys.exit(main())
