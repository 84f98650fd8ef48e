"""``facelink send INPUT --to tcp://HOST:PORT --key KEY``: track a face and stream signed keypoints live."""

from __future__ import annotations

import os
import sys
import time

from ._common import add_backend_argument, emit_json
from ._encode import add_audio_arguments, add_rate_arguments, add_reference_arguments, audio_kbps, codec_params, reference_options


def add_transport_arguments(p, *, sender: bool) -> None:
    """Arguments both link ends share: identity key, CurveZMQ switch, trust directory."""
    p.add_argument(
        "--key", metavar="KEY", help="this device's identity: a NAME (looked up as $FACELINK_HOME/keys/NAME.key) or a .key path"
    )
    p.add_argument(
        "--no-curve",
        action="store_true",
        help="send/receive WITHOUT CurveZMQ encryption and link authentication (lab use only)",
    )
    if sender:
        p.add_argument(
            "--receiver-key",
            metavar="PUB",
            help="the receiver's public key (needed with CurveZMQ): a .pub path as given, or a NAME looked up in "
            "$FACELINK_HOME/keys (NAME.pub, NAME.key) first, then by name or fingerprint in the trust directory",
        )
    p.add_argument("--trust", metavar="TRUSTDIR", help="trust directory (default: $FACELINK_HOME/trust)")


class StatusLine:
    """One status line on stderr: on a terminal (or with FACELINK_PROGRESS=1) updated in place
    every ``every`` s; otherwise (a log, a service) one plain line every ``plain_every`` s."""

    def __init__(self, enabled: bool | None = None, every: float = 0.5, plain_every: float = 5.0) -> None:
        tty = sys.stderr.isatty() or os.environ.get("FACELINK_PROGRESS") == "1"
        if enabled is None:
            enabled = True
        self.enabled = enabled
        self.inplace = tty
        self.every = every if tty else plain_every
        self._last = time.monotonic() if not tty else 0.0
        self._shown = False

    def due(self) -> bool:
        return self.enabled and time.monotonic() - self._last >= self.every

    def show(self, text: str) -> None:
        if not self.enabled:
            return
        self._last = time.monotonic()
        if not self.inplace:
            sys.stderr.write(f"facelink: {text}\n")
            sys.stderr.flush()
            return
        self._shown = True
        sys.stderr.write("\r" + text[:150].ljust(100))
        sys.stderr.flush()

    def close(self) -> None:
        if self._shown:
            sys.stderr.write("\n")
            sys.stderr.flush()


def _usage(msg: str):
    from . import _UsageError

    return _UsageError(f"facelink send: {msg}")


def load_device_key(spec: str | None, what: str):
    """The identity named by ``--key`` (permission-checked)."""
    from ..security import load_identity, resolve_key_path

    if spec is None:
        raise _usage(f"--key KEY is required: the {what}'s identity (create one with `facelink keys generate NAME`)")
    return load_identity(resolve_key_path(spec))


def _receiver_curve_key(args) -> bytes:
    from ..security._keys import resolve_public_key

    spec = args.receiver_key
    if spec is None:
        raise _usage("--receiver-key PUB is required with CurveZMQ (the receiver's .pub); or --no-curve for lab use")
    return resolve_public_key(spec, trust_dir=args.trust).curve


def add_io_backend_argument(p) -> None:
    from ..io import CAPTURE_BACKENDS

    p.add_argument(
        "--io-backend",
        default="auto",
        choices=["auto", *CAPTURE_BACKENDS],
        help="capture/output backend (default: auto = $FACELINK_IO or jetson-utils where it imports, picamera2 for picam://, "
        "else OpenCV/PyAV; files always PyAV)",
    )


def add_capture_arguments(p) -> None:
    """The capture options jetson-inference's tools use, for cameras (files keep their own)."""
    add_io_backend_argument(p)
    p.add_argument("--input-width", type=int, metavar="W", help="request this capture width from a camera")
    p.add_argument("--input-height", type=int, metavar="H", help="request this capture height from a camera")
    p.add_argument("--input-rate", type=float, metavar="FPS", help="request this frame rate from a camera")


def open_capture(args):
    """Open ``args.input`` with the capture options (a usage error for non-positive values)."""
    from ..io import open_source

    for name in ("input_width", "input_height", "input_rate"):
        v = getattr(args, name)
        if v is not None and not v > 0:
            raise _usage(f"--{name.replace('_', '-')} must be positive")
    return open_source(args.input, backend=args.io_backend, width=args.input_width, height=args.input_height, fps=args.input_rate)


def live_reference(source, models, k: int, reference_image: str | None, **ref_opts):
    """Reference and anchor from a live source: its first frame showing a face with open eyes
    (see :func:`~facelink.face._reference.reference_from_frame`).

    ``ref_opts``: ``quality``/``max_side`` of :func:`~facelink.face._reference.make_reference`."""
    from ..errors import NoFaceError
    from ..face import FaceTracker
    from ..face._reference import pick_reference_frame, reference_from_frame

    print(f"facelink: {source.uri}: {source.width}x{source.height} via {source.backend}; waiting for a face", file=sys.stderr)
    frame, obs = pick_reference_frame(source, FaceTracker(*models))  # a face with open eyes (within 2 s)
    if frame is None:
        raise NoFaceError(f"{source.uri}: the stream ended before a face was seen")
    return reference_from_frame(frame.image, obs.raw_landmarks, models, k, reference_image, **ref_opts)

def register(sub) -> None:
    p = sub.add_parser("send", help="stream signed keypoints of a video or camera to a receiver over ZeroMQ")
    p.add_argument(
        "input",
        metavar="INPUT",
        help="video file or capture URI: /dev/video0 (or 0), csi://0, picam://0, rtsp://HOST/PATH, webrtc://@:8554/NAME, file://clip.mp4",
    )
    p.add_argument("--to", required=True, metavar="tcp://HOST:PORT", help="the receiver's endpoint")
    add_transport_arguments(p, sender=True)
    add_capture_arguments(p)
    p.add_argument("--reference", metavar="IMG", help="reference image (default: the first frame showing a face)")
    add_reference_arguments(p)
    add_rate_arguments(p)
    add_audio_arguments(p)
    p.add_argument(
        "--mic", metavar="FORMAT:DEVICE",
        help="with a camera: send this microphone's sound (alsa:default, alsa:hw:1 for a USB mic on a Jetson or Pi; "
        "lavfi:sine=frequency=440 for a test tone); a file sends its own sound track",
    )  # fmt: skip
    p.add_argument("--fast", action="store_true", help="send a file as fast as possible instead of at its frame rate")
    p.add_argument("--seal-interval", type=float, default=0.5, metavar="S", help="longest time between seals (default: 0.5 s)")
    p.add_argument("--header-interval", type=float, default=10.0, metavar="S", help="repeat the session header every S s (default: 10)")
    p.add_argument("--wait", type=float, default=30.0, metavar="S", help="wait this long for a receiver before giving up (default: 30 s)")
    add_backend_argument(p)
    p.add_argument("--json", action="store_true", help="print one JSON object with the statistics")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..errors import FaceLinkError
    from ..face import FaceTracker, create_models
    from ..io import open_source, parse_uri
    from ..face._reference import prepare_reference
    from ..transport import Sender, check_endpoint

    endpoint = check_endpoint(args.to, bind=False)
    if not 0 < args.seal_interval <= 60:
        raise _usage("--seal-interval must be in (0, 60] seconds")
    if not args.header_interval > 0 or not args.wait >= 0:
        raise _usage("--header-interval must be > 0 and --wait >= 0")
    params = codec_params(args, "send")
    kbps_audio = audio_kbps(args, "send")
    ref_opts = reference_options(args, "send")
    identity = load_device_key(args.key, "sender")
    receiver_key = None if args.no_curve else _receiver_curve_key(args)
    if args.no_curve:
        print("facelink: warning: --no-curve: the link is neither encrypted nor authenticated (lab use only)", file=sys.stderr)

    source = open_capture(args)  # a live source stays open from the reference search to the last frame
    try:
        models = create_models(args.backend)
        info = source.info
        if source.live:
            reference, anchor = live_reference(source, models, params.k, args.reference, **ref_opts)
        else:
            source.close()
            source = None
            reference, anchor = prepare_reference(parse_uri(args.input).location, models, params.k, args.reference, **ref_opts)
    except BaseException:
        if source is not None:
            source.close()
        raise
    tracker = FaceTracker(*models)
    fps = float(info.fps) if info.fps else 30.0
    sound = _file_sound(args.input, kbps_audio, live=source is not None)
    mic = _open_mic(args, kbps_audio, live=source is not None)
    pace = source is None and not args.fast  # a file plays at its own rate; a camera brings its own

    sender = Sender(
        endpoint, identity, reference=reference, params=params, width=info.width, height=info.height, fps=info.fps,
        anchor=anchor, receiver_key=receiver_key, curve=not args.no_curve, seal_interval=args.seal_interval,
        header_interval=args.header_interval, audio_kbps=kbps_audio if sound is not None or mic is not None else None,
    )  # fmt: skip
    status = StatusLine()
    interrupted = False
    span: list[float | None] = [None, None]  # stream times of the first and last frame sent
    sender.open()
    t_start = time.monotonic()
    try:
        if not sender.wait_connected(args.wait):
            if sender.stats.auth_failures:
                raise FaceLinkError(
                    f"{endpoint}: the receiver refused key {identity.fingerprint}; "
                    f"it must trust {identity.name}.pub (`facelink keys trust`), and --receiver-key must be its key"
                )
            raise FaceLinkError(f"{endpoint}: no receiver connected within {args.wait:g} s; is `facelink receive` running there?")
        wall0 = src0 = None
        video = source if source is not None else open_source(args.input, backend=args.io_backend)
        source = None
        with video:  # the session (and its start time) begins with the first frame sent
            for frame in video:
                captured = time.time()
                if pace:
                    if src0 is None:
                        wall0, src0 = time.monotonic(), frame.time
                    target = wall0 + (frame.time - src0)  # type: ignore[operator]
                    while (left := target - time.monotonic()) > 0:
                        sender.service(min(left, 0.05))
                    late = time.monotonic() - target
                    if late > 2.0 / fps:  # running late: a stale frame is not worth sending
                        sender.skip_frame()
                        continue
                    captured = time.time() - late  # when this frame was due: its "capture" time
                else:
                    sender.service(0.0)
                if not sender.connected:
                    sender.skip_frame()
                    continue
                clock = time.monotonic() - frame.time  # the camera's clock in monotonic time (for the mic)
                obs = tracker.update(frame.image, frame.time)
                face = obs.landmarks if obs is not None else None
                if sender.send_frame(
                    frame.index, frame.time, face, captured_at=captured, eyes=obs.eyes if obs is not None else None, image=frame.image
                ):
                    span[0] = frame.time if span[0] is None else span[0]
                    span[1] = frame.time
                if sound is not None:  # the file's sound up to the end of this frame
                    sound.send_until(sender, frame.time + 1.0 / fps)
                if mic is not None:  # what the microphone heard, on the camera's clock
                    for pcm, heard_at in mic.read():
                        sender.send_audio(pcm, heard_at - clock)
                if status.due():
                    status.show(_status(sender, time.monotonic() - t_start))
    except KeyboardInterrupt:
        interrupted = True
    finally:
        if source is not None:
            source.close()
        if mic is not None:
            mic.close()
        stats = sender.close(linger=1.0)
        status.close()
    wall = max(time.monotonic() - t_start, 1e-9)
    out = stats.as_dict()
    duration = (span[1] - span[0] + 1 / fps) if span[0] is not None and span[1] is not None else 1e-9
    out.update(
        endpoint=endpoint,
        curve=not args.no_curve,
        sender=identity.fingerprint,
        session=_session_tag(sender.codec.header) if sender.codec is not None else None,
        session_id=sender.session_id.hex(),
        interrupted=interrupted,
        wall_s=round(wall, 3),
        kbps=round(8 * (stats.total_bytes - stats.reference_bytes) / duration / 1000, 3),
        overhead_kbps=round(8 * (stats.seal_bytes + stats.header_bytes + stats.end_bytes) / duration / 1000, 3),
    )
    if args.json:
        emit_json(out)
    else:
        print(
            f"{endpoint}: {stats.frames_sent} frames sent ({stats.frames_skipped} skipped), {out['kbps']:.2f} kbps "
            f"incl. {out['overhead_kbps']:.2f} kbps seals+headers, {stats.seals} seals, session {out['session'] or out['session_id'][:16]}"
            + (" (interrupted: ended cleanly)" if interrupted else ""),
            file=sys.stderr,
        )
    return 0


def _status(sender, elapsed: float) -> str:
    s = sender.stats
    kbps = 8 * (s.total_bytes - s.reference_bytes) / max(elapsed, 1e-9) / 1000
    state = "connected" if sender.connected else "waiting for receiver"
    return f"send {s.frames_sent / max(elapsed, 1e-9):5.1f} fps {kbps:6.2f} kbps  seals {s.seals}  skipped {s.frames_skipped}  {state}"


def _session_tag(header) -> str:
    from ..pipeline import session_tag_hex

    return session_tag_hex(header)


class _FileSound:
    """A file's audio track, sent a frame's worth at a time on the frames' clock."""

    def __init__(self, track) -> None:
        from ..audio import TrackCursor

        self.cursor = TrackCursor(track)

    def send_until(self, sender, t: float) -> None:
        x, start = self.cursor.until(t)
        if x.size:
            sender.send_audio(x, start)


def _file_sound(uri: str, kbps: float | None, live: bool) -> "_FileSound | None":
    """The input file's sound to send, or None (no track, --no-audio, or a camera: microphone
    capture is not built yet); a track that cannot be read is a warning, the video still goes."""
    if kbps is None or live:
        return None
    from ..audio import read_audio_track
    from ..errors import AudioError
    from ..io import parse_uri

    try:
        track = read_audio_track(parse_uri(uri).location)
    except AudioError as e:
        print(f"facelink: warning: {uri}: sound not sent ({e}); the video is", file=sys.stderr)
        return None
    return _FileSound(track) if track is not None else None


def _open_mic(args, kbps: float | None, live: bool):
    """The ``--mic`` microphone (a camera's sound), or None; a file or --no-audio with --mic is a usage error."""
    if args.mic is None:
        return None
    if not live:
        raise _usage("--mic goes with a camera; a file sends its own sound track")
    if kbps is None:
        raise _usage("--mic and --no-audio contradict each other")
    from ..audio import Microphone

    return Microphone(args.mic)  # AudioError: a one-line error (no device, no such input)
