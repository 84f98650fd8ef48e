"""The calibration data recipe: how many frames per clip, how clips are split, what stays float."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from ..errors import InputError

__all__ = ["METHODS", "Recipe", "load_recipe"]

#: calibration methods ``facelink calibrate --method`` accepts (see :mod:`._ranges`)
METHODS = ("entropy", "percentile", "minmax")

#: Conv nodes kept in float, per model, with the reason (measured: see calibration/README.md)
_LANDMARK_HEAD = (
    "depthwise_conv2d_15",
    "conv2d_16",
    "depthwise_conv2d_16",
    "conv2d_17",
    "depthwise_conv2d_23",
    "depthwise_conv2d_17",
    "conv2d_28",
    "conv2d_18",
    "conv2d_29",
    "conv2d_19",
    "depthwise_conv2d_24",
    "depthwise_conv2d_18",
    "conv2d_30",
    "conv2d_20",
    "conv2d_31",
    "conv2d_21",
)
_LANDMARK_WHY = (
    "3x3 head stage: both output branches (landmarks, face flag), 3.2 % of the MACs; quantizing it "
    "adds about a third of the INT8 landmark error (see the float-layer ablation in the report)"
)
_DETECTOR_WHY = (
    "its input (depthwise_conv2d_15) has rare values near +-470 while almost all are < 10, so one "
    "per-tensor INT8 scale erases the rest; this 8x8 layer is 1.9 % of the MACs and keeping it float "
    "restores the boxes (see the float-layer ablation in the report)"
)
DEFAULT_FLOAT_NODES: Mapping[str, Mapping[str, str]] = {
    "face_detector": {"conv2d_16": _DETECTOR_WHY},
    "face_landmark": {n: _LANDMARK_WHY for n in _LANDMARK_HEAD},
}


@dataclass(frozen=True)
class Recipe:
    """Parameters of one calibration run (``calibration/recipe.json`` holds the committed values).

    ``train_frames_per_clip`` / ``eval_frames_per_clip`` frames are taken from each clip, spread
    evenly over it (at least ``min_stride`` frames apart) and fed in order to the real tracker,
    which records every 128x128 detector input and 192x192 landmark crop it makes.  Clips are split
    by person; for sources without a person map ``eval_fraction`` of the persons (chosen by a hash
    of the person id, so the split is stable) are held out.  ``float_nodes`` names the Conv nodes
    kept in float per model, with the reason.
    """

    train_frames_per_clip: int = 10
    eval_frames_per_clip: int = 24
    min_stride: int = 3
    eval_fraction: float = 0.2
    percentile: float = 99.99
    entropy_bins: int = 2048
    latency_runs: int = 200
    float_nodes: Mapping[str, Mapping[str, str]] = field(default_factory=lambda: DEFAULT_FLOAT_NODES)

    def __post_init__(self) -> None:
        for name in ("train_frames_per_clip", "eval_frames_per_clip", "min_stride", "entropy_bins", "latency_runs"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"recipe {name} must be a positive int, got {value!r}")
        if not 0.0 < self.eval_fraction < 1.0:
            raise ValueError(f"recipe eval_fraction must be in (0, 1), got {self.eval_fraction!r}")
        if not 90.0 <= self.percentile <= 100.0:
            raise ValueError(f"recipe percentile must be in [90, 100], got {self.percentile!r}")

    def as_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["float_nodes"] = {m: dict(v) for m, v in self.float_nodes.items()}
        return out


def load_recipe(path: str | Path) -> Recipe:
    """A :class:`Recipe` from JSON (unknown keys are an error; missing keys take the defaults)."""
    p = Path(path)
    try:
        obj = json.loads(p.read_text())
    except OSError as exc:
        raise InputError(f"cannot read recipe {p}: {exc.strerror or exc}") from None
    except json.JSONDecodeError as exc:
        raise InputError(f"recipe {p} is not JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise InputError(f"recipe {p} must be a JSON object")
    obj = {k: v for k, v in obj.items() if not k.startswith("_")}  # "_comment" keys document the file
    known = {f.name for f in fields(Recipe)}
    unknown = sorted(set(obj) - known)
    if unknown:
        raise InputError(f"recipe {p} has unknown keys {unknown}; known: {sorted(known)}")
    try:
        return Recipe(**obj)
    except (TypeError, ValueError) as exc:
        raise InputError(f"recipe {p}: {exc}") from None
