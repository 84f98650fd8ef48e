"""The audio -> expression model at run time, and the data conventions it was trained with.

``AudioToExpression(path).predict(mel, times)``: the expression coefficients (FaceLink's
own keypoints: the change from the speaker's usual face, in mode standard deviations) for
each video frame time, from the log-mel of the speech (:mod:`._features`).  The network
(``data/audio2motion.onnx``, trained by ``python -m facelink.train audio2motion``) sees
``PAST`` feature frames before and ``AHEAD`` after each frame time, so a live caller runs it
with 200 ms of delay.  It runs on FaceLink's inference backend like the other networks.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import numpy as np

from ._features import HOP_S, MEL_BINS

__all__ = [
    "AHEAD", "K", "PAST", "AudioToExpression", "StreamingAudioToExpression", "model_path", "mouth_gap", "normalise_mel",
    "target_coeffs", "windows",
]  # fmt: skip

#: feature frames (10 ms) the network sees before and after a video frame's time
PAST = 40
AHEAD = 19
#: expression coefficients predicted (``--quality medium``'s K)
K = 16
#: scale of the normalised log-mel (log units)
MEL_SCALE = 4.0


def normalise_mel(mel: np.ndarray) -> np.ndarray:
    """Per-recording normalisation: each bin minus its median over the recording, scaled.

    Loudness, microphone colour and speaker pitch move the medians, not the shape of the
    syllables over time, which is what the lips follow.
    """
    m = np.asarray(mel, np.float32)
    if len(m) == 0:
        return m.reshape(0, MEL_BINS)
    return ((m - np.median(m, axis=0, keepdims=True)) / MEL_SCALE).astype(np.float32)


def windows(mel: np.ndarray, times: np.ndarray) -> np.ndarray:
    """(N, PAST + AHEAD, MEL_BINS) windows of ``mel`` around each of ``times`` (s), edge-padded."""
    t = np.asarray(times, np.float64).reshape(-1)
    centre = np.round(t / HOP_S).astype(np.int64)
    idx = centre[:, None] + np.arange(-PAST, AHEAD)[None, :]
    if len(mel) == 0:
        return np.zeros((len(t), PAST + AHEAD, MEL_BINS), np.float32)
    return np.ascontiguousarray(mel[np.clip(idx, 0, len(mel) - 1)], dtype=np.float32)


def target_coeffs(coeffs: np.ndarray, ok: np.ndarray) -> np.ndarray:
    """Training targets: the first ``K`` coefficients minus the clip's median (over tracked
    frames), in units of each mode's standard deviation."""
    from ..keypoints import default_basis

    c = np.asarray(coeffs, np.float64)[:, :K]
    med = np.median(c[np.asarray(ok, bool)], axis=0) if np.any(ok) else np.zeros(K)
    return ((c - med) / default_basis().std[:K]).astype(np.float32)


def mouth_gap(normalised: np.ndarray) -> np.ndarray:
    """The canonical inner-lip gap (landmark 13 to 14) of the mean face moved by normalised coefficients."""
    from ..keypoints import default_basis

    b = default_basis()
    modes = b.matrix(K).reshape(K, 468, 3)
    d = (np.asarray(normalised, np.float64) * b.std[:K]) @ (modes[:, 14, 1] - modes[:, 13, 1])
    return float(b.mean[14, 1] - b.mean[13, 1]) + d


def model_path() -> Path:
    """The shipped network."""
    return Path(str(resources.files("facelink.animate") / "data" / "audio2motion.onnx"))


class AudioToExpression:
    """Runs the audio -> expression network through :func:`facelink.backend.select_backend`."""

    def __init__(self, path: str | Path | None = None, backend: str = "auto") -> None:
        from ..backend import select_backend

        p = Path(path) if path is not None else model_path()
        if not p.is_file():
            raise FileNotFoundError(f"{p}: audio -> motion model not found")
        self._session = select_backend(backend).create_session(str(p))

    def predict(self, mel: np.ndarray, times: np.ndarray, batch: int = 256) -> np.ndarray:
        """(N, K) normalised coefficients for frame ``times`` (s) of a recording's log-mel."""
        return self.run(windows(normalise_mel(mel), times), batch)

    def run(self, x: np.ndarray, batch: int = 256) -> np.ndarray:
        """(N, K) coefficients for (N, PAST + AHEAD, MEL_BINS) normalised feature windows."""
        # copied: the backend reuses its output buffer from run to run
        out = [self._session.run({"mel": x[i : i + batch]})["coeffs"].copy() for i in range(0, len(x), batch)]
        return np.concatenate(out) if out else np.zeros((0, K), np.float32)


#: per-band medians for the streaming normalisation are taken over this much recent speech
STREAM_NORM_S = 10.0


class StreamingAudioToExpression:
    """The network run causally on a live voice: 16 kHz PCM in (any chunk sizes), one row of
    expression coefficients per video frame out, each as soon as the feature frames
    its window reads exist (180 ms of speech after the frame plus half an analysis window:
    :attr:`latency_s`, 196 ms).

    Features are computed incrementally with the same code as :func:`log_mel`; the
    per-band normalisation uses the medians of the last ``norm_seconds`` of speech heard so
    far (a whole recording uses all of it), so the first second after a start is less sure.
    """

    def __init__(self, fps: float, path: str | Path | None = None, backend: str = "auto", norm_seconds: float = STREAM_NORM_S) -> None:
        from ._features import N_FFT

        if not (np.isfinite(fps) and fps > 0):
            raise ValueError(f"fps must be > 0, got {fps!r}")
        self.fps = float(fps)
        self.net = AudioToExpression(path, backend)
        self._padded = np.zeros(N_FFT // 2, np.float32)  # the signal, N_FFT/2 zeros in front
        self._offset = 0  # absolute index of _padded[0] in the padded signal
        self._mel = np.zeros((0, MEL_BINS), np.float32)  # feature frames kept (recent ones)
        self._mel_first = 0  # absolute index of _mel[0]
        self._mel_done = 0  # feature frames computed so far
        self._norm = max(1, int(round(norm_seconds / HOP_S)))
        self.frames_out = 0

    @property
    def latency_s(self) -> float:
        """Speech needed after a frame's time before its row comes out."""
        from ._features import N_FFT, SAMPLE_RATE

        return (AHEAD - 1) * HOP_S + (N_FFT // 2) / SAMPLE_RATE

    def push(self, pcm: np.ndarray) -> list[tuple[int, np.ndarray]]:
        """Add speech; returns ``(frame index, coefficients (K,))`` for every frame now due."""
        from ._features import HOP, N_FFT, mel_frames

        x = np.asarray(pcm, np.float32).reshape(-1)
        if not np.isfinite(x).all():
            raise ValueError("PCM contains NaN or infinity")
        self._padded = np.concatenate([self._padded, x])
        total = self._offset + len(self._padded)  # padded samples heard so far
        n_ready = max(0, (total - N_FFT) // HOP + 1)  # feature frames whose window is complete
        if n_ready > self._mel_done:
            local = self._mel_done * HOP - self._offset
            new = mel_frames(self._padded[local:], 0, n_ready - self._mel_done)
            self._mel = np.concatenate([self._mel, new])
            self._mel_done = n_ready
            keep = self._mel_done * HOP - self._offset  # drop samples no future frame reads
            self._padded = self._padded[keep:]
            self._offset += keep
        out = []
        while True:
            f = self.frames_out
            centre = int(round(f / self.fps / HOP_S))
            if centre + AHEAD > self._mel_done:  # its look-ahead has not been heard yet
                break
            out.append((f, self._predict(centre)))
            self.frames_out += 1
        # keep what later windows and the normaliser still read
        drop = min(len(self._mel) - self._norm, int(round(self.frames_out / self.fps / HOP_S)) - PAST - self._mel_first)
        if drop > 0:
            self._mel = self._mel[drop:]
            self._mel_first += drop
        return out

    def _predict(self, centre: int) -> np.ndarray:
        recent = self._mel[max(0, self._mel_done - self._norm - self._mel_first) :]
        med = np.median(recent, axis=0, keepdims=True)
        idx = np.clip(centre + np.arange(-PAST, AHEAD), 0, self._mel_done - 1) - self._mel_first
        window = ((self._mel[np.clip(idx, 0, len(self._mel) - 1)] - med) / MEL_SCALE).astype(np.float32)
        return self.net.run(window[None])[0]
