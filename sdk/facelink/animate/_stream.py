"""Speech -> a signed FaceLink keypoint stream of a portrait talking.

``facelink animate`` does not have a renderer of its own: it turns the speech into exactly
what a sender would stream (a session whose reference is the portrait, one keypoint frame per
video frame, eye channels, seals) and hands that stream to the ordinary decoder, so the video
gets the same generator, provenance watermark and signed manifest as any other FaceLink
output.  The session header carries extension ``SOURCE_TAG`` (``AUDIO_DRIVEN``), so the
signed header, and with it the manifest and ``facelink verify``, say the motion came from
audio, not from a camera.

Per frame: lips, jaw and cheeks from the audio -> expression network (:mod:`._model`,
smoothed over 3 frames), head rotation, blinks and gaze from :class:`._motion.IdleMotion`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..codec import QUALITY_PRESETS, CodecParams, Reference, StreamEncoder
from ..keypoints import KeypointFitter, Pose, canonicalize, default_basis
from ._features import SAMPLE_RATE, log_mel
from ._model import K, AudioToExpression
from ._motion import IdleMotion

__all__ = ["AUDIO_DRIVEN", "SOURCE_TAG", "AnimatedStream", "animate_stream", "loudness", "source_of"]

#: session-header extension naming where the motion came from; value AUDIO_DRIVEN
SOURCE_TAG = 5
AUDIO_DRIVEN = b"audio"
#: longest speech animated in one call (memory: features and frames are planned up front)
MAX_SECONDS = 3600.0


def source_of(extensions) -> str | None:
    """``"audio-driven"`` for a session header whose motion was made from speech, else ``None``."""
    for tag, value in extensions:
        if tag == SOURCE_TAG and value == AUDIO_DRIVEN:
            return "audio-driven"
    return None


def loudness(mel: np.ndarray, times: np.ndarray) -> np.ndarray:
    """Per frame time, the speech's loudness normalised to ~0 (its quiet 10 %) .. ~1 (its loud 5 %)."""
    from ._features import HOP_S

    if len(mel) == 0:
        return np.zeros(len(times))
    e = np.log(np.exp(mel.astype(np.float64)).sum(axis=1) + 1e-12)
    lo, hi = np.percentile(e, 10), np.percentile(e, 95)
    idx = np.clip(np.round(np.asarray(times) / HOP_S).astype(int), 0, len(e) - 1)
    return np.clip((e[idx] - lo) / max(hi - lo, 1e-6), 0.0, 1.5)


@dataclass(frozen=True)
class AnimatedStream:
    """The packets of an animated session (unsealed, header first) and its frame count."""

    packets: list[bytes]
    frames: int
    fps: float
    seconds: float


def animate_stream(
    reference: Reference,
    pcm: np.ndarray,
    *,
    fps: float = 30.0,
    seed: int = 0,
    motion: str = "natural",
    params: CodecParams | None = None,
    extensions: tuple[tuple[int, bytes], ...] = (),
    audio_kbps: float | None = 24.0,
    model: str | None = None,
    backend: str = "auto",
    progress: Callable[[int, int | None], None] | None = None,
) -> AnimatedStream:
    """Speech (16 kHz mono float PCM) -> the keypoint stream of ``reference`` saying it.

    ``reference`` must carry the portrait's landmarks (and eyes, for the eye channels; see
    :meth:`Reference.with_eyes`); ``extensions`` are added to the header (the signer's key).
    ``audio_kbps``: the speech itself goes into the stream too (Opus AUDIO packets at this
    rate, interleaved with the frames), so the decoded video speaks; ``None`` leaves it silent.
    """
    from ..face import EyeState
    from ..receiver import encode_anchor

    pcm = np.asarray(pcm, np.float32).reshape(-1)
    seconds = len(pcm) / SAMPLE_RATE
    if seconds <= 0:
        raise ValueError("the speech is empty")
    if seconds > MAX_SECONDS:
        raise ValueError(f"the speech is {seconds:.0f} s long (at most {MAX_SECONDS:.0f} s per call)")
    params = (params or QUALITY_PRESETS["medium"]).with_(k=K, region_bytes=0)
    n = max(1, int(np.ceil(seconds * fps)))
    times = np.arange(n) / fps
    mel = log_mel(pcm)
    pred = AudioToExpression(model, backend).predict(mel, times)
    if n >= 3:  # the network is frame-wise: a 3-tap filter takes out its frame-to-frame jitter
        pred = np.concatenate([pred[:1], 0.25 * pred[:-2] + 0.5 * pred[1:-1] + 0.25 * pred[2:], pred[-1:]])
    basis = default_basis()
    coeffs = pred * basis.std[:K]
    loud = loudness(mel, times)
    fitter, ref_pose = KeypointFitter.from_reference(basis, reference.landmarks, K)
    anchor = canonicalize(basis, reference.landmarks)[1]
    exts = tuple(sorted({**dict(extensions), **dict([encode_anchor(anchor)]), SOURCE_TAG: AUDIO_DRIVEN}.items()))
    pack = None
    sound = None
    if audio_kbps is not None:
        from ..audio import AudioPacketizer, resample

        pack = AudioPacketizer(audio_kbps)
        sound = resample(pcm, SAMPLE_RATE)
    enc = StreamEncoder(
        reference, params, width=reference.width, height=reference.height, fps=fps, extensions=exts,
        audio=pack.params if pack is not None else None,
    )  # fmt: skip
    packets = list(enc.start())
    done = 0  # 48 kHz samples of the speech already packed
    idle = IdleMotion(fps, seed, motion)
    ref_eyes = reference.eyes
    for i in range(n):
        m = idle.step(float(loud[i]))
        yaw, pitch, roll = m.rotation
        pose = Pose(ref_pose.yaw + yaw, ref_pose.pitch + pitch, ref_pose.roll + roll, ref_pose.tx, ref_pose.ty, ref_pose.scale)
        lm = fitter.reconstruct(pose, coeffs[i])
        eyes = None
        if ref_eyes is not None:
            eyes = EyeState(
                gaze=ref_eyes.gaze + m.gaze, openness=ref_eyes.openness * m.openness, brow=ref_eyes.brow,
                iris_radius=ref_eyes.iris_radius, visible=ref_eyes.visible,
            )  # fmt: skip
        pkt, _ = enc.encode(i, float(times[i]), lm, eyes=eyes)
        packets.append(pkt)
        if pack is not None and sound is not None:  # the speech up to the end of this frame
            upto = min(sound.size, int(round((i + 1) / fps * 48000)))
            if upto > done:
                packets += pack.push(sound[done:upto], done)
                done = upto
        if progress is not None:
            progress(i + 1, n)
    if pack is not None and sound is not None:
        if done < sound.size:
            packets += pack.push(sound[done:], done)
        packets += pack.flush()
    packets.append(enc.end())
    return AnimatedStream(packets, n, float(fps), seconds)
