#!/usr/bin/env python3
"""Raspberry Pi sender: the Pi camera (picamera2) -> signed face keypoints -> a receiver.

    python3 examples/pi_sender.py picam://0 tcp://kiosk:5555 --key pi --receiver-key kiosk.pub
    python3 examples/pi_sender.py /dev/video0 tcp://kiosk:5555 --key pi --receiver-key kiosk.pub   # a USB webcam

picamera2 comes from Raspberry Pi OS (sudo apt install python3-picamera2): create the virtual
environment with --system-site-packages.  The camera is opened at 640x480 by default, which is
plenty for face tracking and keeps the Pi's CPU (ONNX Runtime runs the face models) at
camera rate; picamera2's "RGB888" frames (B,G,R in memory) are converted to RGB for you.
"""

import argparse
import sys

from facelink.cli import main as facelink


def build_argv(args) -> list[str]:
    argv = ["send", args.input, "--to", args.output, "--io-backend", args.io_backend, "--backend", "onnxruntime"]
    argv += ["--input-width", str(args.input_width), "--input-height", str(args.input_height), "--input-rate", str(args.input_rate)]
    for name in ("key", "receiver_key", "trust", "reference", "quality", "kbps", "mic"):
        value = getattr(args, name)
        if value is not None:
            argv += [f"--{name.replace('_', '-')}", str(value)]
    return argv + (["--no-curve"] if args.no_curve else []) + (["--json"] if args.json else [])


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n", 2)[2])
    ap.add_argument("input", nargs="?", default="picam://0", help="camera URI (default: picam://0, the first Pi camera)")
    ap.add_argument("output", help="the receiver's endpoint, tcp://HOST:PORT")
    ap.add_argument("--key", help="this device's key (name in $FACELINK_HOME/keys or a .key path)")
    ap.add_argument("--receiver-key", help="the receiver's .pub (CurveZMQ)")
    ap.add_argument("--trust", help="trust directory (to find --receiver-key by name)")
    ap.add_argument("--no-curve", action="store_true", help="no link encryption (lab use only)")
    ap.add_argument("--reference", help="reference image (default: the first frame with a face)")
    ap.add_argument("--quality", choices=["low", "medium", "high"], help="rate preset")
    ap.add_argument("--kbps", type=float, help="target rate instead of a preset")
    ap.add_argument("--input-width", type=int, default=640, help="capture width (default 640)")
    ap.add_argument("--input-height", type=int, default=480, help="capture height (default 480)")
    ap.add_argument("--input-rate", type=float, default=30.0, help="capture frame rate (default 30)")
    ap.add_argument("--io-backend", default="auto", choices=["auto", "picamera2", "opencv", "pyav"], help="capture backend (default: picamera2 for picam://)")
    ap.add_argument("--mic", help="microphone to send with the camera (a USB mic: alsa:hw:1; alsa:default)")
    ap.add_argument("--json", action="store_true", help="print the statistics as JSON at the end")
    return ap


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    return facelink(build_argv(args))


if __name__ == "__main__":
    sys.exit(main())
