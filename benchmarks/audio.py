#!/usr/bin/env python3
"""Audio benchmark: Opus rates, A/V sync of the clap clip, loss concealment over a long run.

    python benchmarks/audio.py rates  [--seconds 20]
    python benchmarks/audio.py sync   [--loss 0.05]
    python benchmarks/audio.py soak   [--minutes 10] [--loss 0.05]
    python benchmarks/audio.py all    [--out results.json]

rates  Opus payload and whole-AUDIO-packet rates for 6..24 kbit/s targets and 20/40/60 ms
       packets, on the project's synthetic speech (and espeak-ng speech when installed);
       the share of a signed stream's rate with Opus at 8 kbit/s: audio + version-3 seals
       (measured here) + keypoints at ``medium`` (3.35 kbit/s, measured on real clips in
       docs/results.md).
sync   The clap clip (flash + click, made by facelink.audio) muxed straight into an MP4,
       and through Opus packets with random loss and reordering -> depacketizer -> MP4;
       the A/V offset measured on each MP4 (frames at 25 and 30 fps).
soak   M minutes of speech with a click every 10 s through Opus packets with random loss
       and local reordering: each click's time against the same packets decoded without
       loss (the drift the link causes), over the whole run and its last minute.

Everything runs on the CPU; nothing needs ../shared.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "sdk"))

from facelink import bitstream as bs  # noqa: E402
from facelink.audio import (  # noqa: E402
    RATE,
    AudioDepacketizer,
    AudioPacketizer,
    assemble,
    espeak_available,
    espeak_speech,
    find_click,
    make_clap_clip,
    measure_av_offset,
    tone_speech,
)
from facelink.io import VideoWriter  # noqa: E402

KEYPOINTS_MEDIUM_KBPS = 3.35  # docs/results.md, FaceLink `medium` on the evaluation clips


def _rates(seconds: float) -> dict:
    tracks = {"tones": tone_speech(seconds).samples}
    if espeak_available():
        s = espeak_speech("The quick brown fox jumps over the lazy dog. " * 4)
        tracks["espeak-ng"] = s.samples
    out = {}
    for name, pcm in tracks.items():
        secs = pcm.size / RATE
        rows = []
        for frame_ms in (20, 40, 60):
            for kbps in (6, 8, 12, 16, 24):
                p = AudioPacketizer(kbps, frame_ms)
                pk = p.push(pcm, 0) + p.flush()
                payload = sum(len(x) - 10 for x in pk)
                rows.append({"frame_ms": frame_ms, "target_kbps": kbps, "opus_kbps": round(8 * payload / secs / 1000, 2),
                             "audio_packets_kbps": round(8 * p.wire_bytes / secs / 1000, 2)})
        out[name] = {"seconds": round(secs, 2), "rows": rows}
    # seals of a version-3 session at 30 fps, 0.5 s: 2 per second of 77 bytes (+1 for long sessions)
    seal_kbps = 2 * 77 * 8 / 1000
    share = {}
    for frame_ms in (20, 40):
        audio = next(r["audio_packets_kbps"] for r in out["tones"]["rows"] if r["frame_ms"] == frame_ms and r["target_kbps"] == 8)
        total = audio + seal_kbps + KEYPOINTS_MEDIUM_KBPS
        share[f"{frame_ms}ms"] = {"audio_kbps": audio, "seals_kbps": round(seal_kbps, 2), "keypoints_kbps": KEYPOINTS_MEDIUM_KBPS,
                                  "total_kbps": round(total, 2), "seal_share": round(seal_kbps / total, 3)}
    return {"tracks": out, "total_signed_opus8_medium": share}


def _through_link(clip, loss: float, seed: int, path: str) -> dict:
    p = AudioPacketizer(8, 20)
    pk = p.push(clip.audio, 0) + p.flush()
    rnd = random.Random(seed)
    kept = [q for q in pk if rnd.random() >= loss]
    order = sorted(range(len(kept)), key=lambda i: bs.parse_packet(kept[i]).seq + rnd.uniform(0, 3))
    dep = AudioDepacketizer(p.params, depth=3)
    h, w = clip.frames[0].shape[:2]
    with VideoWriter(path, w, h, clip.fps, audio_rate=RATE) as out:
        for img, t in zip(clip.frames, clip.times):
            out.write(img, t)
        for c in [c for i in order for c in dep.feed(kept[i])] + dep.flush():
            if c.end > 0:
                out.write_audio(c.pcm[max(0, -c.start):], max(c.start, 0) / RATE)
    off = measure_av_offset(path)
    k = int(clip.flash_times[0] * RATE) // 960  # the packet that holds the click's onset
    click_lost = pk[k] not in kept
    return {"loss": loss, "lost": len(pk) - len(kept), "packets": len(pk), "click_packet_lost": click_lost, **off.as_dict()}


def _sync(loss: float) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory() as d:
        for fps in (25, 30):
            clip = make_clap_clip(fps=fps, seconds=4.0, flashes=(2.0,))
            path = f"{d}/direct{fps}.mp4"
            with VideoWriter(path, 64, 48, clip.fps, audio_rate=RATE) as out:
                for img, t in zip(clip.frames, clip.times):
                    out.write(img, t)
                out.write_audio(clip.audio, 0.0)
            rows.append({"path": "muxer", "fps": fps, **measure_av_offset(path).as_dict()})
            for seed in range(3):
                rows.append({"path": "opus link", "fps": fps, "seed": seed, **_through_link(clip, loss, seed, f"{d}/link{fps}_{seed}.mp4")})
    return rows


def _soak(minutes: float, loss: float) -> dict:
    """Clicks every 10 s in speech; the lossy, reordered link vs the same packets without loss.

    A click's absolute offset includes Opus's smearing of a transient at 8 kbit/s (SILK
    models speech, not clicks: up to ~20 ms either way where speech surrounds the click), so
    the drift caused by the link is measured as the lossy track's click time minus the
    lossless track's."""
    seconds = int(minutes * 60)
    every = 10
    speech = 0.3 * tone_speech(seconds).samples
    clicks = make_clap_clip(seconds=seconds, flashes=tuple(range(every, seconds, every))).audio
    p = AudioPacketizer(8, 20)
    pk = p.push(speech + clicks, 0) + p.flush()
    rnd = random.Random(1)
    kept_idx = [i for i in range(len(pk)) if rnd.random() >= loss]
    order = sorted(kept_idx, key=lambda i: i + rnd.uniform(0, 3))
    dep = AudioDepacketizer(p.params, depth=3)
    y = assemble([c for i in order for c in dep.feed(pk[i])] + dep.flush(), 0, seconds * RATE)
    ref = AudioDepacketizer(p.params, depth=0)
    y0 = assemble([c for q in pk for c in ref.feed(q)] + ref.flush(), 0, seconds * RATE)
    kept = set(kept_idx)
    link, codec, lost_click = [], [], 0
    for t in range(every, seconds, every):
        k = t * RATE // 960  # the packet holding the click's onset
        if k not in kept:
            lost_click += 1  # its onset was concealed: nothing to measure
            continue
        w = slice((t - 1) * RATE, (t + 1) * RATE)
        got = find_click(y[w], start=t - 1, after=t - 0.02)
        got0 = find_click(y0[w], start=t - 1, after=t - 0.02)
        link.append((t, 1000 * (got - got0)))
        codec.append((t, 1000 * (got0 - t)))

    def _stats(rows):
        v = np.array([o for _, o in rows]) if rows else np.zeros(1)
        return {"n": len(rows), "max_abs_ms": round(float(np.abs(v).max()), 3), "median_ms": round(float(np.median(v)), 3),
                "within_1ms": int(np.sum(np.abs(v) <= 1.0))}

    return {
        "seconds": seconds, "loss": loss, "packets": len(pk), "lost": len(pk) - len(kept),
        "concealed": dep.stats.concealed, "late": dep.stats.late,
        "track_samples": int(y.size), "expected_samples": seconds * RATE, "clicks_lost": lost_click,
        "drift_from_link_ms": _stats(link), "last_minute_drift_ms": _stats([r for r in link if r[0] >= seconds - 60]),
        "click_offset_through_opus8_ms": _stats(codec),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("what", choices=["rates", "sync", "soak", "all"])
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--loss", type=float, default=0.05)
    ap.add_argument("--out")
    a = ap.parse_args(argv)
    res: dict = {}
    if a.what in ("rates", "all"):
        res["rates"] = _rates(a.seconds)
    if a.what in ("sync", "all"):
        res["sync"] = _sync(a.loss)
    if a.what in ("soak", "all"):
        res["soak"] = _soak(a.minutes, a.loss)
    text = json.dumps(res, indent=1)
    print(text)
    if a.out:
        Path(a.out).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
