"""``facelink receive --listen tcp://*:PORT``: verify and decode a live stream, optionally render it to a file."""

from __future__ import annotations

import os
import sys
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from ._common import add_backend_argument, emit_json
from ._send import StatusLine, add_transport_arguments, load_device_key


def register(sub) -> None:
    p = sub.add_parser("receive", help="receive, verify and decode a signed keypoint stream over ZeroMQ")
    p.add_argument("--listen", required=True, metavar="tcp://*:PORT", help="endpoint to listen on")
    add_transport_arguments(p, sender=False)
    p.add_argument("-o", "--output", metavar="OUTPUT", help="render to this video file (.mp4); without it, verify and decode only")
    p.add_argument(
        "--every-frame",
        action="store_true",
        help="render every received frame (a complete recording) instead of only the newest (lowest latency)",
    )
    p.add_argument("--insecure", action="store_true", help="accept unsigned streams and untrusted or revoked signers (flagged)")
    p.add_argument("--timeout", type=float, metavar="S", help="stop after S seconds (default: run until the session ends)")
    p.add_argument("--max-age", type=float, metavar="S", help="refuse streams whose seals were signed more than S s ago (replay guard; needs synchronised clocks)")
    p.add_argument("--refcache", metavar="DIR", help="reference cache directory (default: $FACELINK_HOME/refcache)")
    add_backend_argument(p)
    p.add_argument("--json", action="store_true", help="print one JSON object with the statistics")
    p.set_defaults(func=run)


def _usage(msg: str):
    from . import _UsageError

    return _UsageError(f"facelink receive: {msg}")


class _Output:
    """The video file: written beside its final name, renamed into place only if frames were written."""

    def __init__(self, path: str) -> None:
        from ..errors import InputError

        self.path = Path(path)
        if self.path.is_dir():
            raise InputError(f"{self.path}: is a directory")
        if not self.path.parent.is_dir():
            raise InputError(f"{self.path.parent}: output directory does not exist")
        self.tmp = self.path.parent / f".{self.path.name}.partial{self.path.suffix}"
        self.writer: Any = None
        self.size = (0, 0)
        self.frames = 0

    def write(self, image: np.ndarray, t: float, fps: Fraction) -> None:
        from ..io import VideoWriter

        if self.writer is None:
            self.writer = VideoWriter(str(self.tmp), image.shape[1], image.shape[0], fps)
            self.size = (image.shape[1], image.shape[0])
        if (image.shape[1], image.shape[0]) != self.size:
            from PIL import Image

            image = np.asarray(Image.fromarray(image).resize(self.size))
        self.writer.write(image, t)
        self.frames += 1

    def finish(self, keep: bool) -> bool:
        """Close; move into place when ``keep`` and anything was written.  Returns whether it was."""
        if self.writer is not None:
            self.writer.close()
            self.writer = None
        if keep and self.frames:
            os.replace(self.tmp, self.path)
            return True
        self.tmp.unlink(missing_ok=True)
        return False


def run(args) -> int:
    from ..errors import FaceLinkError, InputError, VerificationError
    from ..security import TrustStore, default_trust_dir
    from ..receiver import SessionRenderer
    from ..transport import Receiver, ReferenceCache, check_endpoint

    endpoint = check_endpoint(args.listen, bind=True)
    if args.timeout is not None and not args.timeout > 0:
        raise _usage("--timeout must be > 0 seconds")
    if args.max_age is not None and not args.max_age > 0:
        raise _usage("--max-age must be > 0 seconds")
    if args.output and args.output.startswith("display://"):
        raise InputError(f"{args.output}: no display output on this machine yet; write a file instead (-o OUT.mp4)")
    if args.output and "://" in args.output:
        raise InputError(f"{args.output}: unsupported output; give a file path such as OUT.mp4")
    identity = None if args.no_curve and args.key is None else load_device_key(args.key, "receiver")
    trust_dir = Path(args.trust).expanduser() if args.trust else default_trust_dir()
    watch: str | None = None
    store: TrustStore | None = TrustStore()
    if trust_dir.exists() or not args.insecure:
        store = TrustStore.load(trust_dir)  # fail early, with the reason, on a missing or unsafe directory
        watch = str(trust_dir)
    if args.no_curve:
        print("facelink: warning: --no-curve: the link is neither encrypted nor authenticated (lab use only)", file=sys.stderr)

    receiver = Receiver(
        endpoint, identity, curve=not args.no_curve, insecure=args.insecure, max_age=args.max_age,
        refcache=ReferenceCache(args.refcache), trust=store, trust_dir=watch,
    )  # fmt: skip
    output = _Output(args.output) if args.output else None
    bound = receiver.open()
    print(f"facelink: listening on {bound}" + (f" as {identity.fingerprint}" if identity else ""), file=sys.stderr)
    rx_key = identity.public.ed25519 if identity is not None else None  # None: this machine's local key
    renderer = SessionRenderer(backend=args.backend, receiver_key=rx_key) if args.output else None
    status = StatusLine()
    out_frames = stale = 0
    latencies: list[float] = []
    window: list[tuple[float, int, int]] = []  # (time, frames, bytes) samples for the status line
    t0 = time.monotonic()
    ended_at: float | None = None
    interrupted = False
    kept = False
    try:
        while True:
            now = time.monotonic()
            if args.timeout is not None and now - t0 >= args.timeout:
                break
            results = receiver.poll(0.05)
            core = receiver.core
            if core.refusals and not args.insecure:
                raise VerificationError(core.refusals[0])
            frames = [r.delivery for r in results if r.delivery.frame is not None]
            for d in frames:
                if d.latency is not None:
                    latencies.append(d.latency)
            del latencies[:-2000]
            if output is not None and core.ready:
                dec = core.session.decoder  # type: ignore[union-attr]
                hdr = dec.header
                if renderer is not None and hdr is not None:
                    renderer.prepare(dec)
                    todo = frames if args.every_frame else frames[-1:]  # newest frame wins
                    stale += len(frames) - len(todo)
                    fps = Fraction(hdr.fps_num, hdr.fps_den)
                    for d in todo:
                        f = d.frame
                        if f is not None and d.session_id == hdr.session_id and f.time == f.time:  # NaN: not decodable
                            output.write(renderer.render(dec, f).image, f.time, fps)
                            out_frames += 1
            st = core.stats()
            v = st.verify
            if core.session is not None and core.session.ended and ended_at is None:
                ended_at = now
            if v is not None and v.end_verified or ended_at is not None and now - ended_at > 1.0:
                break
            if status.due():
                window.append((now, st.frames, st.bytes))
                window[:] = [w for w in window if now - w[0] <= 2.0]
                status.show(_status(window, latencies, v))
        kept = output.finish(keep=True) if output is not None else False
    except KeyboardInterrupt:
        interrupted = True
        kept = output.finish(keep=True) if output is not None else False
    finally:
        if output is not None and output.writer is not None:
            output.finish(keep=False)
        stats = receiver.close()
        status.close()
    v = stats.verify
    out = stats.as_dict()
    lat = np.array(latencies) * 1000 if latencies else None
    out.update(
        endpoint=bound,
        curve=not args.no_curve,
        receiver=identity.fingerprint if identity else None,
        output=args.output if kept else None,
        frames_written=out_frames,
        frames_not_rendered=stale,
        latency_ms_p50=round(float(np.percentile(lat, 50)), 2) if lat is not None else None,
        latency_ms_p99=round(float(np.percentile(lat, 99)), 2) if lat is not None else None,
        interrupted=interrupted,
    )
    if args.json:
        emit_json(out)
    else:
        if v is None:
            print(f"facelink: {bound}: no session received", file=sys.stderr)
        else:
            print(
                f"session {(v.session_id or '')[:16]} from {v.signer} ({v.signer_name or 'untrusted'}): {stats.frames} frames, "
                f"{v.spans_verified} spans verified, {v.spans_incomplete} incomplete, {v.spans_mismatch} mismatched, "
                f"{v.seals_rejected} seals rejected" + (f"; {out_frames} frames written to {args.output}" if args.output else ""),
                file=sys.stderr,
            )
            if v.first_problem:
                print(f"facelink: first problem: {v.first_problem}", file=sys.stderr)
    if v is None:
        if interrupted:
            return 0
        raise FaceLinkError(f"{bound}: no session received" + (f" within {args.timeout:g} s" if args.timeout else ""))
    if v.spans_mismatch or v.seals_rejected or v.foreign_headers:
        return 3
    return 0


def _status(window, latencies, v) -> str:
    if len(window) >= 2:
        (ta, fa, ba), (tb, fb, bb) = window[0], window[-1]
        dt = max(tb - ta, 1e-9)
        fps, kbps = (fb - fa) / dt, 8 * (bb - ba) / dt / 1000
    else:
        fps = kbps = 0.0
    lat = f"{1000 * float(np.median(latencies[-60:])):6.1f} ms" if latencies else "   n/a"
    seals = f"seals {v.seals_accepted} ok/{v.seals_rejected} bad" if v else "no session yet"
    spans = f"spans {v.spans_verified} verified/{v.spans_incomplete + v.spans_mismatch} not" if v else ""
    return f"recv {fps:5.1f} fps {kbps:6.2f} kbps latency {lat}  {seals}  {spans}"
