#!/usr/bin/env python3
"""Jetson receiver / kiosk: verify a signed keypoint stream and show the re-synthesised face.

    python3 examples/jetson_receiver.py tcp://*:5555 --key kiosk                   # full-screen kiosk on display://0
    python3 examples/jetson_receiver.py tcp://*:5555 --key kiosk --windowed        # a normal window
    python3 examples/jetson_receiver.py tcp://*:5555 rtsp://@:8554/face --key kiosk --headless   # serve RTSP, no screen
    python3 examples/jetson_receiver.py tcp://*:5555 call.mp4 --key kiosk --headless            # record the call
    python3 examples/jetson_receiver.py tcp://*:5555 --key kiosk --loop            # a kiosk: wait for the next call

Output goes through jetson-utils' videoOutput (OpenGL window, GStreamer encoders) when it
imports, else OpenCV for windows and PyAV for files.  Every shown frame carries the FaceLink
provenance watermark.  On an Orin Nano (no hardware video encoder) RTSP/WebRTC outputs use
the CPU encoder automatically; --output-encoder overrides.  Esc or q closes an OpenCV
window; closing the window ends the call.
"""

import argparse
import signal
import sys

from facelink.cli import main as facelink


def build_argv(args) -> list[str]:
    output = args.output or (None if args.headless else "display://0")
    if args.headless and output is not None and output.startswith("display://"):
        raise SystemExit("jetson_receiver.py: --headless and a display:// output contradict each other")
    argv = ["receive", "--listen", args.input, "--io-backend", args.io_backend, "--backend", args.backend]
    if output is not None:
        argv += ["-o", output] + ([] if args.windowed or not output.startswith("display://") else ["--fullscreen"])
    for name in ("key", "trust", "output_encoder", "output_codec", "bitrate", "timeout", "speaker"):
        value = getattr(args, name)
        if value is not None:
            argv += [f"--{name.replace('_', '-')}", str(value)]
    flags = [("no_curve", "--no-curve"), ("insecure", "--insecure"), ("every_frame", "--every-frame"), ("json", "--json")]
    return argv + [flag for name, flag in flags if getattr(args, name)]


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n", 2)[2])
    ap.add_argument("input", help="endpoint to listen on, tcp://*:PORT")
    ap.add_argument("output", nargs="?", help="display://0 (default), a file, rtsp://@:8554/NAME, webrtc://@:8554/NAME, rtp://HOST:PORT")
    ap.add_argument("--headless", action="store_true", help="no window (give a file or stream output, or only verify)")
    ap.add_argument("--windowed", action="store_true", help="a window instead of the full-screen kiosk view")
    ap.add_argument("--loop", action="store_true", help="after a call ends, wait for the next one (Ctrl-C to stop)")
    ap.add_argument("--key", help="this device's key (name in $FACELINK_HOME/keys or a .key path)")
    ap.add_argument("--trust", help="trust directory of sender .pub files (default: $FACELINK_HOME/trust)")
    ap.add_argument("--no-curve", action="store_true", help="no link encryption (lab use only)")
    ap.add_argument("--insecure", action="store_true", help="accept unsigned or untrusted streams (flagged)")
    ap.add_argument("--every-frame", action="store_true", help="render every frame (recordings) instead of the newest")
    ap.add_argument("--output-encoder", choices=["cpu", "v4l2", "omx"], help="jetson-utils encoder (default: cpu on Orin Nano)")
    ap.add_argument("--output-codec", choices=["h264", "h265", "vp8", "vp9", "mjpeg"], help="stream codec (default h264)")
    ap.add_argument("--bitrate", type=int, help="stream bit rate in bit/s (default 4000000)")
    ap.add_argument("--timeout", type=float, help="stop after S seconds")
    ap.add_argument("--speaker", help="play the caller's sound here (alsa:default; a USB speaker alsa:hw:1)")
    ap.add_argument("--io-backend", default="auto", choices=["auto", "jetson", "opencv", "pyav"], help="output backend (default: jetson-utils when it imports)")
    ap.add_argument("--backend", default="auto", choices=["auto", "tensorrt", "onnxruntime"], help="inference backend for the generator")
    ap.add_argument("--json", action="store_true", help="print the statistics as JSON after each call")
    return ap


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    argv = build_argv(args)
    stop: list[bool] = []

    def on_sigint(signum, frame):  # the receiver ends its call cleanly on Ctrl-C; remember it to leave the loop
        stop.append(True)
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, on_sigint)
    while True:
        code = facelink(argv)
        if stop or not args.loop or code not in (0, 3):  # 3: that stream failed verification; wait for the next
            return code


if __name__ == "__main__":
    sys.exit(main())
