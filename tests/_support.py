"""Helpers shared by test modules: the fuzz budget profile and golden binary fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

#: examples per fuzz test; CI raises it (see .ci/run)
FUZZ_EXAMPLES = int(os.environ.get("FACELINK_FUZZ_EXAMPLES", "2000"))
settings.register_profile("facelink-fuzz", max_examples=FUZZ_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FUZZ = settings.get_profile("facelink-fuzz")
PROPERTY = settings(max_examples=200, deadline=None)

GOLDEN_DIR = Path(__file__).parent / "data"
REGENERATE = os.environ.get("FACELINK_REGENERATE_GOLDEN") == "1"


def golden(name: str, actual: bytes, subdir: str = "bitstream") -> bytes:
    """Stored fixture ``subdir/name``; rewritten from ``actual`` when FACELINK_REGENERATE_GOLDEN=1."""
    path = GOLDEN_DIR / subdir / name
    if REGENERATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(actual)
    if not path.exists():
        pytest.fail(f"missing golden file {path}; run with FACELINK_REGENERATE_GOLDEN=1")
    return path.read_bytes()
