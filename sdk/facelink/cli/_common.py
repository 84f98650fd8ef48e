"""Shared CLI plumbing: JSON output, progress display, shared arguments."""

from __future__ import annotations

import json
import os
import sys
import time

__all__ = ["Progress", "add_backend_argument", "emit_json"]


def emit_json(obj: dict) -> None:
    """The one JSON object a ``--json`` command prints on stdout."""
    sys.stdout.write(json.dumps(obj, sort_keys=True) + "\n")
    sys.stdout.flush()


class Progress:
    """A one-line progress bar on stderr (only when stderr is a terminal, or FACELINK_PROGRESS=1)."""

    def __init__(self, label: str, total: int | None = None, enabled: bool | None = None) -> None:
        self.label = label
        self.total = total
        if enabled is None:
            enabled = sys.stderr.isatty() or os.environ.get("FACELINK_PROGRESS") == "1"
        self.enabled = enabled
        self._t0 = time.perf_counter()
        self._last = 0.0

    def __call__(self, done: int, total: int | None = None, extra: str = "") -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        if now - self._last < 0.1 and not (total and done >= total):
            return
        self._last = now
        total = total or self.total
        rate = done / max(now - self._t0, 1e-9)
        if total:
            frac = min(done / total, 1.0)
            bar = "#" * int(30 * frac) + "-" * (30 - int(30 * frac))
            line = f"{self.label} [{bar}] {done}/{total} {rate:5.1f} fps {extra}"
        else:
            line = f"{self.label} {done} {rate:5.1f} fps {extra}"
        sys.stderr.write("\r" + line[:120].ljust(80))
        sys.stderr.flush()

    def close(self) -> None:
        if self.enabled:
            sys.stderr.write("\n")
            sys.stderr.flush()


REFINER_CHOICES = ("on", "int8", "off")


def refiner_choice(value: str) -> str:
    """``--refiner``: on, int8, off or a path to a ``.onnx`` model (a usage error otherwise)."""
    import argparse

    if value in REFINER_CHOICES or value.lower().endswith(".onnx"):
        return value
    raise argparse.ArgumentTypeError(f"invalid choice {value!r}: choose on, int8, off or a MODEL.onnx path")


def add_refiner_argument(p) -> None:
    p.add_argument(
        "--refiner",
        default="off",
        type=refiner_choice,
        metavar="on|int8|off|MODEL.onnx",
        help="learned refinement of the warped face: on = the shipped network, int8 = its INT8 Q/DQ version "
        "(experimental, see docs/generator.md); default off = pure warp",
    )


def add_backend_argument(p) -> None:
    p.add_argument(
        "--backend",
        default="auto",
        choices=["auto", "onnxruntime", "tensorrt"],
        help="inference backend (default: auto = $FACELINK_BACKEND or the best available)",
    )
