"""``facelink receive --listen tcp://*:PORT``: verify and decode a live stream, optionally render it to a file."""

from __future__ import annotations

import os
import sys
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from ._common import add_backend_argument, add_refiner_argument, emit_json

#: default freshness window of ``receive --max-age`` (seconds): replayed recordings older than this are refused
DEFAULT_MAX_AGE = 300.0
from ._send import StatusLine, add_io_backend_argument, add_transport_arguments, load_device_key


def register(sub) -> None:
    p = sub.add_parser("receive", help="receive, verify and decode a signed keypoint stream over ZeroMQ")
    p.add_argument("--listen", required=True, metavar="tcp://*:PORT", help="endpoint to listen on")
    add_transport_arguments(p, sender=False)
    p.add_argument(
        "-o",
        "--output",
        metavar="OUTPUT",
        help="render to a video file (.mp4), a window (display://0) or a stream (rtsp://@:8554/NAME, webrtc://@:8554/NAME, "
        "rtp://HOST:PORT; jetson-utils); without it, verify and decode only",
    )
    add_io_backend_argument(p)
    p.add_argument("--fullscreen", action="store_true", help="a display:// window fills the screen (kiosk)")
    p.add_argument(
        "--output-encoder",
        choices=["cpu", "v4l2", "omx"],
        help="jetson-utils encoder for stream outputs (default: cpu on an Orin Nano, which has no hardware encoder; else hardware)",
    )
    p.add_argument("--output-codec", choices=["h264", "h265", "vp8", "vp9", "mjpeg"], help="codec of jetson-utils stream outputs (default: h264)")
    p.add_argument("--bitrate", type=int, metavar="BPS", help="bit rate of jetson-utils stream outputs (default: 4000000)")
    p.add_argument(
        "--every-frame",
        action="store_true",
        help="also on a display or stream output, render every received frame instead of only the newest (lowest latency); "
        "a file recording always keeps every frame",
    )
    p.add_argument(
        "--speaker", metavar="FORMAT:DEVICE",
        help="play the session's sound on this device (alsa:default; a USB speaker alsa:hw:1; null: for none)",
    )  # fmt: skip
    p.add_argument("--insecure", action="store_true", help="accept unsigned streams and untrusted or revoked signers (flagged)")
    p.add_argument("--timeout", type=float, metavar="S", help="stop after S seconds (default: run until the session ends)")
    p.add_argument(
        "--max-age", type=float, metavar="S", default=DEFAULT_MAX_AGE,
        help=f"refuse streams whose seals were signed more than S s ago (replay guard; needs clocks synchronised within S; default {DEFAULT_MAX_AGE:g}, 0 = off)",
    )  # fmt: skip
    p.add_argument("--refcache", metavar="DIR", help="reference cache directory (default: $FACELINK_HOME/refcache)")
    add_backend_argument(p)
    add_refiner_argument(p)
    p.add_argument("--eye-contact", action="store_true", help="redirect the rendered gaze at the camera (blinks and lids kept)")
    p.add_argument("--json", action="store_true", help="print one JSON object with the statistics")
    p.set_defaults(func=run)


def _usage(msg: str):
    from . import _UsageError

    return _UsageError(f"facelink receive: {msg}")


class _Output:
    """Where rendered frames go, opened at the first frame (its size is the reference's).

    A file is written beside its final name and renamed into place only if frames were
    written; a window or stream (``display://0``, ``rtsp://@:8554/NAME``) is written live.
    """

    def __init__(self, uri: str, args) -> None:
        from ..io import parse_uri
        from ..io._capture import check_output

        self.uri = uri
        self.backend = check_output(uri, args.io_backend)  # fail now, not when the first frame arrives
        target = parse_uri(uri)
        self.is_file = target.is_file
        self.path = Path(target.location) if self.is_file else None
        self.tmp = self.path.parent / f".{self.path.name}.partial{self.path.suffix}" if self.path is not None else None
        self.args = args
        self.writer: Any = None
        self.size = (0, 0)
        self.frames = 0

    @property
    def is_open(self) -> bool:
        """False once a window was closed (Esc, q, the close button) or a stream stopped."""
        return self.writer is None or self.writer.is_open

    def write(self, image: np.ndarray, t: float, fps: Fraction, audio: bool = False) -> None:
        """One frame; ``audio``: the session carries sound (a file output then gets a track)."""
        from ..audio import RATE
        from ..io import open_output

        if self.writer is None:
            a = self.args
            self.writer = open_output(
                str(self.tmp) if self.is_file else self.uri, image.shape[1], image.shape[0], fps,
                backend=a.io_backend, encoder=a.output_encoder, codec=a.output_codec,
                bitrate=a.bitrate, fullscreen=a.fullscreen, title="FaceLink receiver",
                audio_rate=RATE if audio and self.is_file else None,
            )  # fmt: skip
            self.size = (image.shape[1], image.shape[0])
        if (image.shape[1], image.shape[0]) != self.size:
            from PIL import Image

            image = np.asarray(Image.fromarray(image).resize(self.size))
        self.writer.write(image, t)
        self.frames += 1

    def write_audio(self, chunks) -> None:
        """Decoded sound (:class:`~facelink.audio.AudioChunk` s) under the frames, when the output takes it."""
        from ..audio import RATE

        if self.writer is None or not getattr(self.writer, "has_audio", False):
            return
        for c in chunks:
            self.writer.write_audio(c.pcm, c.start / RATE)

    def finish(self, keep: bool) -> bool:
        """Close; move a file into place when ``keep`` and anything was written.  Returns whether it was."""
        if self.writer is not None:
            self.writer.close()
            self.writer = None
        if not self.is_file:
            return bool(self.frames)
        if keep and self.frames:
            os.replace(self.tmp, self.path)  # type: ignore[arg-type]
            return True
        self.tmp.unlink(missing_ok=True)  # type: ignore[union-attr]
        return False


def run(args) -> int:
    from ..provenance import write_receive_provenance
    from ..receiver import SessionRenderer
    from ..transport import Receiver, ReferenceCache

    endpoint, max_age, output, identity, store, watch = _setup(args)
    speaker = None
    if args.speaker:
        from ..audio import Speaker

        speaker = Speaker(args.speaker)  # AudioError: a one-line error before anything listens
    receiver = Receiver(
        endpoint, identity, curve=not args.no_curve, insecure=args.insecure, max_age=max_age,
        refcache=ReferenceCache(args.refcache), trust=store, trust_dir=watch,
    )  # fmt: skip
    bound = receiver.open()
    print(f"facelink: listening on {bound}" + (f" as {identity.fingerprint}" if identity else ""), file=sys.stderr)
    rx_key = identity.public.ed25519 if identity is not None else None  # None: this machine's local key
    renderer = (
        SessionRenderer(backend=args.backend, receiver_key=rx_key, refiner=args.refiner, eye_contact=args.eye_contact)
        if args.output
        else None
    )
    status = StatusLine()
    out_frames = stale = 0
    latencies: list[float] = []
    window: list[tuple[float, int, int]] = []  # (time, frames, bytes) samples for the status line
    t0 = shown = time.monotonic()
    ended_at: float | None = None
    interrupted = False
    closed = False
    kept = False
    header = None  # the current session's header: its tag is the session id verify shows
    sound = _LiveSound()
    reported = 0  # refusals printed so far
    try:
        while True:
            now = time.monotonic()
            if args.timeout is not None and now - t0 >= args.timeout:
                break
            results = receiver.poll(0.05)
            if renderer is not None:
                renderer.log.observe(results)  # accepted seals, for the provenance manifest
            core = receiver.core
            if core.session is not None:
                header = core.session.header
            if core.refused > reported:  # a connection was refused: say so, keep serving the others
                new = core.refused - reported
                for msg in core.refusals[-min(new, len(core.refusals)) :]:
                    print(f"facelink: warning: refused a connection: {msg}", file=sys.stderr)
                reported = core.refused
            frames = [r.delivery for r in results if r.delivery.frame is not None]
            for d in frames:
                if d.latency is not None:
                    latencies.append(d.latency)
            del latencies[:-2000]
            if output is not None and renderer is not None and core.ready:
                written, skipped = _render(core.session.decoder, frames, renderer, output, args.every_frame)  # type: ignore[union-attr]
                out_frames += written
                stale += skipped
            chunks = sound.feed(results, core.session) if (output is not None or speaker is not None) and core.ready else []
            if output is not None and chunks:
                output.write_audio(chunks)
            if speaker is not None:
                for c in chunks:
                    speaker.play(c.pcm)
            if output is not None and renderer is not None and core.ready and not output.is_open:
                closed = True  # the window was closed: the viewer ended the call
                break
            st = core.stats()
            v = st.verify
            if core.session is not None and core.session.ended and ended_at is None:
                ended_at = now
            if v is not None and v.end_verified or ended_at is not None and now - ended_at > 1.0:
                break
            if status.due() or output is not None and not output.is_file and out_frames and now - shown > 1.0:
                _sample(window, now, st.frames, st.bytes)
                text = _status(window, latencies, v)
                status.show(text)
                if output is not None and output.writer is not None:
                    output.writer.set_status(text)  # a window's title bar
                shown = now
        kept = output.finish(keep=True) if output is not None else False
    except KeyboardInterrupt:
        interrupted = True
        kept = output.finish(keep=True) if output is not None else False
    finally:
        if output is not None and output.writer is not None:
            output.finish(keep=False)
        stats = receiver.close()
        status.close()
        if speaker is not None:
            speaker.close()
    prov = write_receive_provenance(args.output if kept else None, renderer, identity, stats)
    lat = np.array(latencies) * 1000 if latencies else None
    out = stats.as_dict()
    out.update(
        endpoint=bound,
        curve=not args.no_curve,
        receiver=identity.fingerprint if identity else None,
        output=args.output if kept else None,
        frames_written=out_frames,
        frames_not_rendered=stale,
        sound_played_s=round(speaker.played / 48000, 3) if speaker is not None else None,
        speaker_error=speaker.error if speaker is not None else None,
        latency_ms_p50=round(float(np.percentile(lat, 50)), 2) if lat is not None else None,
        latency_ms_p99=round(float(np.percentile(lat, 99)), 2) if lat is not None else None,
        interrupted=interrupted,
        output_closed=closed,
        provenance=prov.as_dict() if prov else None,
        session=_session_tag(header) if header is not None else None,
    )
    if prov is not None and prov.c2pa_skipped:
        print(f"facelink: warning: C2PA Content Credentials not embedded: {prov.c2pa_skipped}", file=sys.stderr)
    return _finish(args, out, stats, receiver.core.refused, interrupted or closed)


def _setup(args):
    """Check the arguments and open what must exist before anything listens: the output, the
    device key, the trust store.  Returns (endpoint, max_age, output, identity, store, watched dir)."""
    from ..security import TrustStore, default_trust_dir
    from ..transport import check_endpoint

    endpoint = check_endpoint(args.listen, bind=True)
    if args.timeout is not None and not args.timeout > 0:
        raise _usage("--timeout must be > 0 seconds")
    if args.max_age is not None and not args.max_age >= 0:
        raise _usage("--max-age must be >= 0 seconds (0: off)")
    max_age = args.max_age or None
    if args.bitrate is not None and not args.bitrate > 0:
        raise _usage("--bitrate must be positive")
    output = _Output(args.output, args) if args.output else None  # checks the output before anything listens
    identity = None if args.no_curve and args.key is None else load_device_key(args.key, "receiver")
    trust_dir = Path(args.trust).expanduser() if args.trust else default_trust_dir()
    watch: str | None = None
    store: TrustStore | None = TrustStore()
    if trust_dir.exists() or not args.insecure:
        store = TrustStore.load(trust_dir)  # fail early, with the reason, on a missing or unsafe directory
        watch = str(trust_dir)
    if args.no_curve:
        print("facelink: warning: --no-curve: the link is neither encrypted nor authenticated (lab use only)", file=sys.stderr)
    return endpoint, max_age, output, identity, store, watch


class _LiveSound:
    """The active session's verified AUDIO packets, decoded in order (losses concealed by Opus)."""

    def __init__(self) -> None:
        from ..audio import SessionSound

        self._sound = SessionSound()

    def feed(self, results, session) -> list:
        if session is None:
            return []
        out = []
        for r in results:
            d = r.delivery
            if d.session_id == session.session_id and d.verdict is not None:
                out += self._sound.feed(session.header, d.packet)
        return out


def _render(dec, frames: list, renderer, output, every_frame: bool) -> tuple[int, int]:
    """Render the decoded frames of a poll (the receiver decoded each packet once) to the
    output: every frame for a recording, the newest for a display.  (written, not rendered)."""
    hdr = dec.header
    if hdr is None:
        return 0, 0
    renderer.prepare(dec)
    todo = frames if every_frame or output.is_file else frames[-1:]  # a recording is a record of every frame
    fps = Fraction(hdr.fps_num, hdr.fps_den)
    written = 0
    for d in todo:
        f = d.frame
        if f is not None and d.session_id == hdr.session_id and f.decodable:
            output.write(renderer.render(dec, f).image, f.time, fps, audio=hdr.audio is not None)
            written += 1
    return written, len(frames) - len(todo)


def _finish(args, out: dict, stats, refused: int, stopped: bool) -> int:
    """Print the summary (or the JSON object) and choose the exit code."""
    from ..errors import FaceLinkError, VerificationError

    v = stats.verify
    bound = out["endpoint"]
    if args.json:
        emit_json(out)
    elif v is None:
        print(f"facelink: {bound}: no session received", file=sys.stderr)
    else:
        print(
            f"session {out['session'] or (v.session_id or '')[:16]} from {v.signer} ({v.signer_name or 'untrusted'}): {stats.frames} frames, "
            f"{v.spans_verified} spans verified, {v.spans_incomplete} incomplete, {v.spans_mismatch} mismatched, "
            f"{v.seals_rejected} seals rejected" + (f"; {out['frames_written']} frames written to {args.output}" if args.output else ""),
            file=sys.stderr,
        )
        if v.first_problem:
            print(f"facelink: first problem: {v.first_problem}", file=sys.stderr)
    if v is None:
        if stopped:
            return 0
        if stats.refusals:
            raise VerificationError(f"{bound}: no session accepted; {refused} connection(s) refused (last: {stats.refusals[-1]})")
        raise FaceLinkError(f"{bound}: no session received" + (f" within {args.timeout:g} s" if args.timeout else ""))
    if v.spans_mismatch or v.seals_rejected or v.foreign_headers or stats.refusals:
        return 3
    return 0


def _sample(window: list, now: float, frames: int, nbytes: int, span: float = 2.0) -> None:
    """Add a (time, frames, bytes) sample; keep the last ``span`` s, but never fewer than two
    samples: a loop slowed by rendering, or a status line every 5 s, must not read 0 fps."""
    window.append((now, frames, nbytes))
    while len(window) > 2 and now - window[1][0] >= span:
        window.pop(0)


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


def _session_tag(header) -> str:
    from ..pipeline import session_tag_hex

    return session_tag_hex(header)
