"""Rate knobs: the number of expression modes K and the quantiser steps."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

__all__ = ["CodecParams", "QUALITY_PRESETS", "params_for_kbps"]

N_POSE = 6  # yaw, pitch, roll, tx, ty, log-scale


@dataclass(frozen=True)
class CodecParams:
    """How a session codes its keypoints.

    ``rot_step`` degrees; ``trans_step`` and ``coeff_step`` in canonical face units (the
    inter-ocular distance is 1), ``scale_step`` in natural-log units.  The translation step
    is turned into pixels with the reference face's size when a session starts, so the same
    parameters fit a 256x256 crop and a small face in a 1080p frame.  ``hysteresis`` (in
    steps) keeps a field at its previous level until the input moves that far past the
    rounding boundary: it removes quantiser flicker that would cost bits and show as jitter.

    ``eyes`` adds the eye channels (bitstream version 2): per eye the iris position
    (``gaze_step``, eye widths) and the lid opening (``open_step``, eye widths).

    ``region_bytes``: the session's budget for region references (bitstream version 3:
    crops of the sender's open mouth, sent once when first needed; 0 sends none).
    """

    k: int = 16
    rot_step: float = 0.25
    trans_step: float = 0.005
    scale_step: float = 0.004
    coeff_step: float = 0.025
    key_interval: int = 60
    hysteresis: float = 0.2
    eyes: bool = True
    gaze_step: float = 0.01
    open_step: float = 0.012
    region_bytes: int = 8000

    def __post_init__(self) -> None:
        if not 0 <= self.k <= 64:
            raise ValueError(f"k must be in 0..64, got {self.k}")
        for name in ("rot_step", "trans_step", "scale_step", "coeff_step", "gaze_step", "open_step"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0")
        if not 1 <= self.key_interval <= 65535:
            raise ValueError("key_interval must be in 1..65535 frames")
        if not 0 <= self.hysteresis < 0.5:
            raise ValueError("hysteresis must be in [0, 0.5)")
        if not 0 <= self.region_bytes <= 1 << 20:
            raise ValueError("region_bytes must be in 0..1048576")

    def with_(self, **kw) -> "CodecParams":
        return replace(self, **kw)


QUALITY_PRESETS: dict[str, CodecParams] = {
    "low": CodecParams(
        k=8, rot_step=0.5, trans_step=0.01, scale_step=0.008, coeff_step=0.05, gaze_step=0.02, open_step=0.018, region_bytes=4500
    ),
    "medium": CodecParams(k=16, rot_step=0.25, trans_step=0.005, scale_step=0.004, coeff_step=0.025),
    "high": CodecParams(
        k=24, rot_step=0.1, trans_step=0.002, scale_step=0.002, coeff_step=0.01, gaze_step=0.006, open_step=0.008, region_bytes=16000
    ),
}

#: typical rate (median kbit/s at 30 fps, all packets but the reference) of each operating
#: point on the 30 evaluation clips, measured by ``benchmarks/encoder.py --quality low medium
#: high``; --kbps picks from this.  Below ~3 kbit/s the fixed 7-byte packet framing (1.7 kbit/s
#: at 30 fps) dominates, so the presets differ more in fidelity than in rate.
RATE_TABLE: list[tuple[float, CodecParams]] = [
    (3.0, QUALITY_PRESETS["low"]),
    (3.6, QUALITY_PRESETS["medium"]),
    (4.8, QUALITY_PRESETS["high"]),
]


def params_for_kbps(kbps: float) -> CodecParams:
    """The finest operating point whose typical rate fits in ``kbps`` (the coarsest if none does)."""
    if not np.isfinite(kbps) or kbps <= 0:
        raise ValueError(f"--kbps must be a positive number, got {kbps}")
    fitting = [p for r, p in RATE_TABLE if r <= kbps]
    return fitting[-1] if fitting else RATE_TABLE[0][1]
