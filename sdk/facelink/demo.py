"""``facelink demo``: the whole pipeline on a scripted performance, no camera needed.

1. A public-domain portrait (NASA's astronaut photo) becomes the reference.
2. A scripted performance -- talk, smile, blink, nod, turn -- is rendered from it by the
   generator: these synthetic frames stand in for a camera.
3. The real sender runs on those frames (face tracking, landmark model, fit, codec) and
   streams signed packets over a real CurveZMQ link on a random loopback port.
4. The real receiver verifies the seals, decodes and generates the frames into ``demo.mp4``.
5. ``report.json`` gathers frames, rate (keypoints, seals + headers), seals verified,
   and encoder / generator speed.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from .codec import QUALITY_PRESETS, CodecParams
from .io import Frame, VideoWriter, load_image
from .keypoints import ExpressionBasis, KeypointFitter, default_basis

__all__ = ["expression_direction", "run_demo", "scripted_performance"]

#: Face Mesh indices used to describe expressions
_UPPER_LID = {"right": [159, 158, 160, 157, 161, 56, 28, 27, 29, 30], "left": [386, 385, 387, 384, 388, 286, 258, 257, 259, 260]}
_LOWER_LID = {"right": [145, 153, 144, 154, 163, 110, 24, 23, 22, 26], "left": [374, 380, 373, 381, 390, 339, 254, 253, 252, 256]}


def _template(basis: ExpressionBasis, name: str) -> np.ndarray:
    """A canonical-space displacement (468, 3) describing one expression at full strength."""
    m = basis.mean
    x, y = m[:, 0], m[:, 1]
    d = np.zeros_like(m)
    mouth_y = m[13, 1]
    chin_y = m[152, 1]
    if name == "open":  # jaw drop: the lower face moves down, most at the chin and lower lip
        w = np.clip((y - mouth_y) / max(chin_y - mouth_y, 1e-6), 0, 1) ** 0.5 * np.exp(-((x / 0.75) ** 2))
        w[y <= mouth_y] = 0
        d[:, 1] = 0.35 * w
    elif name == "smile":  # mouth corners out and up, cheeks lift a little
        for idx, sx in ((61, -1.0), (291, 1.0)):
            g = np.exp(-np.sum((m[:, :2] - m[idx, :2]) ** 2, axis=1) / (2 * 0.12**2))
            d[:, 0] += sx * 0.10 * g
            d[:, 1] -= 0.08 * g
    elif name == "blink":  # upper lids meet the lower lids
        for side in ("right", "left"):
            for u, lo in zip(_UPPER_LID[side], _LOWER_LID[side]):
                gap = m[lo, 1] - m[u, 1]
                g = np.exp(-np.sum((m[:, :2] - m[u, :2]) ** 2, axis=1) / (2 * 0.04**2))
                d[:, 1] += 0.9 * gap * g / max(1, len(_UPPER_LID[side]) * 0.35)
    else:
        raise ValueError(f"unknown expression {name!r}")
    return d


def expression_direction(basis: ExpressionBasis, k: int, name: str) -> np.ndarray:
    """Coefficients (k,) of an expression template projected on the learned basis."""
    return basis.matrix(k) @ _template(basis, name).reshape(-1)


@dataclass(frozen=True)
class ScriptStep:
    pose_deg: tuple[float, float, float]  # yaw, pitch, roll offsets
    coeffs: np.ndarray


def scripted_performance(
    basis: ExpressionBasis, k: int, fps: float, seconds: float, speech: np.ndarray | None = None
) -> list[ScriptStep]:
    """Talk (jaw), smile, blink every ~2 s, a nod and a turn, smooth throughout.

    ``speech`` (``(frames, k)`` expression coefficients, e.g. from the audio -> motion
    network for the demo's speech track) replaces the scripted jaw while it lasts."""
    dirs = {n: expression_direction(basis, k, n) for n in ("open", "smile", "blink")}
    n = int(round(seconds * fps))
    out = []
    for i in range(n):
        t = i / fps
        u = t / seconds
        talk = max(0.0, math.sin(2 * math.pi * 3.1 * t)) * (0.6 + 0.4 * math.sin(2 * math.pi * 0.7 * t)) * (u < 0.8)
        lips = np.zeros(k)
        if speech is not None:  # the lips say the speech track instead of the scripted jaw
            talk = 0.0
            if i < len(speech):
                m = min(k, speech.shape[1])
                lips[:m] = speech[i, :m]
        smile = math.exp(-(((u - 0.55) / 0.1) ** 2))
        blink = sum(math.exp(-(((t - tb) / 0.06) ** 2)) for tb in np.arange(1.0, seconds, 2.1))
        yaw = 18 * math.sin(2 * math.pi * (u - 0.6) / 0.4) if 0.6 <= u <= 1.0 else 0.0
        pitch = 7 * math.sin(2 * math.pi * (u - 0.2) / 0.2) if 0.2 <= u <= 0.4 else 0.0
        roll = 4 * math.sin(2 * math.pi * 0.3 * t)
        c = talk * dirs["open"] + lips + smile * dirs["smile"] + min(blink, 1.0) * dirs["blink"]
        out.append(ScriptStep((yaw, pitch, roll), c))
    return out


def _camera_frames(ref_image: np.ndarray, ref_lm: np.ndarray, steps: list[ScriptStep], fps: float, backend: str):
    """Render the scripted performance from the portrait: the demo's stand-in for a camera."""
    from .generator import Generator
    from .receiver import Retargeter

    basis = default_basis()
    k = len(steps[0].coeffs)
    gen = Generator(ref_image, ref_lm, backend=backend, refiner="off")
    fitter, pose0 = KeypointFitter.from_reference(basis, ref_lm, k)
    for i, st in enumerate(steps):
        rt = Retargeter(basis, k, ref_lm, None, st.pose_deg) if any(st.pose_deg) else None
        from .codec import FrameKind, KeypointFrame

        kf = KeypointFrame(i, i / fps, FrameKind.KEY, pose0, st.coeffs)
        lm = rt.landmarks(kf) if rt else fitter.reconstruct(pose0, st.coeffs)
        yield Frame(gen.render(lm), i / fps, i)


def run_demo(
    out_dir: str | Path,
    *,
    backend: str = "auto",
    seconds: float = 8.0,
    fps: float = 25.0,
    params: CodecParams | None = None,
    progress: Callable[[int, int | None], None] | None = None,
    refiner: str | None = "off",
) -> dict:
    """Run the demo; writes ``demo.mp4`` and ``report.json`` into ``out_dir``; returns the report.

    ``refiner`` is the receiver's generator refinement (the scripted "camera" always uses
    the pure warp, so the refiner's effect shows in the output)."""
    from .assets import demo_portrait
    from .face import FaceTracker, create_models
    from .receiver import SessionRenderer
    from .provenance import write_provenance
    from .security._local import local_identity
    from .face._reference import make_reference
    from .transport import LoopbackLink

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    params = params or QUALITY_PRESETS["medium"]
    portrait = demo_portrait()
    models = create_models(backend)
    reference = make_reference(load_image(str(portrait)), models)
    h, w = reference.image.shape[:2]
    speech, lips = _speech(fps, seconds, params.k, backend)
    steps = scripted_performance(default_basis(), params.k, fps, seconds, lips)

    t_cam = time.perf_counter()
    camera = list(_camera_frames(reference.image, reference.landmarks, steps, fps, backend))
    t_cam = time.perf_counter() - t_cam

    tracker = FaceTracker(*models)
    video = out / "demo.mp4"
    t_track = 0.0
    t_send = 0.0
    t_recv = 0.0  # the receiving end: verified packets -> decode, generate, watermark, write
    latencies: list[float] = []
    from .audio import RATE, SessionSound

    with VideoWriter(str(video), w, h, fps, audio_rate=RATE) as writer:
        # a real CurveZMQ link on a random loopback port; every packet sealed and verified
        with LoopbackLink(
            reference, params, width=w, height=h, fps=fps, receiver_identity=local_identity(), audio_kbps=DEMO_AUDIO_KBPS
        ) as link:
            sound_out = SessionSound()
            said = 0  # samples of the speech sent
            # the link's receiver verifies and decodes each packet once; the renderer takes its decoded frames
            renderer = SessionRenderer(backend=backend, receiver_key=link.receiver_identity.public.ed25519, refiner=refiner)
            core = link.receiver.core
            for i, frame in enumerate(camera):
                t0 = time.perf_counter()
                obs = tracker.update(frame.image, frame.time)
                t1 = time.perf_counter()
                if i > 0:  # the speech up to the end of this frame (stream time 0 = frame 0)
                    upto = min(speech.size, int(round((i + 1) / fps * RATE)))
                    if upto > said:
                        link.sender.send_audio(speech[said:upto], said / RATE)  # type: ignore[union-attr]
                        said = upto
                deliveries = link.send(
                    frame.index, frame.time, obs.landmarks if obs is not None else None, obs.eyes if obs is not None else None
                )
                t_send += time.perf_counter() - t1
                t_track += t1 - t0
                renderer.log.observe(deliveries)  # verified seals, for the provenance manifest
                t2 = time.perf_counter()
                for d in deliveries:
                    if d.verdict is not None and core.ready:
                        for c in sound_out.feed(core.session.header, d.packet):
                            writer.write_audio(c.pcm, c.start / RATE)
                    if d.frame is None or not d.frame.decodable or not core.ready:
                        continue  # control packets; frames before the session is ready
                    dec = core.session.decoder
                    if d.session_id != dec.header.session_id:
                        continue
                    shown = renderer.render(dec, d.frame)
                    writer.write(shown.image, shown.time)
                    latencies.append(time.perf_counter() - t1)
                t_recv += time.perf_counter() - t2
                if progress is not None:
                    progress(i + 1, len(camera))
            for c in sound_out.flush():
                writer.write_audio(c.pcm, c.start / RATE)
            link_report = link.close()
    snd = link_report.sender
    verify = link_report.receiver.verify
    prov = write_provenance(video, renderer.log, link.receiver_identity, summary=verify)
    duration = len(camera) / fps
    report = {
        "frames": len(camera),
        "frames_written": writer.frames,
        "width": w,
        "height": h,
        "fps": fps,
        "portrait": str(portrait),
        "codec": {"k": params.k, "key_interval": params.key_interval},
        "kbps": round(8 * (snd.total_bytes - snd.reference_bytes) / duration / 1000, 3),
        "kbps_keypoints": round(8 * snd.frame_bytes / duration / 1000, 3),
        "kbps_audio": round(8 * snd.audio_bytes / duration / 1000, 3),
        "speech": {"source": _speech_source(), "seconds": round(speech.size / RATE, 2), "lips": "audio2motion" if lips is not None else "scripted"},
        "kbps_seals_and_headers": round(8 * (snd.seal_bytes + snd.header_bytes + snd.end_bytes) / duration / 1000, 3),
        "reference_bytes": snd.reference_bytes,
        "seals_sent": snd.seals,
        "seals_verified": verify.seals_accepted if verify else 0,
        "stream_intact": bool(verify and verify.intact),
        "transport": f"ZeroMQ DEALER->ROUTER over {link_report.endpoint}, CurveZMQ {'on' if link_report.curve else 'off'}",
        "encoder_fps": round(len(camera) / (t_track + t_send), 1),
        "tracker_ms_per_frame": round(1000 * t_track / len(camera), 2),
        "generator_fps": round(renderer.generated / renderer.generate_seconds, 1) if renderer.generate_seconds else None,
        "refiner": _refiner_name(renderer),
        "watermark_ms_per_frame": round(1000 * renderer.mark_seconds / max(len(camera), 1), 2),
        "receiver": link.receiver_identity.public.fingerprint,
        "latency_ms_p50": round(1000 * float(np.percentile(latencies, 50)), 1) if latencies else None,
        "camera_render_s": round(t_cam, 2),
        "speed": _speed_note(renderer, backend, len(camera), t_recv, w, h),
        "video": str(video),
        "provenance": prov.as_dict() if prov is not None else None,
    }
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


#: Opus rate of the demo's sound (kbit/s)
DEMO_AUDIO_KBPS = 12


def _speech_source() -> str:
    from .audio import espeak_available

    return "espeak-ng" if espeak_available() else "tones"


def _speech(fps: float, seconds: float, k: int, backend: str):
    """The demo's speech track (48 kHz; espeak-ng, or a tone sequence made by the project) and
    the lips that say it: expression coefficients per frame from the audio -> motion network
    (None when its model is not shipped: the scripted jaw then talks)."""
    from .animate._features import from_48k, log_mel
    from .animate._model import AudioToExpression, model_path
    from .audio import RATE, speech_track

    speech = speech_track(seconds=0.8 * seconds).samples[: int(0.8 * seconds * RATE)]
    if not model_path().is_file():
        return speech, None
    n = int(round(seconds * fps))
    times = np.arange(n) / fps
    pred = AudioToExpression(backend=backend).predict(log_mel(from_48k(speech)), times)
    lips = pred * default_basis().std[: pred.shape[1]]
    lips[times >= speech.size / RATE] = 0.0  # silent after the speech
    return speech, lips


def _speed_note(renderer, backend: str, frames: int, t_recv: float, w: int, h: int) -> dict:
    """What the speed figures measure: the generator's cost follows the face box's area, and the
    demo's portrait has a small face, so say how large it was and what the whole receiver ran at."""
    from .backend import select_backend

    gen = renderer.generator
    x0, y0, x1, y1 = gen.face_box if gen is not None else (0, 0, w, h)
    share = (x1 - x0) * (y1 - y0) / max(w * h, 1)
    return {
        "measured_on": f"this machine ({select_backend(backend).name}), the demo's {w}x{h} portrait",
        "face_box": [x1 - x0, y1 - y0],
        "face_box_share": round(share, 3),
        "receiver_fps": round(frames / t_recv, 1) if t_recv > 0 else None,
        "note": (
            f"encoder_fps: face tracking + keypoint coding; generator_fps: the warp (and refiner) alone, over a "
            f"{x1 - x0}x{y1 - y0} face box ({share:.0%} of the frame); receiver_fps: decode, generate, watermark and "
            "write, end to end. The generator's cost grows with the face's area: clips whose face fills the frame "
            "(e.g. 512x512 talking-head crops) run several times slower; `facelink decode --json` reports "
            "generator_fps and decode_fps for your own clip."
        ),
    }


def _refiner_name(renderer) -> str:
    gen = renderer.generator
    return gen.refiner.model_path.name if gen is not None and gen.refiner is not None else "off"
