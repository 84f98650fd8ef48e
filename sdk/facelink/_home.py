"""FaceLink's state directory (models, assets, keys, trust, caches)."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["facelink_home"]


def facelink_home() -> Path:
    """``$FACELINK_HOME``, default ``~/.cache/facelink``."""
    env = os.environ.get("FACELINK_HOME")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "facelink"
