#!/usr/bin/env python3
"""Render a signed keypoint stream back to video (optionally re-posed or driving another face).

    python examples/laptop_decode.py talk.flk out.mp4
    python examples/laptop_decode.py talk.flk turned.mp4 --pose 20,-5,0      # free view
    python examples/laptop_decode.py talk.flk avatar.mp4 --target cartoon.png # motion transfer
"""

import argparse
import sys

from facelink.errors import FaceLinkError
from facelink.receiver import parse_pose
from facelink.pipeline import decode_file


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("input", help="stream file (.flk)")
    ap.add_argument("output", help="video file (.mp4)")
    ap.add_argument("--pose", default="0,0,0", help="YAW,PITCH,ROLL degrees added to the head pose")
    ap.add_argument("--target", help="another face to drive (photo, painting, cartoon)")
    args = ap.parse_args()
    try:
        res = decode_file(args.input, args.output, reference_image=args.target, pose_offset=parse_pose(args.pose))
    except (FaceLinkError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"{args.output}: {res.frames} frames {res.width}x{res.height}, generator {res.as_dict()['generator_fps']} fps")
    print(f"{res.provenance.manifest_path}: signed provenance manifest" if res.provenance else "no provenance manifest")
    return 0


if __name__ == "__main__":
    sys.exit(main())
