"""The speed benchmark: encoder stages, generator, loopback latency and peak memory on one clip.

Everything is timed per frame with ``time.perf_counter`` in one process on the chosen backend;
the first frames of each stage are a warm-up and not counted.  Figures depend on the machine
and on whatever else runs on it: the report records the CPU, the core count and the load.
"""

from __future__ import annotations

import resource
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from ..errors import InputError, ModelFetchError
from ._codec import prepare_clip
from ._run import ClipSpec, environment

__all__ = ["WARMUP", "peak_rss_mb", "run_speed_bench"]

#: frames of each stage not counted (session warm-up, caches)
WARMUP = 3


def peak_rss_mb() -> float:
    """The process's peak resident set size in MB (``getrusage``; kB on Linux, bytes on macOS)."""
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r / (1024 * 1024) if sys.platform == "darwin" else r / 1024


def _stat(times: Sequence[float]) -> dict:
    t = np.asarray(times[WARMUP:] if len(times) > WARMUP + 2 else times, np.float64) * 1000
    return {"ms": float(np.median(t)), "p90_ms": float(np.percentile(t, 90)), "n": int(t.size)}


def _timed(fn: Callable[[int], object], n: int) -> tuple[list[float], list[object]]:
    times, outs = [], []
    for i in range(n):
        t0 = time.perf_counter()
        outs.append(fn(i))
        times.append(time.perf_counter() - t0)
    return times, outs


def _landmarks(backend: str, precision: str):
    """The landmark model at ``precision`` when this FaceLink provides it, else ``(None, reason)``.

    Feature-detected: versions without INT8 graphs have no ``precision`` argument (FP32 only).
    """
    from ..backend import create_session
    from ..face import LandmarkModel
    from ..models import model_path

    try:
        path = model_path("face_landmark", precision=precision)  # type: ignore[call-arg]
    except TypeError:
        if precision != "fp32":
            return None, "this FaceLink has no INT8 models (model_path has no precision argument)"
        path = model_path("face_landmark")
    except (ModelFetchError, ValueError, FileNotFoundError) as e:
        return None, f"{precision.upper()} model unavailable: {e}"
    return LandmarkModel(create_session(path, backend=backend)), None


def run_speed_bench(
    clip: ClipSpec,
    out_dir: str | Path,
    *,
    frames: int = 100,
    backend: str = "auto",
    progress: Callable[[int, int], None] | None = None,
    command: str = "",
) -> dict:
    """Time the pipeline on ``clip``; write ``speed.json`` and ``speed.md`` under ``out_dir``."""
    from ..backend import select_backend
    from ..codec import QUALITY_PRESETS, StreamEncoder
    from ..face import FaceTracker, create_models, inter_ocular, roi_from_landmarks
    from ..io import Frame
    from ..keypoints import KeypointFitter, default_basis
    from ..receiver import FrameRenderer
    from ..sender import FrameEncoder, make_reference
    from ._report import speed_markdown, write_json, write_text

    if frames < WARMUP + 3:
        raise ValueError(f"--frames must be >= {WARMUP + 3} for the speed bench")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    be = select_backend(backend)
    models = create_models(backend)
    det, lmm = models
    steps = 9
    step = 0

    def tick() -> None:
        nonlocal step
        step += 1
        if progress:
            progress(step, steps)

    clip256 = prepare_clip(clip.path, 256, frames, models, name=clip.name)
    imgs = clip256.frames
    n = len(imgs)
    if n < WARMUP + 3:
        raise InputError(f"{clip.path}: only {n} frames; the speed bench needs {WARMUP + 3}")
    times = clip256.times
    notes: list[str] = []
    encoder: list[dict] = []

    t, _ = _timed(lambda i: det.detect(imgs[i]), n)
    encoder.append({"stage": "detect (BlazeFace, whole frame)", **_stat(t)})
    tick()
    tracker = FaceTracker(det, lmm)
    t, obs = _timed(lambda i: tracker.update(imgs[i], times[i]), n)
    encoder.append({"stage": "track (per frame as the sender runs it: landmarks on the last ROI, detection when lost)", **_stat(t)})
    found = [i for i, o in enumerate(obs) if o is not None]
    if len(found) < WARMUP + 3:
        raise InputError(f"{clip.path}: the tracker found a face in only {len(found)} of {n} frames")
    faces = [obs[i] for i in found]  # frames with a face: their images, times and observations
    face_imgs = [imgs[i] for i in found]
    face_times = [times[i] for i in found]
    rois = [roi_from_landmarks(o.raw_landmarks) for o in faces]
    lm32, _ = _landmarks(backend, "fp32")
    t, fp32 = _timed(lambda i: lm32(face_imgs[i], rois[i]), len(rois))
    encoder.append({"stage": "landmarks FP32 (Face Mesh on a ROI)", **_stat(t)})
    tick()
    int8, why = _landmarks(backend, "int8")
    if int8 is None:
        encoder.append({"stage": "landmarks INT8", "ms": None, "note": why})
    else:
        t, q = _timed(lambda i: int8(face_imgs[i], rois[i]), len(rois))
        diff = [100 * float(np.mean(np.linalg.norm(a[0][:, :2] - b[0][:, :2], axis=1))) / inter_ocular(b[0]) for a, b in zip(q, fp32)]
        encoder.append({"stage": "landmarks INT8 (Face Mesh on a ROI)", **_stat(t), "vs_fp32_pct_iod": float(np.mean(diff))})
    tick()
    reference = make_reference(imgs[0], models)
    params = QUALITY_PRESETS["medium"]
    fitter = KeypointFitter.from_reference(default_basis(), reference.landmarks, params.k)[0]
    lms = [o.landmarks for o in faces]
    t, _ = _timed(lambda i: fitter.fit(lms[i]), len(lms))
    encoder.append({"stage": f"fit (pose + K={params.k} expression coefficients)", **_stat(t)})
    codec = StreamEncoder(reference, params, width=256, height=256, fps=clip256.fps)
    codec.start()
    t, _ = _timed(lambda i: codec.encode(i + 1, face_times[i], lms[i]), len(lms))
    encoder.append({"stage": "fit + quantise + entropy-code (StreamEncoder.encode)", **_stat(t)})
    tick()
    enc = FrameEncoder(reference, params, width=256, height=256, fps=clip256.fps, tracker=FaceTracker(det, lmm))
    enc.start()
    t, _ = _timed(lambda i: enc.push(Frame(imgs[i], times[i], i)), n)
    encoder.append({"stage": "sender total (FrameEncoder.push: track + fit + code)", **_stat(t)})
    tick()

    generator: list[dict] = []
    try:
        from ..generator import Generator
    except ImportError as e:
        Generator = None  # type: ignore[assignment,misc]
        generator.append({"size": 256, "ms": None, "note": f"facelink.generator not importable ({e})"})
    if Generator is not None:
        gen = Generator(reference.image, reference.landmarks, backend=backend)
        t, _ = _timed(lambda i: gen.render(lms[i]), len(lms))
        generator.append({"size": 256, **_stat(t)})
        tick()
        clip512 = prepare_clip(clip.path, 512, frames, models, name=clip.name)
        if max(clip512.source_size) < 512:
            notes.append(f"the 512×512 generator input is upscaled from the {clip512.source_size[0]}×{clip512.source_size[1]} clip")
        tr512 = FaceTracker(det, lmm)
        lm512 = [o.landmarks for o in (tr512.update(f, tt) for f, tt in zip(clip512.frames, clip512.times)) if o is not None]
        ref512 = make_reference(clip512.frames[0], models)
        gen512 = Generator(ref512.image, ref512.landmarks, backend=backend)
        t, _ = _timed(lambda i: gen512.render(lm512[i]), len(lm512))
        generator.append({"size": 512, **_stat(t)})
        tick()

    latency: list[dict] = []
    if Generator is not None:
        enc2 = FrameEncoder(reference, params, width=256, height=256, fps=clip256.fps, tracker=FaceTracker(det, lmm))
        rnd = FrameRenderer(backend=backend)
        for p in enc2.start():
            rnd.push(p)
        rx, e2e = [], []
        for i in range(n):
            t0 = time.perf_counter()
            pkt, _ = enc2.push(Frame(imgs[i], times[i], i))
            t1 = time.perf_counter()
            rnd.push(pkt)
            t2 = time.perf_counter()
            rx.append(t2 - t1)
            e2e.append(t2 - t0)
        latency.append({"path": "packet → frame (receiver: parse, decode, retarget, generate)", **_stat(rx)})
        latency.append({"path": "frame → packet → frame (sender + receiver, in process)", **_stat(e2e)})
        latency.append(_transport_latency(reference, params, lms, face_times, clip256.fps, backend))
    else:
        latency.append({"path": "receiver", "ms": None, "note": "no generator"})
    tick()

    env = environment(be.name)
    result = {
        "version": 1,
        "command": command,
        "input": clip.path,
        "frames": n,
        "size": 256,
        "backend": be.name,
        "backend_version": be.version,
        "providers": _providers(be.name),
        "encoder": encoder,
        "generator": generator,
        "latency": latency,
        "peak_rss_mb": peak_rss_mb(),
        "environment": env,
        "notes": notes
        + [
            "timings on a shared machine are noisy: compare them only with runs at a similar load average (above)",
        ],
    }
    write_json(out / "speed.json", result)
    write_text(out / "speed.md", "# FaceLink speed benchmark\n\n" + speed_markdown(result) + "\n")
    return result


def _providers(backend: str) -> list[str]:
    if backend != "onnxruntime":
        return []
    try:
        import onnxruntime as ort

        return list(ort.get_available_providers())
    except ImportError:
        return []


def _transport_latency(reference, params, lms: Sequence[np.ndarray], times: Sequence[float], fps, backend: str) -> dict:
    """Landmarks -> sealed packet over loopback ZeroMQ (CurveZMQ) -> verified -> rendered frame."""
    path = "landmarks → ZeroMQ loopback (CurveZMQ, sealed, verified) → frame"
    try:
        from ..transport import LoopbackLink
    except ImportError as e:
        return {"path": path, "ms": None, "note": f"facelink.transport not available ({e})"}
    from ..receiver import FrameRenderer

    rnd = FrameRenderer(backend=backend)
    lat = []
    try:
        with LoopbackLink(reference, params, width=reference.width, height=reference.height, fps=fps) as link:
            for i, lm in enumerate(lms):
                t0 = time.perf_counter()
                # the first send also returns the header and reference chunks delivered while opening
                for d in link.send(i, times[i], lm):
                    if d.verdict is not None:  # verified packets of the session (seals decode to nothing)
                        rnd.push(d.packet)
                lat.append(time.perf_counter() - t0)
    except Exception as e:  # noqa: BLE001 - an optional, feature-detected row: a failing link is reported, not fatal
        return {"path": path, "ms": None, "note": f"loopback link failed: {type(e).__name__}: {e}"}
    return {"path": path, **_stat(lat)}
