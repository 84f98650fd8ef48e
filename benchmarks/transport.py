#!/usr/bin/env python3
"""Transport benchmark: wire overhead of signing + framing, loopback latency, and a soak run.

    python benchmarks/transport.py overhead [--seconds 120] [--clip PATH] [--seal-interval 0.5]
    python benchmarks/transport.py latency  [--seconds 20] [--no-render]
    python benchmarks/transport.py soak     [--minutes 10] [--render]
    python benchmarks/transport.py all      [--out results.json]

overhead  A session of N seconds at 30 fps goes sender -> TCP byte-counting relay ->
          receiver (CurveZMQ on).  The sender runs on a simulated clock advancing one
          frame period per frame, so periodic headers and seals land as in real time.
          Reported per second of stream: keypoint payload, seals, header repeats, End,
          ZMTP/CurveZMQ framing (wire bytes minus packet bytes), and an estimate of
          TCP/IPv4 headers (one 52-byte segment per message: ZeroMQ sets TCP_NODELAY).
          The one-time reference and the handshake are reported separately.
latency   Sender and receiver in two threads, paced at 30 fps over loopback with CurveZMQ.
          Per frame: time from just before ``send_frame`` to the decoded KeypointFrame,
          and to the generated image (Generator at the reference's size) unless --no-render.
soak      Paced 30 fps for M minutes; RSS sampled every 5 s after a 30 s warm-up;
          drift = (last - first) / first; seals sent vs accepted.

The machine is shared (2 cores, other jobs running): timings are noisy; run twice.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import selectors
import socket
import sys
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "sdk"))

from facelink.codec import QUALITY_PRESETS, Reference
from facelink.keypoints import KeypointFitter, Pose, default_basis
from facelink.security import TrustStore, generate_identity
from facelink.transport import Receiver, Sender

FPS = 30
PARAMS = QUALITY_PRESETS["medium"]


# ---------------------------------------------------------------- inputs


def scene(portrait: bool = True) -> tuple[Reference, str]:
    """The reference: the demo portrait with real landmarks when the face models are there, else synthetic."""
    if portrait:
        try:
            from facelink.assets import asset_path
            from facelink.face import create_models
            from facelink.io import load_image
            from facelink.sender import make_reference

            return make_reference(load_image(str(asset_path("astronaut"))), create_models("onnxruntime")), "portrait 512x512"
        except Exception as e:  # noqa: BLE001 - offline: fall back, and say so
            print(f"(portrait unavailable: {e}; using a synthetic 256x256 reference)", file=sys.stderr)
    basis = default_basis()
    lm = KeypointFitter(basis, basis.mean, 0).reconstruct(Pose(0.05, 0.0, 0.02, 128, 128, 60), np.zeros(0))
    img = (np.random.default_rng(0).random((256, 256, 3)) * 255).astype(np.uint8)
    return Reference.create(img, lm), "synthetic 256x256"


def synthetic_motion(ref: Reference, n: int, seed: int = 1) -> list[np.ndarray]:
    """Talking-head-like motion: slow head sway and expression oscillations (landmarks)."""
    basis = default_basis()
    k = PARAMS.k
    fitter, p0 = KeypointFitter.from_reference(basis, ref.landmarks, k)
    rng = np.random.default_rng(seed)
    phase = rng.random(k) * 6.28
    freq = 1.5 + rng.random(k) * 3
    out = []
    for i in range(n):
        t = i / FPS
        c = basis.std[:k] * 0.8 * np.sin(freq * t + phase)
        p = Pose(p0.yaw + 0.15 * math.sin(0.7 * t), p0.pitch + 0.08 * math.sin(1.1 * t), p0.roll + 0.03 * math.sin(0.5 * t),
                 p0.tx + 4 * math.sin(0.6 * t), p0.ty + 2 * math.sin(0.9 * t), p0.scale * (1 + 0.02 * math.sin(0.4 * t)))  # fmt: skip
        out.append(fitter.reconstruct(p, c))
    return out


def clip_motion(path: str) -> tuple[Reference, list[np.ndarray], float]:
    """Real landmarks tracked on a clip (self-reenactment: first face frame is the reference)."""
    from facelink.face import FaceTracker, create_models
    from facelink.io import open_video
    from facelink.sender import make_reference

    models = create_models("onnxruntime")
    tracker = FaceTracker(*models)
    frames = list(open_video(path))
    lms, ref = [], None
    for f in frames:
        obs = tracker.update(f.image, f.time)
        if obs is not None and ref is None:
            ref = make_reference(f.image, models)
        lms.append(obs.landmarks if obs is not None else None)
    if ref is None:
        raise SystemExit(f"{path}: no face")
    with open_video(path) as v:
        fps = float(v.info.fps)
    return ref, lms, fps


# ---------------------------------------------------------------- a TCP relay that counts bytes


class CountingRelay(threading.Thread):
    """Forwards one TCP connection to ``target`` and counts the bytes each way."""

    def __init__(self, target_port: int) -> None:
        super().__init__(daemon=True)
        self.target_port = target_port
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(4)
        self.port = self.listener.getsockname()[1]
        self.up = 0  # sender -> receiver
        self.down = 0
        self.stop = threading.Event()

    def run(self) -> None:
        sel = selectors.DefaultSelector()
        sel.register(self.listener, selectors.EVENT_READ)
        pairs: dict[socket.socket, tuple[socket.socket, bool]] = {}
        while not self.stop.is_set():
            for key, _ in sel.select(0.05):
                s = key.fileobj
                if s is self.listener:
                    a, _ = self.listener.accept()
                    b = socket.create_connection(("127.0.0.1", self.target_port))
                    for x in (a, b):
                        x.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                        sel.register(x, selectors.EVENT_READ)
                    pairs[a], pairs[b] = (b, True), (a, False)
                    continue
                data = s.recv(65536)  # type: ignore[union-attr]
                other, upward = pairs[s]  # type: ignore[index]
                if not data:
                    for x in (s, other):
                        sel.unregister(x)
                        x.close()
                        pairs.pop(x, None)
                    continue
                other.sendall(data)
                if upward:
                    self.up += len(data)
                else:
                    self.down += len(data)
        for x in list(pairs):
            x.close()
        self.listener.close()


class SimClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


# ---------------------------------------------------------------- overhead


def overhead(seconds: float, clip: str | None, seal_interval: float, header_interval: float) -> dict:
    if clip:
        ref, lms, fps = clip_motion(clip)
        n_src = len(lms)
        source = f"{clip} ({n_src} frames, looped)"
    else:
        ref, _ = scene(portrait=False)
        fps = FPS
        lms = synthetic_motion(ref, 600)
        source = "synthetic motion"
    n = int(seconds * fps)
    tx, rx = generate_identity("bench-tx"), generate_identity("bench-rx")
    receiver = Receiver("tcp://127.0.0.1:*", rx, trust=TrustStore(keys=(tx.public,)))
    port = int(receiver.open().rsplit(":", 1)[1])
    relay = CountingRelay(port)
    relay.start()
    clock = SimClock()
    sender = Sender(
        f"tcp://127.0.0.1:{relay.port}", tx, reference=ref, params=PARAMS, width=ref.width, height=ref.height, fps=fps,
        receiver_key=rx.public.curve, seal_interval=seal_interval, header_interval=header_interval, clock=clock,
    )  # fmt: skip
    sender.open()
    sender.start_session()
    deadline = time.monotonic() + 10
    while not receiver.core.ready and time.monotonic() < deadline:
        sender.service(0.002)
        receiver.poll(0.002)
    start_up = relay.up
    start_stats = dict(sender.stats.as_dict())
    messages0 = sender.stats.packets
    for i in range(n):
        clock.t += 1 / fps
        sender.send_frame(i, i / fps, lms[i % len(lms)])
        sender.service(0.0)
        receiver.poll(0.0)
        time.sleep(0.0003)  # let the I/O threads drain: this measures bytes, not speed
    sender.close(linger=2.0)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not (receiver.core.summary() and receiver.core.summary().end_verified):
        receiver.poll(0.01)
    time.sleep(0.2)
    relay.stop.set()
    relay.join(2)
    rstats = receiver.close()
    s = sender.stats.as_dict()
    d = {k: s[k] - start_stats.get(k, 0) for k in ("frame_bytes", "seal_bytes", "header_bytes", "end_bytes", "seals", "packets", "reference_bytes")}
    messages = s["packets"] - messages0
    payload = d["frame_bytes"] + d["seal_bytes"] + d["header_bytes"] + d["end_bytes"] + d["reference_bytes"]
    wire = relay.up - start_up
    framing = wire - payload
    dur = n / fps

    def kbps(b: float) -> float:
        return round(8 * b / dur / 1000, 3)

    v = rstats.verify
    return {
        "source": source,
        "fps": fps,
        "seconds": dur,
        "seal_interval_s": seal_interval,
        "header_interval_s": header_interval,
        "frames": n,
        "frames_sent": s["frames_sent"],
        "frames_skipped": s["frames_skipped"],
        "messages": messages,
        "kbps_keypoints": kbps(d["frame_bytes"]),
        "kbps_seals": kbps(d["seal_bytes"]),
        "kbps_header_repeats": kbps(d["header_bytes"]),
        "kbps_seals_and_headers": kbps(d["seal_bytes"] + d["header_bytes"] + d["end_bytes"]),
        "kbps_zmtp_curve_framing": kbps(framing),
        "framing_bytes_per_message": round(framing / max(messages, 1), 2),
        "kbps_tcp_ip_headers_estimate": kbps(52 * messages),
        "kbps_total_on_the_wire_excl_tcp": kbps(wire),
        "seals": d["seals"],
        "seal_bytes_each": round(d["seal_bytes"] / max(d["seals"], 1), 1),
        "reference_bytes_once": sender.stats.reference_bytes,
        "setup_wire_bytes_once": start_up,
        "receiver_intact": bool(v and v.spans_mismatch == 0 and v.seals_rejected == 0),
        "receiver_seals_accepted": v.seals_accepted if v else 0,
        "sender_seals": s["seals"],
    }


# ---------------------------------------------------------------- latency and soak (two threads, paced)


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def paced_run(seconds: float, render: bool, sample_rss: bool = False) -> dict:
    ref, ref_kind = scene(portrait=True)
    lms = synthetic_motion(ref, 900)
    n = int(seconds * FPS)
    tx, rx = generate_identity("bench-tx"), generate_identity("bench-rx")
    receiver = Receiver("tcp://127.0.0.1:*", rx, trust=TrustStore(keys=(tx.public,)))
    endpoint = receiver.open()
    sent_at: dict[int, float] = {}
    decoded_ms: list[float] = []
    generated_ms: list[float] = []
    not_rendered = [0]
    stop = threading.Event()
    rss: list[tuple[float, float]] = []
    gen_state: dict = {}

    def render_frame(frame) -> None:
        from facelink.generator import Generator
        from facelink.receiver import Retargeter, decode_anchor

        dec = receiver.core.session.decoder
        if "gen" not in gen_state:
            h = dec.header
            gen_state["rt"] = Retargeter(dec.basis, h.n_coeffs, dec.reference.landmarks, decode_anchor(h.extensions))
            gen_state["gen"] = Generator(dec.reference.image, dec.reference.landmarks, backend="onnxruntime")
        gen_state["gen"].render(gen_state["rt"].landmarks(frame))

    def receive_loop() -> None:
        while not stop.is_set():
            results = receiver.poll(0.02)
            now = time.perf_counter()
            frames = [r.delivery.frame for r in results if r.delivery.frame is not None and r.delivery.frame.has_face]
            for f in frames:
                if f.index in sent_at:
                    decoded_ms.append(1000 * (now - sent_at[f.index]))
            if render and frames and receiver.core.ready:
                newest = frames[-1]  # newest frame wins
                not_rendered[0] += len(frames) - 1
                render_frame(newest)
                if newest.index in sent_at:
                    generated_ms.append(1000 * (time.perf_counter() - sent_at[newest.index]))

    thread = threading.Thread(target=receive_loop, daemon=True)
    thread.start()
    sender = Sender(endpoint, tx, reference=ref, params=PARAMS, width=ref.width, height=ref.height, fps=FPS, receiver_key=rx.public.curve)
    sender.open()
    if not sender.wait_connected(10):
        raise SystemExit("no connection")
    sender.start_session()
    while not receiver.core.ready:
        sender.service(0.01)
    if render:  # frame 0 builds the generator before timing starts (as `facelink receive` does)
        sender.send_frame(0, 0.0, lms[0])
        deadline = time.monotonic() + 30
        while "gen" not in gen_state and time.monotonic() < deadline:
            sender.service(0.01)
    t0 = time.perf_counter()
    first_index = 1 if render else 0
    next_rss = t0 + 30
    for j in range(n):
        i = j + first_index
        target = t0 + j / FPS
        while (left := target - time.perf_counter()) > 0:
            sender.service(min(left, 0.01))
        sent_at[i] = time.perf_counter()
        sender.send_frame(i, i / FPS, lms[i % len(lms)])
        if sample_rss and time.perf_counter() >= next_rss:
            rss.append((round(time.perf_counter() - t0, 1), _rss_mb()))
            next_rss += 5
            if len(sent_at) > 4 * FPS:  # the benchmark's own bookkeeping must not grow
                for k in [k for k in sent_at if k < i - 4 * FPS]:
                    del sent_at[k]
                del decoded_ms[:-10000], generated_ms[:-10000]
    sender.close(linger=2.0)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not (receiver.core.summary() and receiver.core.summary().end_verified):
        time.sleep(0.05)
    stop.set()
    thread.join(5)
    rstats = receiver.close()
    v = rstats.verify

    def pct(xs: list[float], q: float) -> float | None:
        return round(float(np.percentile(xs, q)), 2) if xs else None

    out = {
        "reference": ref_kind,
        "frames": n,
        "send_to_decoded_ms_p50": pct(decoded_ms, 50),
        "send_to_decoded_ms_p99": pct(decoded_ms, 99),
        "send_to_generated_ms_p50": pct(generated_ms, 50) if render else None,
        "send_to_generated_ms_p99": pct(generated_ms, 99) if render else None,
        "frames_generated": len(generated_ms),
        "frames_not_rendered_newest_wins": not_rendered[0],
        "sender_frames_skipped": sender.stats.frames_skipped,
        "sender_connects": sender.stats.connects,
        "sender_seals": sender.stats.seals,
        "receiver_seals_accepted": v.seals_accepted if v else 0,
        "receiver_seals_rejected": v.seals_rejected if v else 0,
        "spans_verified": v.spans_verified if v else 0,
        "spans_not_verified": (v.spans_incomplete + v.spans_mismatch) if v else 0,
        "end_verified": bool(v and v.end_verified),
    }
    if sample_rss and rss:
        first, last = rss[0][1], rss[-1][1]
        out.update(rss_mb_first=round(first, 1), rss_mb_last=round(last, 1), rss_mb_max=round(max(r for _, r in rss), 1),
                   rss_drift_percent=round(100 * (last - first) / first, 2), rss_samples=rss)  # fmt: skip
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=["overhead", "latency", "soak", "all"])
    ap.add_argument("--seconds", type=float, help="stream length (overhead: 120, latency: 20)")
    ap.add_argument("--minutes", type=float, default=10.0, help="soak length (default 10)")
    ap.add_argument("--clip", help="overhead on real landmarks tracked on this clip")
    ap.add_argument("--seal-interval", type=float, default=0.5)
    ap.add_argument("--header-interval", type=float, default=10.0)
    ap.add_argument("--no-render", action="store_true", help="latency: keypoints only")
    ap.add_argument("--render", action="store_true", help="soak: also run the generator on the newest frame")
    ap.add_argument("--out", help="write the JSON results here too")
    args = ap.parse_args(argv)
    results: dict = {"machine": f"{os.cpu_count()} CPUs (shared; timings are noisy)"}
    if args.what in ("overhead", "all"):
        results["overhead"] = overhead(args.seconds or 120, args.clip, args.seal_interval, args.header_interval)
        for iv in (0.7, 1.0):
            results[f"overhead_seal_interval_{iv}"] = overhead(args.seconds or 120, args.clip, iv, args.header_interval)
    if args.what in ("latency", "all"):
        results["latency"] = paced_run(args.seconds or 20, render=not args.no_render)
    if args.what == "soak":
        results["soak"] = paced_run(60 * args.minutes, render=args.render, sample_rss=True)
    text = json.dumps(results, indent=1)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
