"""Shared file helpers: atomic writes and outputs, inter-process locks, the fetch timeout.

Private: used by the model and asset caches, calibration, TensorRT engine caches, the
provenance manifest writer and :mod:`facelink.pipeline` (every whole-file output).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from .errors import InputError, ModelFetchError

try:  # POSIX only; elsewhere caches are written without inter-process locking
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = ["atomic_output", "atomic_write", "check_output", "fetch_timeout", "locked", "one_line"]

#: seconds for a whole download unless FACELINK_FETCH_TIMEOUT says otherwise
DEFAULT_FETCH_TIMEOUT_S = 300.0


def fetch_timeout() -> float:
    """``$FACELINK_FETCH_TIMEOUT`` in seconds (default 300); a non-number is a :class:`ModelFetchError`."""
    raw = os.environ.get("FACELINK_FETCH_TIMEOUT", "")
    try:
        value = float(raw) if raw else DEFAULT_FETCH_TIMEOUT_S
    except ValueError:
        raise ModelFetchError(f"FACELINK_FETCH_TIMEOUT={raw!r} is not a number of seconds") from None
    return value if value > 0 else DEFAULT_FETCH_TIMEOUT_S


def one_line(text: str, limit: int = 240) -> str:
    """``text`` on one line (whitespace runs collapsed), cut to ``limit`` characters."""
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


def atomic_write(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write ``data`` to ``path`` via a temporary file in the same directory, fsync and a rename."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)  # mkstemp creates 0600
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def check_output(path: str | os.PathLike[str]) -> Path:
    """``path`` as an output file: an :class:`InputError` if it is a directory or its directory is missing.

    Whole-file operations check this before their work, so a typo fails at once."""
    dst = Path(path)
    if dst.is_dir():
        raise InputError(f"{dst}: is a directory")
    parent = dst.parent if str(dst.parent) else Path(".")
    if not parent.is_dir():
        raise InputError(f"{parent}: output directory does not exist")
    return dst


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it into place only on success.

    An output that is a directory, or whose directory does not exist, is an :class:`InputError`.
    """
    dst = check_output(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{dst.name}.", suffix=dst.suffix, dir=dst.parent if str(dst.parent) else ".")
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, dst)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


@contextlib.contextmanager
def locked(path: Path, timeout: float) -> Iterator[None]:
    """Hold an exclusive ``fcntl`` lock on ``path``, waiting at most ``timeout`` seconds."""
    if fcntl is None:  # pragma: no cover - Windows
        yield
        return
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise ModelFetchError(
                        f"timed out after {timeout:.0f} s waiting for {path} (another process is "
                        "fetching models); retry when it has finished"
                    ) from None
                time.sleep(0.1)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
