#!/usr/bin/env python3
"""Check a clip for the FaceLink provenance watermark and print the verdict.

    python examples/verify_clip.py received.mp4
    python examples/verify_clip.py rtsp://kiosk:8554/face --max-frames 300   # a live stream, too

Every frame a FaceLink receiver generates carries an invisible mark binding it to the signed
session and the receiver's key; it survives re-encoding and cropping.  Exit status 0 whenever
the analysis ran (whatever it found), 1 when the clip cannot be read.
"""

import argparse
import sys
import time

from facelink.errors import FaceLinkError
from facelink.io import open_source
from facelink.watermark import MAX_FRAMES, MIN_FRAMES, MarkKey, WatermarkDetector


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("input", help="video file or stream URI")
    ap.add_argument("--mark-key", default="public", help="hex of a per-deployment mark key, or 'public' (default)")
    ap.add_argument("--max-frames", type=int, default=MAX_FRAMES, help=f"analyse at most N frames (default {MAX_FRAMES})")
    args = ap.parse_args(argv)
    if args.max_frames < MIN_FRAMES:
        ap.error(f"--max-frames must be at least {MIN_FRAMES}")
    try:
        detector = WatermarkDetector(MarkKey.from_hex(args.mark_key), max_frames=args.max_frames)
        t0 = time.perf_counter()
        with open_source(args.input) as source:  # capture -> analyse, until the detector has enough
            for frame in source:
                detector.add(frame.image)
                if detector.full:
                    break
        result = detector.result()
    except (FaceLinkError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    fps = result.frames_analyzed / max(time.perf_counter() - t0, 1e-9)
    if result.synthetic:
        who = f"session {result.as_dict()['session']}, receiver {result.as_dict()['receiver']}" if result.payload_bits_ok else "payload not recovered"
        print(f"{args.input}: SYNTHETIC - FaceLink mark found (p = {result.p_value:.1e}); {who}")
    else:
        p = "n/a" if result.p_value is None else f"{result.p_value:.2g}"
        print(f"{args.input}: no FaceLink mark found (p = {p})" + (f": {result.reason}" if result.reason else ""))
    print(f"{result.frames_analyzed} frames analysed ({result.frames_marked} marked) at {fps:.0f} fps", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
