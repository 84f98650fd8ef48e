#!/usr/bin/env python3
"""Jetson sender: a CSI/USB camera (or RTSP stream, or file) -> signed face keypoints -> a receiver.

    python3 examples/jetson_sender.py csi://0 tcp://kiosk:5555 --key robot --receiver-key kiosk.pub
    python3 examples/jetson_sender.py /dev/video0 tcp://kiosk:5555 --key robot --receiver-key kiosk.pub \\
        --input-width=1280 --input-height=720 --input-rate=30
    python3 examples/jetson_sender.py rtsp://cam.local:8554/live tcp://kiosk:5555 --key robot --receiver-key kiosk.pub

Capture goes through jetson-utils' videoSource (hardware ISP and decoders) when it imports,
the face models through TensorRT with INT8 engines (built once, cached).  A few kbit/s leave
the board instead of a video stream.  One status line shows capture fps and kbit/s; Ctrl-C
ends the call cleanly (End packet + final seal).  Set-up: docs/jetson.md.
"""

import argparse
import sys

from facelink.cli import main as facelink


def build_argv(args) -> list[str]:
    argv = ["send", args.input, "--to", args.output, "--io-backend", args.io_backend, "--backend", args.backend]
    for name in ("key", "receiver_key", "trust", "reference", "quality", "kbps", "input_width", "input_height", "input_rate", "mic"):
        value = getattr(args, name)
        if value is not None:
            argv += [f"--{name.replace('_', '-')}", str(value)]
    return argv + (["--no-curve"] if args.no_curve else []) + (["--json"] if args.json else [])


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n", 2)[2])
    ap.add_argument("input", nargs="?", default="csi://0", help="camera or stream URI (default: csi://0)")
    ap.add_argument("output", help="the receiver's endpoint, tcp://HOST:PORT")
    ap.add_argument("--key", help="this device's key (name in $FACELINK_HOME/keys or a .key path)")
    ap.add_argument("--receiver-key", help="the receiver's .pub (CurveZMQ)")
    ap.add_argument("--trust", help="trust directory (to find --receiver-key by name)")
    ap.add_argument("--no-curve", action="store_true", help="no link encryption (lab use only)")
    ap.add_argument("--reference", help="reference image (default: the first frame with a face)")
    ap.add_argument("--quality", choices=["low", "medium", "high"], help="rate preset")
    ap.add_argument("--kbps", type=float, help="target rate instead of a preset")
    ap.add_argument("--input-width", type=int, help="capture width (e.g. 1280)")
    ap.add_argument("--input-height", type=int, help="capture height (e.g. 720)")
    ap.add_argument("--input-rate", type=float, help="capture frame rate")
    ap.add_argument("--io-backend", default="auto", choices=["auto", "jetson", "opencv", "pyav"], help="capture backend (default: jetson-utils when it imports)")
    ap.add_argument("--backend", default="auto", choices=["auto", "tensorrt", "onnxruntime"], help="inference backend (default: TensorRT when it imports)")
    ap.add_argument("--mic", help="microphone to send with the camera (a USB mic: alsa:hw:1; alsa:default)")
    ap.add_argument("--json", action="store_true", help="print the statistics as JSON at the end")
    return ap


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    return facelink(build_argv(args))


if __name__ == "__main__":
    sys.exit(main())
